package mimecast

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Stats is a snapshot of a Client's call statistics since New.
type Stats struct {
	Calls int64 // HTTP attempts: API calls, token requests and downloads (see APICalls)
	// CallsPerMinute is Calls (downloads included) over the wall time since New, or 0 while that is shorter than
	// RateWindow: a rate extrapolated from a few milliseconds means nothing.
	CallsPerMinute float64
	Elapsed        time.Duration // wall time since New
	ByStatus       map[int]int64 // answers by HTTP status
	// ByEndpoint counts attempts by endpoint and status. The endpoint is the call's method and
	// path template ("POST /api/archive/get-message-list"), EndpointToken for token requests
	// and EndpointDownload for pre-signed downloads: a small, fixed set. Status is 0 for an
	// attempt that got no answer.
	ByEndpoint map[EndpointStatus]int64
	// QuotaWait is the time calls spent waiting for the pacers and budgets of their quota
	// groups (after 429s, or to stay within a published budget), summed over calls.
	QuotaWait time.Duration
	// APICalls is the attempts that count against a quota: every call of an API endpoint,
	// not token requests nor downloads from pre-signed URLs (Calls counts those too).
	APICalls int64
	// APICallsPerMinute is APICalls over Elapsed, 0 while that is shorter than RateWindow.
	APICallsPerMinute float64
	// TokenRequests and DownloadRequests are the other attempts: to the token endpoint and to
	// pre-signed download URLs. Calls = APICalls + TokenRequests + DownloadRequests.
	TokenRequests    int64
	DownloadRequests int64
	// Groups gives, by quota group ("account" for every legacy /api endpoint, "threats",
	// "siem-batch", "siem-stream"), the API attempts, the answers 429 and the time its calls
	// waited for its pacer. A crawl and an alerts poller on one API application share the
	// account's quota: each process sees only its own calls.
	Groups         map[string]GroupStats
	HTTPErrors     int64 // answers with status >= 400, plus attempts that got no answer
	RateLimited    int64 // answers with 429
	Retries        int64 // attempts repeated after a retryable error
	Downloads      int64 // file bodies handed to callers (streamed or pre-signed)
	DownloadBytes  int64 // bytes read by callers from those bodies
	TokenRefreshes int64 // successful token fetches, the first one included
	// Concurrency is the bound on archive requests in flight (Config.Concurrency); zero when
	// the Client has none.
	Concurrency ConcurrencyStats
}

// GroupStats are the numbers of one quota group.
type GroupStats struct {
	Calls       int64         // API attempts
	RateLimited int64         // answers 429
	QuotaWait   time.Duration // time its calls waited for its pacer, budget or a 429's hint
}

// RateWindow is the shortest elapsed time over which Stats computes a rate.
const RateWindow = 10 * time.Second

// Endpoint names of the attempts that are not API calls.
const (
	EndpointToken    = "token"
	EndpointDownload = "download"
)

// EndpointStatus keys Stats.ByEndpoint.
type EndpointStatus struct {
	Endpoint string
	Status   int // 0: no answer
}

// endpointKey carries the endpoint name of an API call's attempts to the transport.
type endpointKey struct{}

// withEndpoint names the endpoint of the requests made with ctx, for the statistics.
func withEndpoint(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, endpointKey{}, name)
}

// endpointOf returns the endpoint name of a request: the one its call set, else a download or
// a token request (the only exchanges made without one).
func endpointOf(ctx context.Context) string {
	if name, ok := ctx.Value(endpointKey{}).(string); ok {
		return name
	}
	if ctx.Value(downloadKey{}) != nil {
		return EndpointDownload
	}
	return EndpointToken
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
	quotaWait      atomic.Int64 // nanoseconds

	mu         sync.Mutex
	byStatus   map[int]int64
	byEndpoint map[EndpointStatus]int64
	groupWait  map[string]time.Duration
}

// addQuotaWait counts d of waiting for group's quota.
func (c *counters) addQuotaWait(group string, d time.Duration) {
	if d <= 0 {
		return
	}
	c.quotaWait.Add(int64(d))
	c.mu.Lock()
	c.groupWait[group] += d
	c.mu.Unlock()
}

func newCounters() *counters {
	return &counters{start: time.Now(), byStatus: map[int]int64{}, byEndpoint: map[EndpointStatus]int64{}, groupWait: map[string]time.Duration{}}
}

// answered counts an attempt to endpoint that got an HTTP answer.
func (c *counters) answered(endpoint string, status int) {
	c.calls.Add(1)
	if status >= 400 {
		c.httpErrors.Add(1)
	}
	if status == 429 {
		c.rateLimited.Add(1)
	}
	c.mu.Lock()
	c.byStatus[status]++
	c.byEndpoint[EndpointStatus{endpoint, status}]++
	c.mu.Unlock()
}

// failed counts an attempt to endpoint that got no answer (network error, timeout,
// cancellation).
func (c *counters) failed(endpoint string) {
	c.calls.Add(1)
	c.httpErrors.Add(1)
	c.mu.Lock()
	c.byEndpoint[EndpointStatus{endpoint, 0}]++
	c.mu.Unlock()
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	by := maps.Clone(c.byStatus)
	byEndpoint := maps.Clone(c.byEndpoint)
	groups := map[string]GroupStats{}
	for g, d := range c.groupWait {
		groups[g] = GroupStats{QuotaWait: d}
	}
	c.mu.Unlock()
	var apiCalls, tokenRequests, downloadRequests int64
	for k, n := range byEndpoint {
		switch k.Endpoint {
		case EndpointToken:
			tokenRequests += n
		case EndpointDownload:
			downloadRequests += n
		}
		g, ok := groupOf(k.Endpoint)
		if !ok {
			continue
		}
		apiCalls += n
		gs := groups[g]
		gs.Calls += n
		if k.Status == 429 {
			gs.RateLimited += n
		}
		groups[g] = gs
	}
	s := Stats{
		Calls:            c.calls.Load(),
		ByStatus:         by,
		ByEndpoint:       byEndpoint,
		QuotaWait:        time.Duration(c.quotaWait.Load()),
		HTTPErrors:       c.httpErrors.Load(),
		RateLimited:      c.rateLimited.Load(),
		Retries:          c.retries.Load(),
		Downloads:        c.downloads.Load(),
		DownloadBytes:    c.downloadBytes.Load(),
		TokenRefreshes:   c.tokenRefreshes.Load(),
		APICalls:         apiCalls,
		TokenRequests:    tokenRequests,
		DownloadRequests: downloadRequests,
		Groups:           groups,
	}
	// Elapsed real time, not the injectable clock: a rate is about how fast we really go.
	s.Elapsed = time.Since(c.start)
	if s.Elapsed >= RateWindow {
		s.CallsPerMinute = float64(s.Calls) / s.Elapsed.Minutes()
		s.APICallsPerMinute = float64(s.APICalls) / s.Elapsed.Minutes()
	}
	return s
}

// groupOf returns the quota group of an endpoint name ("POST /api/...", "GET /siem/..."), and
// false for token requests and downloads, which count against no quota.
func groupOf(endpoint string) (string, bool) {
	if endpoint == EndpointToken || endpoint == EndpointDownload {
		return "", false
	}
	_, path, ok := strings.Cut(endpoint, " ")
	if !ok {
		return "", false
	}
	return quotaGroup(path), true
}

// logStats writes one Info line with the statistics. calls_per_minute is left out while
// the elapsed time is shorter than RateWindow.
func logStats(log zerolog.Logger, s Stats) {
	by := zerolog.Dict()
	for status, n := range s.ByStatus {
		by = by.Int64(strconv.Itoa(status), n)
	}
	ev := log.Info().
		Int64("calls", s.Calls).
		Float64("elapsed_seconds", s.Elapsed.Seconds())
	if s.Elapsed >= RateWindow {
		ev = ev.Float64("calls_per_minute", s.CallsPerMinute).Float64("api_calls_per_minute", s.APICallsPerMinute)
	}
	groups := zerolog.Dict()
	for _, g := range slices.Sorted(maps.Keys(s.Groups)) {
		gs := s.Groups[g]
		groups = groups.Dict(g, zerolog.Dict().Int64("calls", gs.Calls).Int64("rate_limited", gs.RateLimited).
			Float64("quota_wait_seconds", gs.QuotaWait.Seconds()))
	}
	if c := s.Concurrency; c.Limit > 0 {
		ev = ev.Int("concurrency_limit", c.Limit).Float64("concurrency_limit_avg", c.LimitAvg).
			Int("concurrency_limit_max", c.LimitMax).Int("inflight_max", c.InFlightMax)
	}
	ev.Int64("api_calls", s.APICalls).Int64("download_requests", s.DownloadRequests).Int64("token_requests", s.TokenRequests).
		Dict("quota_groups", groups).Dict("by_status", by).
		Float64("quota_wait_seconds", s.QuotaWait.Seconds()).
		Int64("http_errors", s.HTTPErrors).
		Int64("rate_limited", s.RateLimited).
		Int64("retries", s.Retries).
		Int64("downloads", s.Downloads).
		Int64("download_bytes", s.DownloadBytes).
		Int64("token_refreshes", s.TokenRefreshes).
		Msg("api call statistics")
}
