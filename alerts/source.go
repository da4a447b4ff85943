package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// The source table. Every source the poller reads is one SourceSpec, declared in a file of its
// own (source_<name>.go: its endpoint, reader, decoding, ids and ECS mapping) and listed once
// in sourceTable below. Everything that differs between sources is a field of the spec: the
// poller, Normalize, Probe, the configuration's vocabulary, status, check, health and the
// summaries iterate the table (or the configured names) and switch on nothing.
//
// Adding a source touches these places, and no others:
//  1. alerts/source_<name>.go: its Source constant, the reader interface its client method
//     meets (the Mimecast client, Deps.API, implements it), and its spec: Name, Endpoint,
//     Permission, Records, Kind, Retention, how it reads (pages for a time window read one
//     call per page; window for a reader of its own; poll for a machinery of its own, as
//     SIEM), and its decoder (decode for an event source, normalize for an alert source).
//     An event source also declares its dataset, data stream kind and explicit mapping there.
//  2. One line in sourceTable.
//  3. integration/mimecast/<name>.go: the client method, and its path declared with
//     needs(path, permission), which fills the permission table a 403 names.
//  4. integration/mimecast/simulator/<name>.go: its endpoint (a time-window log pages with
//     legacyPage, as audit.go does) and its simSource (name, time field, endpoint paths, the
//     generator of seeded record i on a random stream of its own), plus one line in
//     simSources (simulator/sources.go). AlertOptions.Counts[name] and mimecast-sim's
//     --count name=N seed it.
//  5. Tests: its decoder's; its endpoint's shapes in the simulator; its count in the e2e
//     world's seeded() (e2e_test.go), which then compares it with the simulator's truth in
//     every scenario. TestSourceTableIsComplete, the simulator's TestSourceTableMatchesAlerts
//     (a counterpart, every path served, the client's permission equal to the spec's) and
//     the tests of item 6 check the wiring.
//  6. Docs a test enforces: its row in docs/permissions.md and its name in docs/alerts.md's
//     sources row (TestDocsListEverySource), field names documented for its data stream in
//     its mapping (cmd's TestDocsFieldNamesAreMapped), and a Lens panel over its data stream
//     in deploy/kibana/mimecrawl.ndjson (TestKibanaSecurityDashboardShowsEverySource).
//
// Nothing in package config or cmd changes: alerts.sources is checked against the table
// (ValidateSources), and check, status, health and metrics iterate the configured names.

// sourceTable lists every source, in the order of Sources. Keep it explicit: a reader sees
// every source in one place. It is assigned in init, not in its declaration, only because
// specs refer to functions (a SIEM pass, retention) that read the table: Go refuses such an
// initialization cycle in a declaration.
var sourceTable []SourceSpec

func init() {
	sourceTable = []SourceSpec{
		attachmentSpec,
		urlSpec,
		impersonationSpec,
		dlpSpec,
		threatsSpec,
		siemSpec,
		auditSpec,
		archiveSearchLogsSpec,
		archiveSearchesSpec,
		archiveViewLogsSpec,
		heldReleaseSpec,
		threatIntelCustomerSpec,
		threatIntelGridSpec,
		siemCISpec,
	}
	Sources = make([]Source, len(sourceTable))
	for i, s := range sourceTable {
		Sources[i] = s.Name
	}
}

// Records says what a source's records become.
type Records int

const (
	// RecordAlerts: each record is normalised into an Alert, goes through Rules (selections,
	// filters, priority), groups and enrichment, and is written to the alerts' data stream.
	RecordAlerts Records = iota
	// RecordEvents: each record is decoded into an Event and written, as it is, to the
	// source's own data stream; no rules, priority, groups nor enrichment.
	RecordEvents
)

func (r Records) String() string {
	if r == RecordEvents {
		return "events"
	}
	return "alerts"
}

// SourceSpec is everything the poller, check, status and the docs need to know about one
// source. Specs are built in this package only (the functions are unexported): the table is
// the one list of sources.
type SourceSpec struct {
	// Name is the source's name in alerts.sources, in the state file's cursor names and in
	// every document (mimecast.source for alerts). Never rename one.
	Name Source
	// Endpoint is the API call the source reads, as docs/permissions.md lists it.
	Endpoint string
	// Permission is the API 2.0 role permission the endpoint needs, named by check and the docs.
	Permission string
	// Records says whether the records are alerts or events.
	Records Records
	// Kind is the data stream the source writes: AlertsKind for alert sources, one of its
	// own (index.NewKind of a Spec with DataStream "mimecrawl.<name>") for each event source.
	Kind index.Kind
	// Dataset is data_stream.dataset and event.dataset of Kind's documents (its stream is
	// logs-{Dataset}-{namespace}): Dataset for alert sources, "mimecrawl.<name>" for an event
	// source, never mimecast.* (Elastic's integration owns those).
	Dataset string
	// Retention is how far back the endpoint can be asked (a first pass's lookback is clamped
	// to it); 0: none documented. streamRetention, when set, replaces it in SIEM's stream mode.
	Retention       time.Duration
	streamRetention time.Duration

	// How the source reads: exactly one of pages, window and poll.
	//
	// pages reads one page of a time window through the client (Deps.API): the poller bounds
	// each call (Options.MaxWait), counts it as a sign of life (Deps.Liveness) and pages with
	// the paging rule; New refuses the source when Deps.API lacks the reader (see apiPages).
	pages *pageReader
	// window builds the fetch of a time-window source read through a Deps field of its own
	// (the legacy logs, the threat feed); details is set for sources whose parked records
	// need more than writing again (threat details).
	window func(p *Poller, log zerolog.Logger) (fetch windowFetch, details *threatDetailer)
	// poll runs one pass of a source with a machinery of its own (SIEM), returning the
	// descriptions of its cursors.
	poll func(p *Poller, ctx context.Context, src Source, c *counters, log zerolog.Logger) ([]string, error)
	// needs reports what Deps lacks to read the source (window and poll sources).
	needs func(d Deps) error
	// probe makes the smallest request of the source (window and poll sources; pages sources
	// are probed with one record of the last hour).
	probe func(ctx context.Context, d Deps, now time.Time) error

	// normalize decodes one record of an alert source; decode one of an event source.
	normalize func(r record) (Alert, error)
	decode    func(raw json.RawMessage) (Event, error)

	// warnings returns what of the configuration is allowed but cannot work as written for
	// this source (SIEM: the call budget); nil for none.
	warnings func(a config.Alerts) []string
}

// Sources lists every source in a stable order: the table's.
var Sources []Source

// Spec returns the spec of a source; ok is false for a name the table does not have.
func Spec(src Source) (SourceSpec, bool) {
	for _, s := range sourceTable {
		if s.Name == src {
			return s, true
		}
	}
	return SourceSpec{}, false
}

// Specs returns the specs of every source, in the table's order.
func Specs() []SourceSpec { return slices.Clone(sourceTable) }

// SourceNames returns the names alerts.sources allows, in the table's order.
func SourceNames() []string {
	out := make([]string, len(sourceTable))
	for i, s := range sourceTable {
		out[i] = string(s.Name)
	}
	return out
}

// ValidateSources checks the names of alerts.sources against the table. Package config
// cannot (this package imports it), so the command checks them right after loading the
// configuration, with config's wording: one line per unknown name, with the allowed names.
func ValidateSources(names []string) error {
	var bad []string
	for i, n := range names {
		if _, ok := Spec(Source(n)); !ok {
			bad = append(bad, fmt.Sprintf("alerts.sources[%d]: %q is not allowed; allowed values: %s", i, n, strings.Join(SourceNames(), ", ")))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(bad, "\n"))
}

// Kinds returns the index kinds a poller of these sources writes: each source's data stream,
// once, and the alert groups when any source is an alert source. The command ensures them
// before the first pass.
func Kinds(sources []Source) []index.Kind {
	var out []index.Kind
	alertsToo := false
	for _, src := range sources {
		sp, ok := Spec(src)
		if !ok {
			continue
		}
		if !slices.Contains(out, sp.Kind) {
			out = append(out, sp.Kind)
		}
		alertsToo = alertsToo || sp.Records == RecordAlerts
	}
	if alertsToo {
		out = append(out, GroupsKind)
	}
	return out
}

// ConfigWarnings returns what in the alerts section is allowed but cannot work as written,
// from the configured sources' specs (a SIEM schedule above the endpoint's call budget).
func ConfigWarnings(a config.Alerts) []string {
	var out []string
	for _, n := range a.Sources {
		if sp, ok := Spec(Source(n)); ok && sp.warnings != nil {
			out = append(out, sp.warnings(a)...)
		}
	}
	return out
}

// retention returns how far back a source can be asked; 0 when none is documented. stream
// selects SIEM's stream mode.
func retention(src Source, stream bool) time.Duration {
	sp, _ := Spec(src)
	if stream && sp.streamRetention > 0 {
		return sp.streamRetention
	}
	return sp.Retention
}

// WindowQuery is one page request of a time-window source read with pageReader: records
// from From up to To, oldest first, PageSize at most, Token "" for the window's first page.
type WindowQuery struct {
	From, To time.Time
	PageSize int
	Token    string
}

// pageReader reads a time-window source through a reader interface the source declares,
// which Deps.API (the Mimecast client) implements. Build it with apiPages.
type pageReader struct {
	// has reports whether api implements the reader.
	has func(api any) bool
	// read reads one page.
	read func(ctx context.Context, api any, q WindowQuery) (mimecast.Page, error)
	// maxPage is the largest page the endpoint takes.
	maxPage int
}

// apiPages adapts one reader method to a pageReader: R is the interface the source declares
// (one method, implemented by *mimecast.Client), call reads one page with it.
func apiPages[R any](maxPage int, call func(r R, ctx context.Context, q WindowQuery) (mimecast.Page, error)) *pageReader {
	return &pageReader{
		has:     func(api any) bool { _, ok := api.(R); return ok },
		read:    func(ctx context.Context, api any, q WindowQuery) (mimecast.Page, error) { return call(api.(R), ctx, q) },
		maxPage: maxPage,
	}
}

// pagesFetch is the windowFetch of a pages source: each call bounded and watched like the
// other sources' (maxwait.go).
func (p *Poller) pagesFetch(sp SourceSpec) windowFetch {
	size := min(p.o.PageSize, sp.pages.maxPage)
	name := string(sp.Name)
	return func(ctx context.Context, from, to time.Time, token string) (mimecast.Page, map[int]string, error) {
		pg, err := bounded(ctx, p.guard, name, "read "+name, func(ctx context.Context) (mimecast.Page, error) {
			return sp.pages.read(ctx, p.d.API, WindowQuery{From: from, To: to, PageSize: size, Token: token})
		})
		return pg, nil, err
	}
}

// checkNeeds reports what d lacks to read src.
func checkNeeds(d Deps, src Source) error {
	sp, ok := Spec(src)
	switch {
	case !ok:
		return fmt.Errorf("unknown source %q; known: %s", src, strings.Join(SourceNames(), ", "))
	case sp.pages != nil:
		if d.API == nil || !sp.pages.has(d.API) {
			return fmt.Errorf("source %s needs a reader of %s (Deps.API)", src, sp.Endpoint)
		}
	case sp.needs != nil:
		return sp.needs(d)
	}
	return nil
}

// Probe makes the smallest request of one source (one record of the last hour; for SIEM one
// page of batch files of the first type), so that check can tell a source the application
// may not read (mimecast.IsForbidden) from one that answers. Only the readers of d are used.
func Probe(ctx context.Context, d Deps, src Source, now time.Time) error {
	if err := checkNeeds(d, src); err != nil {
		return fmt.Errorf("probe source %q: %w", src, err)
	}
	sp, _ := Spec(src)
	if sp.pages != nil {
		_, err := sp.pages.read(ctx, d.API, WindowQuery{From: now.Add(-time.Hour), To: now, PageSize: 1})
		return err
	}
	return sp.probe(ctx, d, now)
}

// logSpec is the spec of a legacy security log (attachment, URL, impersonation protection,
// DLP): a time window read through Deps.Logs, oldest first, pages of up to 500. filter, when
// not nil, gives the selection parameters the endpoint takes.
func logSpec(name Source, kind mimecast.LogKind, endpoint, permission string, normalize func(record) (Alert, error), filter func(o Options) map[string]any) SourceSpec {
	return SourceSpec{
		Name: name, Endpoint: endpoint, Permission: permission, Records: RecordAlerts, Kind: AlertsKind, Dataset: Dataset,
		window: func(p *Poller, _ zerolog.Logger) (windowFetch, *threatDetailer) {
			var f map[string]any
			if filter != nil {
				f = filter(p.o)
			}
			return p.logFetch(kind, f), nil
		},
		needs: func(d Deps) error {
			if d.Logs == nil {
				return fmt.Errorf("source %s needs a log source", name)
			}
			return nil
		},
		probe: func(ctx context.Context, d Deps, now time.Time) error {
			_, err := d.Logs.SecurityLogs(ctx, kind, mimecast.LogQuery{From: now.Add(-time.Hour), To: now, OldestFirst: true, PageSize: 1})
			return err
		},
		normalize: normalize,
	}
}

// routeFilter: the attachment and URL logs take one route; with several, Rules select.
func routeFilter(o Options) map[string]any {
	if len(o.Routes) == 1 {
		return map[string]any{"route": o.Routes[0]}
	}
	return nil
}

// routesFilter: the DLP logs take a list of routes.
func routesFilter(o Options) map[string]any {
	if len(o.Routes) > 0 {
		return map[string]any{"routes": o.Routes}
	}
	return nil
}
