package metrics

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Namespace prefixes every series name.
const Namespace = "mimecrawl"

// Job is the Pushgateway job name of every push.
const Job = "mimecrawl"

// APIStats is the Mimecast client as the metrics see it. Implemented by *mimecast.Client.
// Stats returns counters since the client was made; they never decrease.
type APIStats interface {
	Stats() mimecast.Stats
}

// WriterStats is the bulk writer as the metrics see it. Implemented by *index.Writer. Stats
// returns counters since the writer was made; they never decrease.
type WriterStats interface {
	Stats() index.WriterStats
}

// FilterStats is the alert rules as the metrics see them. Implemented by *alerts.Rules (not
// asserted here: metrics does not import alerts). FilterLimited counts filter evaluations
// stopped at a bound since the rules were made; it never decreases.
type FilterStats interface {
	FilterLimited() int64
}

var (
	_ APIStats    = (*mimecast.Client)(nil)
	_ WriterStats = (*index.Writer)(nil)
)

// Metrics is one process's registry and the series in it.
type Metrics struct {
	reg *prometheus.Registry

	docsIndexed  *prometheus.CounterVec
	docsExisting *prometheus.CounterVec
	docsFailed   *prometheus.CounterVec

	now func() time.Time

	mu      sync.Mutex
	api     APIStats
	writer  WriterStats
	filters FilterStats
	lag     *lagSnapshot
	run     *RunResult
	sources []SourceStatus
}

// Options configure New.
type Options struct {
	// WorstN is how many of the most lagging mailboxes get a series of their own (0: none).
	WorstN int
	// Now is the clock of the lag series; nil means time.Now.
	Now func() time.Time
}

// New returns Metrics with a registry of their own.
func New(o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{reg: prometheus.NewRegistry(), now: o.Now}
	m.docsIndexed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "documents_indexed_total",
		Help: "Documents Elasticsearch acknowledged as written, by kind (index suffix).",
	}, []string{"kind"})
	m.docsExisting = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "documents_existing_total",
		Help: "Documents written only if new that Elasticsearch already had (re-reads), by kind.",
	}, []string{"kind"})
	m.docsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "documents_failed_total",
		Help: "Documents that did not reach Elasticsearch (refused, or not sent before the run ended), by kind.",
	}, []string{"kind"})
	m.reg.MustRegister(m.docsIndexed, m.docsExisting, m.docsFailed, &snapshots{m: m, worstN: o.WorstN})
	return m
}

// AddRuntime registers the Go runtime and process collectors: for a long-running process
// that is scraped, not for a push.
func (m *Metrics) AddRuntime() {
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Gatherer returns the registry, for tests and for pushing.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// WatchAPI makes the API series read s at every gather.
func (m *Metrics) WatchAPI(s APIStats) {
	m.mu.Lock()
	m.api = s
	m.mu.Unlock()
}

// WatchFilters makes the alert filter series read f at every gather.
func (m *Metrics) WatchFilters(f FilterStats) {
	m.mu.Lock()
	m.filters = f
	m.mu.Unlock()
}

// WatchWriter makes the bulk series read w at every gather.
func (m *Metrics) WatchWriter(w WriterStats) {
	m.mu.Lock()
	m.writer = w
	m.mu.Unlock()
}

// RunResult is how a run ended.
type RunResult struct {
	Started  time.Time
	Finished time.Time
	ExitCode int
	// TextMisses counts the attachments indexed without text, by format and reason.
	TextMisses []TextMiss
}

// TextMiss is a count of attachments indexed without text for one reason in one format.
type TextMiss struct {
	Format, Reason string
	Count          int64
}

// SetRun records how the run ended. A run succeeded when its exit code is 0.
func (m *Metrics) SetRun(r RunResult) {
	m.mu.Lock()
	m.run = &r
	m.mu.Unlock()
}

// MailboxToken is the delta token of one mailbox: the oldest of its views' tokens, zero when
// some view never completed a pass.
type MailboxToken struct {
	Mailbox string
	Token   time.Time
}

type lagSnapshot struct {
	lags    []lagEntry // sorted, largest first
	without int
}

type lagEntry struct {
	mailbox string
	seconds float64
}

// SetMailboxLag records the lag (now minus the delta token, as of this call) of every
// mailbox. Mailboxes without a token are counted apart: their lag is not defined yet.
func (m *Metrics) SetMailboxLag(tokens []MailboxToken) {
	now := m.now()
	s := &lagSnapshot{}
	for _, t := range tokens {
		if t.Token.IsZero() {
			s.without++
			continue
		}
		s.lags = append(s.lags, lagEntry{t.Mailbox, max(now.Sub(t.Token).Seconds(), 0)})
	}
	slices.SortFunc(s.lags, func(a, b lagEntry) int {
		return cmp.Or(cmp.Compare(b.seconds, a.seconds), cmp.Compare(a.mailbox, b.mailbox))
	})
	m.mu.Lock()
	m.lag = s
	m.mu.Unlock()
}

// SourceStatus is where one alert source stands after a pass.
type SourceStatus struct {
	Source      string
	LatestEvent time.Time // newest event acknowledged; zero when none yet
	LastPoll    time.Time // end of the last poll; zero when none yet
	Forbidden   bool      // the API answered 403: the application lacks the permission
	Failing     bool      // the last poll ended with an error
	Pending     int       // alerts and SIEM files parked in the source's cursors, tried again each pass
}

// SetAlertSources records the alert sources' state; their lag is computed at each gather.
func (m *Metrics) SetAlertSources(sources []SourceStatus) {
	m.mu.Lock()
	m.sources = slices.Clone(sources)
	m.mu.Unlock()
}

// Push sends the registry to the Pushgateway at url as job Job, grouped by the labels in
// grouping, replacing the series of the same names in that group and keeping the others
// (POST): a failed run leaves the last success timestamp of an earlier run in place.
func (m *Metrics) Push(ctx context.Context, url string, grouping map[string]string, client *http.Client) error {
	p := push.New(url, Job).Gatherer(m.reg).Client(client)
	keys := make([]string, 0, len(grouping))
	for k := range grouping {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p = p.Grouping(k, grouping[k])
	}
	if err := p.AddContext(ctx); err != nil {
		return fmt.Errorf("push metrics to the pushgateway: %w", err)
	}
	return nil
}

// statusLabel is the status label of an API call: the HTTP status, or "none" when the
// attempt got no answer.
func statusLabel(code int) string {
	if code == 0 {
		return "none"
	}
	return strconv.Itoa(code)
}
