package mimecast

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Config holds everything a Client needs. Zero durations and counts marked "0 = the default"
// take theirs from DefaultConfig, which is also where the configuration's defaults for them
// come from.
type Config struct {
	BaseURL              string        // e.g. https://api.services.mimecast.com (or the us-/uk- regional host)
	AuthURL              string        // token endpoint; "" = BaseURL + "/oauth/token"
	ClientID             string        // API 2.0 application client id
	ClientSecret         string        // API 2.0 application client secret
	AuthTokenOffset      time.Duration // added to the token's expiry; negative = refresh early, 0 = exactly at expiry
	RetryAfterMultiplier float64       // scales the server's wait hint; 1 = as asked; 0 = the default (DefaultConfig)
	MaxRetries           int           // retries per call for retryable errors; 0 (or negative) = none, see DefaultMaxRetries
	MinBackoff           time.Duration // first backoff without a server hint, doubling with jitter; 0 = the default
	MaxBackoff           time.Duration // cap of backoff without a hint; 0 = the default
	MaxWait              time.Duration // clamp for server hints; 0 = the default
	RequestTimeout       time.Duration // per HTTP attempt (for downloads: longest pause between reads); 0 = the default
	Trace                TraceLevel    // how much HTTP traffic to log
	StatsInterval        time.Duration // period of the statistics log line; 0 = none
	HTTPClient           *http.Client  // optional; its Transport is the base transport
	// Logger gets the client's lines as they are: the caller names the component (a child
	// logger with component=mimecast), once; adding it here as well wrote the key twice.
	Logger zerolog.Logger
	Now    func() time.Time // optional clock, for token expiry and date hints
	// Client-side budgets of the SIEM endpoints, on top of the 429 handling; zero = the
	// published limits (batch 50 calls / 15 min, stream 300 calls / h), Calls < 0 = none.
	SIEMBatchBudget  Budget
	SIEMStreamBudget Budget
	// Concurrency bounds the archive requests in flight (account-quota calls and downloads);
	// the zero value sets no bound.
	Concurrency Concurrency
}

// DefaultMaxRetries is the retries per call that performance.max_retries defaults to. The
// Client's zero is no retry, as in the configuration: 0 is a setting, not "unset".
const DefaultMaxRetries = 8

// DefaultBaseURL is the global API host, mimecast.base_url's default.
const DefaultBaseURL = "https://api.services.mimecast.com"

// DefaultConfig returns the client's defaults. config.Default takes the defaults of the
// mimecast and performance settings that reach the client from here; New gives a zero
// RetryAfterMultiplier, RequestTimeout or backoff its default from here too. AuthTokenOffset,
// MaxRetries and StatsInterval are taken as given by New (zero is a choice: renew at expiry,
// no retry, no periodic line).
func DefaultConfig() Config {
	return Config{
		BaseURL:              DefaultBaseURL,
		AuthTokenOffset:      -60 * time.Second,
		RetryAfterMultiplier: 1,
		MaxRetries:           DefaultMaxRetries,
		MinBackoff:           500 * time.Millisecond,
		MaxBackoff:           60 * time.Second,
		MaxWait:              5 * time.Minute,
		RequestTimeout:       2 * time.Minute,
		StatsInterval:        60 * time.Second,
	}
}

const (

	// maxJSONBody bounds a JSON answer held in memory; a page of 500 message summaries is
	// well under 1 MB, so anything near this is not a Mimecast answer.
	maxJSONBody = 64 << 20
	// maxErrorBody bounds what is read of a non-2xx answer.
	maxErrorBody = 1 << 20
)

// Client calls the Mimecast API 2.0. It is safe for concurrent use; all goroutines share one
// token and one pacer, so a 429 slows every worker down together.
type Client struct {
	base       string // BaseURL without a trailing slash
	maxRetries int
	minBackoff time.Duration
	maxBackoff time.Duration
	maxWait    time.Duration
	multiplier float64
	timeout    time.Duration

	http   *http.Client
	log    zerolog.Logger
	now    func() time.Time
	tokens *tokens
	pacers *pacers
	stats  *counters
	limit  *limiter  // nil: no bound on requests in flight
	shapes *shapeLog // unexpected answer shapes already warned about

	shapeWarned atomic.Bool // an unknown REST page shape was logged once

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New checks cfg and returns a Client. It does not contact Mimecast; see Authenticate.
// If cfg.StatsInterval > 0 a goroutine logs statistics until Close.
func New(cfg Config) (*Client, error) {
	base, err := checkURL("BaseURL", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.AuthURL == "" {
		cfg.AuthURL = strings.TrimRight(base.String(), "/") + "/oauth/token"
	}
	if _, err := checkURL("AuthURL", cfg.AuthURL); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("mimecast client: ClientID and ClientSecret are required")
	}
	if cfg.RetryAfterMultiplier < 0 {
		return nil, fmt.Errorf("mimecast client: RetryAfterMultiplier %v: want >= 0", cfg.RetryAfterMultiplier)
	}
	// Latencies are real elapsed time whatever cfg.Now says, like the pacer's waits.
	limit, err := newLimiter(cfg.Concurrency, time.Now)
	if err != nil {
		return nil, err
	}
	def := DefaultConfig()
	c := &Client{
		limit:      limit,
		base:       strings.TrimRight(base.String(), "/"),
		maxRetries: max(cfg.MaxRetries, 0),
		minBackoff: orDefault(cfg.MinBackoff, def.MinBackoff),
		maxBackoff: orDefault(cfg.MaxBackoff, def.MaxBackoff),
		maxWait:    orDefault(cfg.MaxWait, def.MaxWait),
		multiplier: orDefault(cfg.RetryAfterMultiplier, def.RetryAfterMultiplier),
		timeout:    orDefault(cfg.RequestTimeout, def.RequestTimeout),
		log:        cfg.Logger,
		now:        cfg.Now,
		stats:      newCounters(),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if c.maxBackoff < c.minBackoff {
		c.maxBackoff = c.minBackoff
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.shapes = newShapeLog(c.log)
	c.pacers = newPacers(func() *pacer {
		// Real time, whatever cfg.Now says: the pacer's waits are real sleeps.
		return newPacer(c.minBackoff, c.maxBackoff, c.maxWait, c.multiplier, time.Now)
	}, map[string]Budget{
		groupSIEMBatch:  orDefault(cfg.SIEMBatchBudget, defaultSIEMBatchBudget),
		groupSIEMStream: orDefault(cfg.SIEMStreamBudget, defaultSIEMStreamBudget),
	})

	var baseRT http.RoundTripper
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		baseRT = cfg.HTTPClient.Transport
	} else {
		baseRT = pooledTransport(cfg.Concurrency.Max)
	}
	rt := &transport{next: baseRT, level: cfg.Trace, log: c.log, stats: c.stats}
	// Timeouts are per attempt, set by the caller of each request; the http.Client has none
	// so that a long download is not cut off while it is still moving.
	c.http = &http.Client{Transport: rt}
	if cfg.HTTPClient != nil {
		c.http.CheckRedirect = cfg.HTTPClient.CheckRedirect
		c.http.Jar = cfg.HTTPClient.Jar
	}
	c.tokens = newTokens(cfg.AuthURL, cfg.ClientID, cfg.ClientSecret, cfg.AuthTokenOffset, c.timeout, c.http, c.now, c.stats)
	rt.scrub = c.tokens.scrub

	if cfg.StatsInterval > 0 {
		go c.logStatsEvery(cfg.StatsInterval)
	} else {
		close(c.done)
	}
	return c, nil
}

// Close stops the statistics goroutine and logs the final statistics. It is idempotent.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
		logStats(c.log, c.Stats())
	})
}

// Stats returns a snapshot of the call statistics.
func (c *Client) Stats() Stats {
	s := c.stats.snapshot()
	s.Concurrency = c.limit.stats()
	return s
}

// QuotaWait reports how long calls against the account's quota (every archive and directory
// endpoint) must still wait before the next one may start because Mimecast answered 429; 0
// when none waits. It only reads, for progress displays.
func (c *Client) QuotaWait() time.Duration { return c.pacers.get(groupAccount).pending() }

// Authenticate fetches a token now, whatever is cached, so that a bad client id or secret is
// reported before any work starts. Unreachable or overloaded token endpoints are retried.
func (c *Client) Authenticate(ctx context.Context) error {
	for retry := 0; ; retry++ {
		_, err := c.tokens.fetchNow(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("authenticate: %w", ctx.Err())
		}
		if !IsRetryable(err) || retry >= c.maxRetries {
			return err
		}
		if err := c.backoff(ctx, err, retry+1); err != nil {
			return fmt.Errorf("authenticate: %w", err)
		}
	}
}

func (c *Client) logStatsEvery(d time.Duration) {
	defer close(c.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			logStats(c.log, c.Stats())
		case <-c.stop:
			return
		}
	}
}

// defaultIdlePerHost is the idle connections kept per host when Concurrency sets no bound.
const defaultIdlePerHost = 64

// pooledTransport is http.DefaultTransport keeping enough idle connections per host for
// inflight requests at once (defaultIdlePerHost if 0). The default keeps two: every request
// beyond them would open a new connection, TCP and TLS handshakes included, one more round
// trip or two of latency per call, and a request in flight more for the same throughput.
func pooledTransport(inflight int) http.RoundTripper {
	def, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t := def.Clone()
	if inflight <= 0 {
		inflight = defaultIdlePerHost
	}
	// The API host and the download host each see up to inflight at once.
	t.MaxIdleConnsPerHost = inflight
	t.MaxIdleConns = max(t.MaxIdleConns, 2*inflight)
	return t
}

func checkURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mimecast client: %s %q: want an absolute http(s) URL such as https://api.services.mimecast.com", field, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("mimecast client: %s %q: want no query or fragment", field, raw)
	}
	return u, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
