package metrics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Health judges a long-running alerts poller for its probes. It separates two questions that
// a single /healthz used to mix:
//
//   - Liveness (/healthz): are the poll loops alive? Each source's loop shows signs of life (a
//     Beat for every call it makes, a Pass at the end of every pass); a loop silent for longer
//     than HealthOptions.StallAfter is stuck or gone, and only a restart helps it. What the
//     tenant answers does not matter here: a source answered 403 or failing on every pass is
//     alive and reported, and a restart would not grant a permission or mend a Mimecast
//     outage.
//   - Readiness (/readyz): is every source being read? A source failing for longer than
//     HealthOptions.FailingAfter (since its last success, or the start) is not; a forbidden
//     one is (the poller did all it can; the metrics and status name the permission). A
//     failing readiness probe marks the pod not ready and never restarts it.
//
// /status gives each source's state as JSON. Beat and Pass are safe for concurrent use: each
// source polls on its own goroutine. Health does no I/O; its clock is given.
type Health struct {
	o       HealthOptions
	started time.Time

	mu      sync.Mutex
	sources map[string]*sourceHealth
}

// HealthOptions tune Health. Zero values take the defaults noted.
type HealthOptions struct {
	// Interval is the pause between two passes of a source (alerts.poll_interval); required.
	Interval time.Duration
	// StallAfter is how long a source's loop may go without a sign of life before liveness
	// fails; default Interval + DefaultStallGrace.
	StallAfter time.Duration
	// FailingAfter is how long a source may fail, since its last success, before readiness
	// fails; default 2 × Interval (one failed pass is not yet a problem).
	FailingAfter time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultStallGrace is what a source's loop may stay silent beyond one poll interval. Between
// two calls of one source the client may wait for the SIEM batch budget (50 calls per 15
// minutes) or a server's quota hint (clamped to 5 minutes); a loop quiet for longer than the
// longest of those is not waiting, it is stuck.
const DefaultStallGrace = 20 * time.Minute

// PassResult is how one pass of one source ended, as health sees it.
type PassResult int

const (
	// PassOK: the source was read.
	PassOK PassResult = iota + 1
	// PassForbidden: Mimecast answered 403; the application lacks SourcePass.Permission.
	PassForbidden
	// PassFailed: the pass ended with SourcePass.Error.
	PassFailed
	// PassInterrupted: the pass was stopped by shutdown; it says nothing of the source.
	PassInterrupted
)

// SourcePass is the end of one pass of one source.
type SourcePass struct {
	Source     string
	Result     PassResult
	Error      string // PassFailed: why
	Permission string // PassForbidden: what the application lacks
}

// SourceCondition is what /status and /readyz say of a source.
type SourceCondition string

const (
	// SourceStarting: no pass of the source has ended yet (a first pass may read a long backlog).
	SourceStarting SourceCondition = "starting"
	SourceOK       SourceCondition = "ok"
	// SourceForbidden: answered 403; reported, healthy and ready.
	SourceForbidden SourceCondition = "forbidden"
	// SourceFailing: the last pass failed; ready until FailingAfter has passed.
	SourceFailing SourceCondition = "failing"
	// SourceStalled: the loop showed no sign of life for StallAfter; liveness fails.
	SourceStalled SourceCondition = "stalled"
)

// SourceState is one source as /status shows it.
type SourceState struct {
	Source       string          `json:"source"`
	Condition    SourceCondition `json:"state"`
	Live         bool            `json:"live"`
	Ready        bool            `json:"ready"`
	LastError    string          `json:"last_error,omitempty"`
	Permission   string          `json:"permission,omitempty"`
	LastSuccess  *time.Time      `json:"last_success,omitempty"`
	LastPass     *time.Time      `json:"last_pass,omitempty"`
	LastActivity time.Time       `json:"last_activity"`
}

type sourceHealth struct {
	lastSign    time.Time  // last Beat or Pass; the start before any
	last        PassResult // of the last pass that was not interrupted; 0 before any
	lastPass    time.Time
	lastSuccess time.Time // last PassOK or PassForbidden
	lastError   string
	permission  string
}

// NewHealth returns a Health for the given sources.
func NewHealth(sources []string, o HealthOptions) *Health {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StallAfter <= 0 {
		o.StallAfter = o.Interval + DefaultStallGrace
	}
	if o.FailingAfter <= 0 {
		o.FailingAfter = 2 * o.Interval
	}
	h := &Health{o: o, started: o.Now(), sources: map[string]*sourceHealth{}}
	for _, s := range sources {
		h.sources[s] = &sourceHealth{lastSign: h.started}
	}
	return h
}

// source returns the entry of name; h.mu is held.
func (h *Health) source(name string) *sourceHealth {
	s := h.sources[name]
	if s == nil {
		s = &sourceHealth{lastSign: h.started}
		h.sources[name] = s
	}
	return s
}

// Beat records a sign of life of source's loop: a call started or ended.
func (h *Health) Beat(source string) {
	now := h.o.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.source(source).lastSign = now
}

// Pass records the end of one pass of one source.
func (h *Health) Pass(p SourcePass) {
	now := h.o.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.source(p.Source)
	s.lastSign = now
	switch p.Result {
	case PassOK, PassForbidden:
		s.last, s.lastPass, s.lastSuccess, s.lastError, s.permission = p.Result, now, now, "", p.Permission
	case PassFailed:
		s.last, s.lastPass, s.lastError = p.Result, now, p.Error
	}
}

// Sources returns the state of every source, sorted by name.
func (h *Health) Sources() []SourceState {
	now := h.o.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]SourceState, 0, len(h.sources))
	for name, s := range h.sources {
		st := SourceState{Source: name, Live: now.Sub(s.lastSign) <= h.o.StallAfter, Ready: true,
			LastError: s.lastError, Permission: s.permission, LastSuccess: timeRef(s.lastSuccess),
			LastPass: timeRef(s.lastPass), LastActivity: s.lastSign.UTC()}
		switch s.last {
		case 0:
			st.Condition = SourceStarting
		case PassOK:
			st.Condition = SourceOK
		case PassForbidden:
			st.Condition = SourceForbidden
		case PassFailed:
			st.Condition = SourceFailing
			since := s.lastSuccess
			if since.IsZero() {
				since = h.started
			}
			st.Ready = now.Sub(since) <= h.o.FailingAfter
		}
		if !st.Live {
			st.Condition, st.Ready = SourceStalled, false
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SourceState) int { return strings.Compare(a.Source, b.Source) })
	return out
}

func timeRef(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// describe is one line of /readyz and of a failing /healthz.
func (h *Health) describe(s SourceState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", s.Source, s.Condition)
	switch s.Condition {
	case SourceStalled:
		fmt.Fprintf(&b, " (no sign of life since %s, more than %s)", s.LastActivity.Format(time.RFC3339), h.o.StallAfter)
	case SourceForbidden:
		if s.Permission != "" {
			fmt.Fprintf(&b, " (the application needs %s)", s.Permission)
		}
	case SourceFailing:
		if !s.Ready {
			fmt.Fprintf(&b, " for more than %s", h.o.FailingAfter)
		}
	}
	if s.LastSuccess != nil {
		fmt.Fprintf(&b, "; last success %s", s.LastSuccess.Format(time.RFC3339))
	}
	if s.LastError != "" {
		fmt.Fprintf(&b, "; last error: %s", s.LastError)
	}
	return b.String()
}

// Handler serves GET /healthz (liveness), /readyz (readiness) and /status (JSON). /healthz
// answers "ok" (200) while every loop is alive, else 503 naming the stalled ones; /readyz
// answers 200 or 503 with one line per source; /status answers 200 with the JSON of Sources
// and the two verdicts.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.serveLive)
	mux.HandleFunc("GET /readyz", h.serveReady)
	mux.HandleFunc("GET /status", h.serveStatus)
	return mux
}

func (h *Health) serveLive(w http.ResponseWriter, _ *http.Request) {
	var stalled []string
	for _, s := range h.Sources() {
		if !s.Live {
			stalled = append(stalled, h.describe(s))
		}
	}
	writeText(w, len(stalled) == 0, stalled)
}

func (h *Health) serveReady(w http.ResponseWriter, _ *http.Request) {
	ready := true
	var lines []string
	for _, s := range h.Sources() {
		ready = ready && s.Ready
		lines = append(lines, h.describe(s))
	}
	writeText(w, ready, lines)
}

func writeText(w http.ResponseWriter, ok bool, lines []string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		lines = append([]string{"ok"}, lines...)
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// healthStatus is the body of /status.
type healthStatus struct {
	Live    bool          `json:"live"`
	Ready   bool          `json:"ready"`
	Sources []SourceState `json:"sources"`
}

func (h *Health) serveStatus(w http.ResponseWriter, _ *http.Request) {
	st := healthStatus{Live: true, Ready: true, Sources: h.Sources()}
	for _, s := range st.Sources {
		st.Live = st.Live && s.Live
		st.Ready = st.Ready && s.Ready
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st) // a client gone away is not ours to report
}
