package metrics

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Health judges whether a long-running alerts poller works, for /healthz. A source is healthy
// when its last poll succeeded, or when it last succeeded (or the process started) at most two
// poll intervals ago: one failed poll is not yet a reason to restart the process. A source
// that has not finished a poll yet is healthy (a first poll may read a long backlog). A source
// the API application may not read (403) is reported as such by the poll and the metrics and
// counts as polled: restarting would not give the application the permission.
type Health struct {
	interval time.Duration
	now      func() time.Time
	started  time.Time

	mu      sync.Mutex
	sources map[string]*sourceHealth
}

type sourceHealth struct {
	polled      bool
	lastOK      bool
	lastSuccess time.Time
	lastError   string
}

// NewHealth returns a Health for the given sources, polled every interval; now is its clock.
func NewHealth(sources []string, interval time.Duration, now func() time.Time) *Health {
	h := &Health{interval: interval, now: now, started: now(), sources: map[string]*sourceHealth{}}
	for _, s := range sources {
		h.sources[s] = &sourceHealth{}
	}
	return h
}

// Observe records the outcome of one poll of source that ended at.
func (h *Health) Observe(source string, ok bool, errText string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sources[source]
	if s == nil {
		s = &sourceHealth{}
		h.sources[source] = s
	}
	s.polled, s.lastOK = true, ok
	if ok {
		s.lastSuccess, s.lastError = at, ""
	} else {
		s.lastError = errText
	}
}

// Problems returns one line per unhealthy source, sorted; none means healthy.
func (h *Health) Problems() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	var out []string
	for name, s := range h.sources {
		if !s.polled || s.lastOK {
			continue
		}
		since := s.lastSuccess
		if since.IsZero() {
			since = h.started
		}
		if now.Sub(since) <= 2*h.interval {
			continue
		}
		what := "no successful poll since the process started"
		if !s.lastSuccess.IsZero() {
			what = "last successful poll " + s.lastSuccess.UTC().Format(time.RFC3339)
		}
		out = append(out, fmt.Sprintf("%s: %s (more than 2 poll intervals of %s); last error: %s", name, what, h.interval, s.lastError))
	}
	slices.Sort(out)
	return out
}

// ServeHTTP answers 200 "ok" when every source is healthy, else 503 with the problems.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if p := h.Problems(); len(p) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(p, "\n"))
		return
	}
	fmt.Fprintln(w, "ok")
}
