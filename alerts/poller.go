package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/state"
)

// Options tune a Poller. Zero values take the defaults of DefaultOptions, but Overlap.
type Options struct {
	// Sources are polled, each with its own cursor; required.
	Sources []Source
	// PollInterval is the pause between passes of Run.
	PollInterval time.Duration
	// Lookback is how far back a source's first pass reads, clamped to what its endpoint
	// keeps.
	Lookback time.Duration
	// Overlap is how far before its cursor a time-window source re-reads, taken as is: zero
	// re-reads nothing (alerts.overlap: 0). DefaultOptions has alerts.overlap's default.
	Overlap time.Duration
	// PageSize is asked of every endpoint, capped at what each allows.
	PageSize int
	// MaxRecordBytes bounds one record (alerts.max_record_size); a larger one is counted as
	// unusable (ReasonTooLarge).
	MaxRecordBytes int
	// MaxWait, when > 0, bounds how long one API call of a source may take, its waits for
	// quota and its retries included; a call that takes longer ends the source's pass with
	// ErrMaxWait (the pass fails; the cursor keeps what was acknowledged). The command sets
	// it (alerts.max_wait) for --once only: a scheduled pass must end.
	MaxWait time.Duration
	// MaxPages bounds the pages of one window (one pass of a SIEM cursor); more ends the
	// window as pages_looped, without passing it (see paging.go).
	MaxPages int
	// Types, Statuses and Routes are the selections, sent to the endpoints whose parameters
	// take the same words (types and statuses to the threat feed, routes to the attachment,
	// URL and DLP logs). Rules apply them again to every alert, so a source that ignores a
	// parameter cannot widen the selection.
	Types, Statuses, Routes []string
	// SIEMTypes are the SIEM event types read (by default the security types,
	// DefaultSIEMTypes). SIEMStream reads the near-real-time stream instead of batch files.
	SIEMTypes  []string
	SIEMStream bool
	// DetailsURL, when set, links every alert to the Mimecast console.
	DetailsURL *DetailsTemplate
	// AckGrace bounds how long a pass that is being stopped waits for Elasticsearch to
	// acknowledge what it already sent, so that the cursor can record it.
	AckGrace time.Duration
	// ContentView looks up in the archive (Deps.Messages) the messages of alerts that the
	// messages index does not hold: get-message-list of the internal mailbox within
	// ContentWindow of the alert's time, then get-message-detail of at most
	// ContentCandidates of the listed messages, those with the alert's subject first.
	ContentView       bool
	ContentWindow     time.Duration
	ContentCandidates int
	// DirectoryTTL is how long the recipient directory is cached.
	DirectoryTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Normalize decodes one record of an alert source; default Normalize. Event sources
	// decode with their spec's decoder (Decode).
	Normalize func(Source, json.RawMessage) (Alert, error)
	Logger    zerolog.Logger
}

// Deps are the Poller's collaborators. Logs, Threats, SIEM and API are needed only for the
// sources that use them; Archive and Directory are optional enrichments.
type Deps struct {
	Logs    LogSource
	Threats ThreatSource
	SIEM    SIEMSource
	Sink    Sink
	Cursors CursorStore
	Rules   Decider
	// Groups keeps {prefix}-alert-groups; nil leaves groups out.
	Groups    GroupStore
	Archive   Archive
	Directory Directory
	// Messages is the Mimecast archive, for Options.ContentView; nil leaves it off.
	Messages MessageArchive
	// Stream gives the data streams the sources write (datastream.go): before a page is
	// written its ids are looked up in its source's stream, so that a document already there,
	// in whatever backing index, is not written again after a rollover. nil (tests of the
	// poller alone) relies on the sink's op_type create only and writes
	// data_stream.namespace "default".
	Stream Stream
	// API is the Mimecast client, for the sources that declare their reader in their own
	// file (SourceSpec.pages): each asserts the one interface it needs, and New refuses a
	// configured source whose reader API lacks. nil when no such source is configured.
	API any
	// Liveness, when set, learns of every API call of a source, when it starts and when it
	// ends (and of every record of a SIEM file): the sign of life of the source's loop.
	Liveness Liveness
}

// Liveness learns that a source's loop is alive. Sources poll on goroutines of their own,
// so Beat is called concurrently. Implemented by *metrics.Health.
type Liveness interface {
	Beat(source string)
}

// DefaultSIEMTypes are the SIEM event types that report threats (alerts.siem.types's
// default); receipt, process, delivery and journal describe every message and are left out
// unless asked for.
var DefaultSIEMTypes = config.DefaultSIEMTypes()

// Retention of each endpoint: how far back it can be asked. Zero: none documented.
const (
	siemStreamRetention = 24 * time.Hour
	siemBatchRetention  = 7 * 24 * time.Hour
	// retentionMargin keeps a first request clear of the retention edge, which moves while
	// the request travels (a start older than 24h is answered 400).
	retentionMargin = 5 * time.Minute
	// restPageLimit is the largest page the REST endpoints accept.
	restPageLimit = 100
)

// Poller polls the alert sources and writes their alerts. Create it with New.
type Poller struct {
	d      Deps
	o      Options
	log    zerolog.Logger
	enrich *enricher
	// groups sizes the group reads of every pass by the largest group seen.
	groups groupSizer
	// guard bounds and watches the page calls of pages sources (the other readers are
	// decorated with it in New).
	guard guard
}

// DefaultOptions returns the poller's defaults. Those of the alerts settings are the
// configuration's (config.Default: package alerts takes its settings' vocabulary from config,
// so config is where they are written, once); the others are the poller's own. New gives an
// option left at zero its default, except Overlap, which it takes as is: zero re-reads
// nothing, as alerts.overlap: 0 says.
func DefaultOptions() Options {
	a := config.Default().Alerts
	return Options{
		PollInterval:      a.PollInterval.D(),
		Lookback:          a.Lookback.D(),
		Overlap:           a.Overlap.D(),
		PageSize:          a.PageSize,
		MaxRecordBytes:    int(a.MaxRecordSize),
		MaxPages:          a.MaxPages,
		SIEMTypes:         a.SIEM.Types,
		AckGrace:          10 * time.Second,
		ContentWindow:     defaultContentWindow,
		ContentCandidates: defaultContentCandidates,
		DirectoryTTL:      6 * time.Hour,
	}
}

// defaults gives every option left at zero, but Overlap, its default from DefaultOptions.
func (o *Options) defaults() {
	d := DefaultOptions()
	orDefault(&o.PollInterval, d.PollInterval)
	orDefault(&o.Lookback, d.Lookback)
	orDefault(&o.AckGrace, d.AckGrace)
	orDefault(&o.ContentWindow, d.ContentWindow)
	orDefault(&o.DirectoryTTL, d.DirectoryTTL)
	orDefault(&o.PageSize, d.PageSize)
	orDefault(&o.MaxRecordBytes, d.MaxRecordBytes)
	orDefault(&o.MaxPages, d.MaxPages)
	orDefault(&o.ContentCandidates, d.ContentCandidates)
	if len(o.SIEMTypes) == 0 {
		o.SIEMTypes = d.SIEMTypes
	}
}

// orDefault sets *v to def when it is zero or negative.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// New checks the options and returns a Poller.
func New(d Deps, o Options) (*Poller, error) {
	if len(o.Sources) == 0 {
		return nil, errors.New("alerts poller: no sources")
	}
	if d.Sink == nil || d.Cursors == nil || d.Rules == nil {
		return nil, errors.New("alerts poller: sink, cursor store and rules are required")
	}
	for _, s := range o.Sources {
		if err := checkNeeds(d, s); err != nil {
			return nil, fmt.Errorf("alerts poller: %w", err)
		}
	}
	if o.Overlap < 0 {
		return nil, fmt.Errorf("alerts poller: overlap %s: want 0 (none) or more", o.Overlap)
	}
	o.defaults()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Normalize == nil {
		o.Normalize = Normalize
	}
	// Every page call is watched (slow calls warned about) and, with MaxWait, bounded.
	g := guard{maxWait: o.MaxWait, now: o.Now, log: o.Logger, live: d.Liveness}
	if d.Logs != nil {
		d.Logs = boundedLogs{d.Logs, g}
	}
	if d.Threats != nil {
		d.Threats = boundedThreats{d.Threats, g}
	}
	if d.SIEM != nil {
		d.SIEM = boundedSIEM{d.SIEM, g}
	}
	p := &Poller{d: d, o: o, log: o.Logger, guard: g}
	p.enrich = newEnricher(d.Archive, d.Directory, o.DetailsURL, o.DirectoryTTL, o.PageSize, o.Now, o.Logger)
	if o.ContentView && d.Messages != nil {
		p.enrich.content = newContentViewer(d.Messages, o.ContentWindow, o.ContentCandidates, o.PageSize, o.Logger)
	}
	return p, nil
}

// PassSummary is the outcome of one pass over every source.
type PassSummary struct {
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Sources  []SourceSummary `json:"sources"`
}

// SourceSummary is what one pass did with one source: the state file's record of it
// (state.SourceOutcome, where each field is described), with the source's own type.
type SourceSummary struct {
	Source Source `json:"source"`
	state.SourceOutcome
}

// Failed reports whether any source of the pass ended with an error other than a 403 or
// being stopped, had an alert refused by Elasticsearch, or holds parked alerts or files: something
// was not written, and `alerts --once` exits 3 for it, like the crawl.
func (s PassSummary) Failed() bool {
	for _, src := range s.Sources {
		if (src.Error != "" && !src.Forbidden && !src.Interrupted) || src.Rejected > 0 || src.Pending > 0 || src.FilesPending > 0 {
			return true
		}
	}
	return false
}

// counters are a source's counts during a pass, updated from several goroutines.
type counters struct {
	records, indexed, existing, filterErrors, malformed, repeats, filesSkipped, groups, rejected atomic.Int64
	pagesLooped, recordsUnread, pending, filesPending                                            atomic.Int64

	mu               sync.Mutex
	excluded         map[string]int64
	malformedReasons map[string]int64
}

func (c *counters) malformedBy(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.malformedReasons == nil {
		c.malformedReasons = map[string]int64{}
	}
	c.malformedReasons[reason]++
}

func (c *counters) exclude(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.excluded == nil {
		c.excluded = map[string]int64{}
	}
	c.excluded[reason]++
}

func (c *counters) summary(src Source) SourceSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ex map[string]int64
	if len(c.excluded) > 0 {
		ex = make(map[string]int64, len(c.excluded))
		for k, v := range c.excluded {
			ex[k] = v
		}
	}
	var mr map[string]int64
	if len(c.malformedReasons) > 0 {
		mr = maps.Clone(c.malformedReasons)
	}
	return SourceSummary{Source: src, SourceOutcome: state.SourceOutcome{
		MalformedReasons: mr,
		Records:          c.records.Load(), Indexed: c.indexed.Load(), Existing: c.existing.Load(),
		Excluded: ex, FilterErrors: c.filterErrors.Load(), Malformed: c.malformed.Load(), Repeats: c.repeats.Load(),
		FilesSkipped: c.filesSkipped.Load(), Groups: c.groups.Load(), Rejected: c.rejected.Load(),
		PagesLooped: c.pagesLooped.Load(), RecordsUnread: c.recordsUnread.Load(), Pending: c.pending.Load(),
		FilesPending: c.filesPending.Load(),
	}}
}

// Once polls every source once, concurrently, and returns when all are done or ctx ends.
// A source's failure (403 included) is in its summary; the other sources carry on.
func (p *Poller) Once(ctx context.Context) PassSummary {
	sum := PassSummary{Started: p.o.Now().UTC()}
	results := make([]SourceSummary, len(p.o.Sources))
	p.enrich.startPass()
	var g errgroup.Group
	for i, src := range p.o.Sources {
		g.Go(func() error {
			results[i] = p.pollSource(ctx, src)
			return nil
		})
	}
	_ = g.Wait() // every goroutine returns nil: failures are in the summaries
	sum.Sources = results
	sum.Finished = p.o.Now().UTC()
	return sum
}

// Run polls each source on its own schedule until ctx ends: one goroutine per source, on an
// errgroup Run owns, each polling its source, reporting, and sleeping PollInterval on a
// timer that selects on ctx. A source that fails, waits on its quota or reads a long
// backlog delays no other (they still share the client's pacer per quota group). report
// (which may be nil) gets one PassSummary per source pass, never two at once. Run returns
// ctx's error once every source's goroutine has ended.
func (p *Poller) Run(ctx context.Context, report func(PassSummary)) error {
	var (
		mu sync.Mutex // serialises report
		g  errgroup.Group
	)
	for _, src := range p.o.Sources {
		g.Go(func() error {
			for {
				p.enrich.startPass() // re-arms once-per-pass warnings
				sum := PassSummary{Started: p.o.Now().UTC()}
				sum.Sources = []SourceSummary{p.pollSource(ctx, src)}
				sum.Finished = p.o.Now().UTC()
				if report != nil {
					mu.Lock()
					report(sum)
					mu.Unlock()
				}
				t := time.NewTimer(p.o.PollInterval)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		})
	}
	return g.Wait()
}

// pollSource runs one pass of one source and reports it.
func (p *Poller) pollSource(ctx context.Context, src Source) SourceSummary {
	c := &counters{}
	log := p.log.With().Str("source", string(src)).Logger()
	var (
		cursors []string
		err     error
	)
	switch sp, _ := Spec(src); {
	case sp.poll != nil:
		cursors, err = sp.poll(p, ctx, src, c, log)
	default:
		var cur string
		cur, err = p.pollWindow(ctx, src, c, log)
		cursors = []string{cur}
	}
	s := c.summary(src)
	s.Cursor = joinNonEmpty(cursors)
	var me *mimecast.Error
	switch {
	case err == nil:
	case mimecast.IsForbidden(err):
		s.Forbidden = true
		if errors.As(err, &me) {
			s.Permission = me.Permission
		}
		s.Error = "not permitted for this API application"
		log.Warn().Str("permission", s.Permission).Msg("source not permitted for this api application; the other sources carry on")
	case ctx.Err() != nil:
		s.Error, s.Interrupted = "interrupted", true // the cursor says how far it got
		log.Info().Err(err).Msg("source pass interrupted")
	default:
		s.Error = err.Error()
		log.Error().Err(err).Msg("source pass failed")
	}
	return s
}

func joinNonEmpty(ss []string) string {
	ss = slices.DeleteFunc(ss, func(s string) bool { return s == "" })
	switch len(ss) {
	case 0:
		return ""
	case 1:
		return ss[0]
	}
	out := ss[0]
	for _, s := range ss[1:] {
		out += "; " + s
	}
	return out
}
