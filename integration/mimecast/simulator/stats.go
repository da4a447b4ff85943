package simulator

import (
	"strings"
	"sync"
)

// Stats counts the requests the simulator answered (the control API is not counted).
type Stats struct {
	// Requests maps path -> HTTP status -> count; download paths count as "/_download".
	Requests map[string]map[int]int64 `json:"requests"`
	// RateLimited counts 429 answers, from the bucket or from faults.
	RateLimited int64 `json:"rate_limited"`
	// Total counts every request in Requests.
	Total int64 `json:"total"`
	// BearerOnDownload counts download requests that carried an Authorization header: a
	// client must not send its token to the download host, so tests assert this is 0.
	BearerOnDownload int64 `json:"bearer_on_download"`
	// TokensIssued counts successful /oauth/token answers.
	TokensIssued int64 `json:"tokens_issued"`
}

type statsRecorder struct {
	mu sync.Mutex
	s  Stats
}

func newStatsRecorder() *statsRecorder {
	return &statsRecorder{s: Stats{Requests: map[string]map[int]int64{}}}
}

func statsPath(path string) string {
	if strings.HasPrefix(path, downloadPrefix) {
		return strings.TrimSuffix(downloadPrefix, "/")
	}
	if len(path) > 200 {
		path = path[:200]
	}
	return path
}

func (r *statsRecorder) record(path string, status int, bearerOnDownload bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := statsPath(path)
	m := r.s.Requests[p]
	if m == nil {
		m = map[int]int64{}
		r.s.Requests[p] = m
	}
	m[status]++
	r.s.Total++
	if status == 429 {
		r.s.RateLimited++
	}
	if bearerOnDownload {
		r.s.BearerOnDownload++
	}
	if p == tokenPath && status == 200 {
		r.s.TokensIssued++
	}
}

func (r *statsRecorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.s
	out.Requests = make(map[string]map[int]int64, len(r.s.Requests))
	for p, m := range r.s.Requests {
		c := make(map[int]int64, len(m))
		for k, v := range m {
			c[k] = v
		}
		out.Requests[p] = c
	}
	return out
}

func (r *statsRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = Stats{Requests: map[string]map[int]int64{}}
}
