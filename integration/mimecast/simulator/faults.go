package simulator

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Fault is an injected misbehaviour for requests whose path starts with PathPrefix. Faults
// apply to /oauth/token, /api/... (after authentication) and download paths, never to the
// control API. The first firing fault that answers (non-zero Status, Empty or FailItems)
// decides the answer; latency of every firing fault adds up.
type Fault struct {
	PathPrefix string `json:"path_prefix"`
	// Status: 0 = only add latency; 429 = rate-limit answer with headers; 400/500/502/503/...
	// = error with a flat fail body (or an empty body with EmptyBody); 200 with Empty or
	// FailItems.
	Status int `json:"status"`
	// Probability in 0..1 that a matching request triggers the fault; 0 counts as 1 so a
	// fault without it always fires. Decided by an RNG seeded from Options.Seed, so runs
	// with the same request sequence are repeatable.
	Probability float64 `json:"probability"`
	LatencyMS   int     `json:"latency_ms"`
	// Count limits how often the fault fires (0 = unlimited).
	Count int `json:"count,omitempty"`
	// Empty answers HTTP 200 with a valid envelope and data [].
	Empty bool `json:"empty,omitempty"`
	// FailItems answers HTTP 200 with data [] and a fail[] entry {key, errors[]} with code
	// err_validation_null.
	FailItems bool `json:"fail_items,omitempty"`
	// EmptyBody sends an error status with no body at all (seen with truncated ids).
	EmptyBody bool `json:"empty_body,omitempty"`
	// ResetMS is the wait a 429 fault announces (default 50 ms; Retry-After rounds up to
	// whole seconds).
	ResetMS int `json:"reset_ms,omitempty"`
}

func (f Fault) validate() error {
	switch {
	case f.PathPrefix == "" || !strings.HasPrefix(f.PathPrefix, "/"):
		return fmt.Errorf("fault: path_prefix %q must start with /", f.PathPrefix)
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return fmt.Errorf("fault %s: status %d: want 0 or 200..599", f.PathPrefix, f.Status)
	case f.Status == 200 && !f.Empty && !f.FailItems:
		return fmt.Errorf("fault %s: status 200 needs empty or fail_items", f.PathPrefix)
	case (f.Empty || f.FailItems) && f.Status != 0 && f.Status != 200:
		return fmt.Errorf("fault %s: empty/fail_items answer with status 200, not %d", f.PathPrefix, f.Status)
	case f.Empty && f.FailItems:
		return fmt.Errorf("fault %s: empty and fail_items are exclusive", f.PathPrefix)
	case f.Probability < 0 || f.Probability > 1:
		return fmt.Errorf("fault %s: probability %v: want 0..1", f.PathPrefix, f.Probability)
	case f.LatencyMS < 0 || f.Count < 0 || f.ResetMS < 0:
		return fmt.Errorf("fault %s: latency_ms, count and reset_ms must be >= 0", f.PathPrefix)
	}
	return nil
}

// answers reports whether the fault replaces the real answer (rather than only delaying it).
func (f Fault) answers() bool { return f.Status != 0 || f.Empty || f.FailItems }

type faultSet struct {
	mu     sync.Mutex
	faults []Fault
	fired  []int
	rng    *rand.Rand
}

func newFaultSet(seed int64) *faultSet {
	return &faultSet{rng: rand.New(rand.NewPCG(uint64(seed), 0xFA17))}
}

func (fs *faultSet) set(list []Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = append([]Fault(nil), list...)
	fs.fired = make([]int, len(list))
}

func (fs *faultSet) list() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]Fault{}, fs.faults...)
}

// match decides which faults fire for path: the summed latency and the answering fault.
func (fs *faultSet) match(path string) (time.Duration, *Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var latency time.Duration
	for i, f := range fs.faults {
		if !strings.HasPrefix(path, f.PathPrefix) || (f.Count > 0 && fs.fired[i] >= f.Count) {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && fs.rng.Float64() >= f.Probability {
			continue
		}
		fs.fired[i]++
		latency += time.Duration(f.LatencyMS) * time.Millisecond
		if f.answers() {
			return latency, &f
		}
	}
	return latency, nil
}
