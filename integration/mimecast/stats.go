package mimecast

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Stats is a snapshot of a Client's call statistics since New.
type Stats struct {
	Calls          int64         // HTTP attempts: API calls, token requests and downloads
	CallsPerMinute float64       // Calls over the wall time since New
	ByStatus       map[int]int64 // answers by HTTP status
	HTTPErrors     int64         // answers with status >= 400, plus attempts that got no answer
	RateLimited    int64         // answers with 429
	Retries        int64         // attempts repeated after a retryable error
	Downloads      int64         // file bodies handed to callers (streamed or pre-signed)
	DownloadBytes  int64         // bytes read by callers from those bodies
	TokenRefreshes int64         // successful token fetches, the first one included
}

// counters is the live, concurrency-safe form of Stats.
type counters struct {
	start          time.Time
	calls          atomic.Int64
	httpErrors     atomic.Int64
	rateLimited    atomic.Int64
	retries        atomic.Int64
	downloads      atomic.Int64
	downloadBytes  atomic.Int64
	tokenRefreshes atomic.Int64

	mu       sync.Mutex
	byStatus map[int]int64
}

func newCounters() *counters {
	return &counters{start: time.Now(), byStatus: map[int]int64{}}
}

// answered counts an attempt that got an HTTP answer.
func (c *counters) answered(status int) {
	c.calls.Add(1)
	if status >= 400 {
		c.httpErrors.Add(1)
	}
	if status == 429 {
		c.rateLimited.Add(1)
	}
	c.mu.Lock()
	c.byStatus[status]++
	c.mu.Unlock()
}

// failed counts an attempt that got no answer (network error, timeout, cancellation).
func (c *counters) failed() {
	c.calls.Add(1)
	c.httpErrors.Add(1)
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	by := maps.Clone(c.byStatus)
	c.mu.Unlock()
	s := Stats{
		Calls:          c.calls.Load(),
		ByStatus:       by,
		HTTPErrors:     c.httpErrors.Load(),
		RateLimited:    c.rateLimited.Load(),
		Retries:        c.retries.Load(),
		Downloads:      c.downloads.Load(),
		DownloadBytes:  c.downloadBytes.Load(),
		TokenRefreshes: c.tokenRefreshes.Load(),
	}
	// Elapsed real time, not the injectable clock: a rate is about how fast we really go.
	if mins := time.Since(c.start).Minutes(); mins > 0 {
		s.CallsPerMinute = float64(s.Calls) / mins
	}
	return s
}

// logStats writes one Info line with the statistics.
func logStats(log zerolog.Logger, s Stats) {
	by := zerolog.Dict()
	for status, n := range s.ByStatus {
		by = by.Int64(strconv.Itoa(status), n)
	}
	log.Info().
		Int64("calls", s.Calls).
		Float64("calls_per_minute", s.CallsPerMinute).
		Dict("by_status", by).
		Int64("http_errors", s.HTTPErrors).
		Int64("rate_limited", s.RateLimited).
		Int64("retries", s.Retries).
		Int64("downloads", s.Downloads).
		Int64("download_bytes", s.DownloadBytes).
		Int64("token_refreshes", s.TokenRefreshes).
		Msg("api call statistics")
}
