package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/metrics"
	"github.com/mimecrawl/mimecrawl/state"
)

// AlertsSummary is what one pass of the alerts poller did, printed at its end and kept in the
// poller's state file. A run that could not start has one too, with its Error.
type AlertsSummary struct {
	Command string `json:"command"`
	alerts.PassSummary
	Seconds  float64 `json:"seconds"`
	APICalls int64   `json:"api_calls"`
	// The pass's calls that a quota counts (not downloads nor token requests), per group.
	APIQuotaCalls  int64                 `json:"api_quota_calls"`
	APIQuotaGroups map[string]QuotaGroup `json:"api_quota_groups,omitempty"`
	ExitCode       int                   `json:"exit_code"`
	Error          string                `json:"error,omitempty"`
}

// QuotaWaitSeconds is how long the pass's calls waited for the quota, all groups together.
func (s *AlertsSummary) QuotaWaitSeconds() float64 {
	var w float64
	for _, q := range s.APIQuotaGroups {
		w += q.WaitSeconds
	}
	return w
}

// Record is the pass summary as the poller's state file records it (state.PassRecord): the
// same fields under the same names, each source's outcome as it is, named by a string.
func (s *AlertsSummary) Record() state.PassRecord {
	r := state.PassRecord{Command: s.Command, Started: s.Started, Finished: s.Finished, Seconds: s.Seconds,
		APICalls: s.APICalls, APIQuotaCalls: s.APIQuotaCalls, APIQuotaGroups: s.APIQuotaGroups, ExitCode: s.ExitCode, Error: s.Error}
	for _, src := range s.Sources {
		r.Sources = append(r.Sources, state.SourceRecord{Source: string(src.Source), SourceOutcome: src.SourceOutcome})
	}
	return r
}

// AlertsArgs are what the alerts command is asked to do, beyond the configuration.
type AlertsArgs struct {
	// Once runs one pass over every source (a CronJob); otherwise a pass runs every
	// alerts.poll_interval until ctx ends.
	Once bool
	// Metrics is the process's registry; the poller feeds it, and a single pass sets its run
	// result.
	Metrics *metrics.Metrics
	// Serve, when not nil, serves the metrics and the health probes while the poller runs
	// (the command's --listen); it returns once it serves, and stop is called when Alerts
	// returns. An error is fatal.
	Serve func(m *metrics.Metrics, health *metrics.Health) (stop func(), err error)
	// Report, when not nil, is given every pass's summary, and the summary of a run that
	// could not start, as soon as it is known.
	Report func(*AlertsSummary)
}

// AlertsOptions are the poller's options for cfg, with alerts.details_url compiled. A single
// pass (once) is bounded by alerts.max_wait; the long-running poller waits as long as the
// quota asks. A stopping pass waits AckGrace of performance.shutdown_grace for
// acknowledgements (the shutdown clock). TestAlertsOptionsTakesEverySetting fails when a
// poller option is added and not mapped.
func AlertsOptions(cfg *config.Config, once bool, log zerolog.Logger) (alerts.Options, error) {
	a := cfg.Alerts
	details, err := alerts.DetailsTemplateOf(a)
	if err != nil {
		return alerts.Options{}, err
	}
	var maxWait time.Duration // a scheduled pass must end; the long-running poller waits
	if once {
		maxWait = a.MaxWait.D()
	}
	return alerts.Options{
		Sources: alertSources(a.Sources), PollInterval: a.PollInterval.D(), Lookback: a.Lookback.D(),
		Overlap: a.Overlap.D(), PageSize: a.PageSize,
		MaxPages: a.MaxPages, MaxRecordBytes: int(a.MaxRecordSize), MaxWait: maxWait,
		Types: a.Types, Statuses: a.Statuses, Routes: a.Routes,
		SIEMTypes: a.SIEM.Types, SIEMStream: a.SIEM.Mode == config.SIEMStream,
		ContentView: a.ContentView, DetailsURL: details,
		AckGrace: AckGrace(cfg.Performance.ShutdownGrace.D()),
		Logger:   log,
	}, nil
}

func alertSources(names []string) []alerts.Source {
	sources := make([]alerts.Source, 0, len(names))
	for _, s := range names {
		sources = append(sources, alerts.Source(s))
	}
	return sources
}

// PollerClient is the alerts poller's Mimecast client: without the archive limiter, which is
// the crawl's. The poller's archive lookups are few and one at a time, and the REST sources it
// polls are outside the limiter, so the poller neither needs it nor exports its series.
func PollerClient(cfg *config.Config, log zerolog.Logger) (*mimecast.Client, error) {
	mc, err := MimecastConfig(cfg, mimecast.Concurrency{}, log)
	if err != nil {
		return nil, err
	}
	return mimecast.New(mc)
}

// Alerts runs the alerts poller: one pass with args.Once, else a pass every
// alerts.poll_interval until ctx ends, and returns the exit code (the rule below). Every pass's
// summary is recorded in the poller's state file and given to args.Report.
func Alerts(ctx context.Context, env Env, args AlertsArgs) Code {
	if args.Report == nil {
		args.Report = func(*AlertsSummary) {}
	}
	started := time.Now().UTC()
	r := &alertsRun{Env: env, args: args, m: args.Metrics, log: env.Log.With().Str("component", "alerts").Logger()}
	code := r.run(ctx)
	if args.Once {
		// A one-pass run (a CronJob) reports how it ended, a failure too.
		r.m.SetRun(metrics.RunResult{Started: started, Finished: time.Now().UTC(), ExitCode: int(code)})
	}
	return code
}

// The exit-code rule of the alerts command:
//   - 0: every source polled; a source answered 403 is reported, not failed (a restart would
//     not grant the permission); the long-running poller stopped by its signal ends with 0;
//   - 1: the poller could not start (bad credentials, Elasticsearch, the state file);
//   - 3: some source failed in the last pass, or a single pass was interrupted (a signal
//     before or during it).

// passCode is the exit code of one pass.
func passCode(ps alerts.PassSummary) Code {
	if ps.Failed() {
		return CodePartial
	}
	return CodeOK
}

// startCode is the exit code of a run that could not start: interrupted (the signal came
// while it was starting) or fatal.
func startCode(interrupted, once bool) Code {
	switch {
	case !interrupted:
		return CodeFatal
	case once:
		return CodePartial
	}
	return CodeOK
}

// endCode is the exit code of a run whose last pass ended with last: a single pass that the
// signal cut short is interrupted even when every source it reached succeeded.
func endCode(last Code, interrupted, once bool) Code {
	if interrupted && once {
		return Worst(last, CodePartial)
	}
	return last
}

// alertsRun is one run of the alerts command: what it opened and the logger of its lines.
type alertsRun struct {
	Env
	args AlertsArgs
	m    *metrics.Metrics
	log  zerolog.Logger
}

// fatal ends a run that could not start.
func (r *alertsRun) fatal(ctx context.Context, err error) Code {
	code := startCode(ctx.Err() != nil, r.args.Once)
	if ctx.Err() != nil {
		// A signal arrived while the poller was starting: the stop that was asked for, not
		// a failure. No cursor moved.
		r.log.Info().Err(err).Msg("stopped before the first pass")
		r.args.Report(&AlertsSummary{Command: "alerts", ExitCode: int(code), Error: "stopped before the first pass"})
		return code
	}
	r.log.Error().Err(err).Msg("run failed")
	r.args.Report(&AlertsSummary{Command: "alerts", ExitCode: int(code), Error: err.Error()})
	return code
}

func (r *alertsRun) run(ctx context.Context) Code {
	cfg, log, m, once := r.Config, r.log, r.m, r.args.Once
	statePath := cfg.AlertsStatePath()
	log.Info().Bool("once", once).Str("state", statePath).Strs("sources", cfg.Alerts.Sources).Msg("run start")
	for _, w := range alerts.ConfigWarnings(cfg.Alerts) {
		log.Warn().Str("problem", w).Msg("configuration will wait on the api quota")
	}

	// The poller's own state file: the crawl holds its file's lock for a whole run.
	store, err := state.Open(statePath, StoreOptions(cfg, false))
	if err != nil {
		return r.fatal(ctx, err)
	}
	defer store.Close()
	rules, err := alerts.NewRules(cfg.Alerts)
	if err != nil {
		return r.fatal(ctx, err)
	}
	m.WatchFilters(rules)
	opts, err := AlertsOptions(cfg, once, log)
	if err != nil {
		return r.fatal(ctx, err)
	}
	client, err := PollerClient(cfg, r.Log)
	if err != nil {
		return r.fatal(ctx, err)
	}
	defer client.Close()
	m.WatchAPI(client)
	// Credentials the token endpoint refuses are fatal, as for the crawl (README, exit codes):
	// every source would fail the same way, and a pass of failed sources (exit 3) reads as a
	// Mimecast outage to whoever runs it. An unreachable token endpoint is not: the passes
	// report it per source and the long-running poller tries again.
	if err := client.Authenticate(ctx); err != nil {
		if mimecast.IsAuth(err) {
			return r.fatal(ctx, fmt.Errorf("authenticate with mimecast: %w", err))
		}
		log.Warn().Err(err).Msg("mimecast token endpoint unavailable; the sources will retry")
	}
	cluster, err := openCluster(ctx, cfg, r.Log)
	if err != nil {
		return r.fatal(ctx, err)
	}
	if err := cluster.Ensure(ctx, alerts.Kinds(opts.Sources)...); err != nil {
		return r.fatal(ctx, err)
	}
	writer, closeWriter, err := OpenWriter(r.Stopping, cluster, m, log, nil)
	if err != nil {
		return r.fatal(ctx, err)
	}
	defer closeWriter()

	health := metrics.NewHealth(cfg.Alerts.Sources, metrics.HealthOptions{Interval: cfg.Alerts.PollInterval.D()})
	p, err := alerts.New(alerts.Deps{
		Logs: client, Threats: client, SIEM: client, API: client, Liveness: health,
		Sink: m.CountDocuments(writer), Cursors: store, Rules: rules,
		Groups: CountedGroups(alerts.NewGroupStore(cluster), m), Archive: cluster, Directory: client, Messages: client,
		Stream: alerts.NewStream(cluster),
	}, opts)
	if err != nil {
		return r.fatal(ctx, err)
	}

	updateSources := func() {
		cs, err := alerts.Statuses(store)
		if err != nil {
			log.Error().Err(err).Msg("read alert cursors for the metrics")
			return
		}
		m.SetAlertSources(AlertSourceStatuses(cs))
	}
	updateSources()
	if r.args.Serve != nil {
		m.AddRuntime()
		stop, err := r.args.Serve(m, health)
		if err != nil {
			return r.fatal(ctx, err)
		}
		defer stop()
	}

	code := CodeOK
	var last mimecast.Stats
	var lastLimited atomic.Int64
	report := func(ps alerts.PassSummary) {
		updateSources()
		// Filters stopped at their bound kept their alerts (fail open): said once per pass,
		// however many alerts it concerned.
		if n := rules.FilterLimited(); n > 0 {
			if prev := lastLimited.Swap(n); n > prev {
				log.Warn().Int64("count", n-prev).Int64("total", n).Msg("filter evaluations stopped at their bound; their alerts were kept")
			}
		}
		for _, src := range ps.Sources {
			ReportPass(health, src)
		}
		st := client.Stats()
		s := &AlertsSummary{Command: "alerts", PassSummary: ps, Seconds: ps.Finished.Sub(ps.Started).Seconds(), APICalls: st.Calls - last.Calls}
		s.APIQuotaCalls, s.APIQuotaGroups = QuotaSince(st, last)
		last = st
		code = passCode(ps)
		s.ExitCode = int(code)
		blob, _ := json.Marshal(s)
		if err := store.AddPass(s.Record()); err != nil {
			log.Error().Err(err).Msg("record pass summary")
		}
		log.Info().RawJSON("summary", blob).Msg("pass end")
		r.args.Report(s)
	}
	if once {
		report(p.Once(ctx))
	} else {
		_ = p.Run(ctx, report) // returns when ctx ends: SIGTERM or SIGINT
		log.Info().Msg("stopping")
	}
	closeWriter()
	return endCode(code, ctx.Err() != nil, once)
}

// QuotaSince is what a quota counted between two snapshots of the client's statistics: the
// calls, and per group the calls, 429s and wait.
func QuotaSince(now, before mimecast.Stats) (int64, map[string]QuotaGroup) {
	var groups map[string]QuotaGroup
	for g, gs := range now.Groups {
		b := before.Groups[g]
		if gs.Calls == b.Calls && gs.QuotaWait == b.QuotaWait {
			continue
		}
		if groups == nil {
			groups = map[string]QuotaGroup{}
		}
		groups[g] = QuotaGroup{Calls: gs.Calls - b.Calls, RateLimited: gs.RateLimited - b.RateLimited, WaitSeconds: (gs.QuotaWait - b.QuotaWait).Seconds()}
	}
	return now.APICalls - before.APICalls, groups
}

// SourceHealth learns, per source, that the source's loop is alive (Beat: one of its calls
// started or ended; the poller calls it, as alerts.Deps.Liveness) and how each of its passes
// ended (Pass). Sources poll on goroutines of their own, so it is called concurrently.
// Implemented by *metrics.Health, which turns it into the liveness and readiness probes.
type SourceHealth interface {
	Beat(source string)
	Pass(p metrics.SourcePass)
}

var (
	_ SourceHealth    = (*metrics.Health)(nil)
	_ alerts.Liveness = (*metrics.Health)(nil)
)

// ReportPass tells h how one pass of one source ended. A source answered 403 is reported as
// forbidden, never as failing: a restart would not grant the permission.
func ReportPass(h SourceHealth, s alerts.SourceSummary) {
	p := metrics.SourcePass{Source: string(s.Source), Result: metrics.PassOK}
	switch {
	case s.Forbidden:
		p.Result, p.Permission = metrics.PassForbidden, s.Permission
	case s.Interrupted:
		p.Result = metrics.PassInterrupted
	case s.Error != "":
		p.Result, p.Error = metrics.PassFailed, s.Error
	}
	h.Pass(p)
}

// AlertSourceStatuses turns the poller's cursors into the metrics' per-source view: a
// source with several cursors (SIEM batch types) is as late as its latest cursor's newest
// event, as recent as its oldest poll, forbidden or failing if any cursor is.
func AlertSourceStatuses(cs []alerts.CursorStatus) []metrics.SourceStatus {
	by := map[string]*metrics.SourceStatus{}
	var order []string
	for _, c := range cs {
		name := strings.TrimPrefix(c.Name, "alerts/")
		name, _, _ = strings.Cut(name, "/")
		s := by[name]
		if s == nil {
			s = &metrics.SourceStatus{Source: name}
			by[name] = s
			order = append(order, name)
		}
		if c.Latest != nil && c.Latest.After(s.LatestEvent) {
			s.LatestEvent = *c.Latest
		}
		if c.LastPoll != nil && (s.LastPoll.IsZero() || c.LastPoll.Before(s.LastPoll)) {
			s.LastPoll = *c.LastPoll
		}
		s.Pending += c.Pending + c.FilesPending
		s.Forbidden = s.Forbidden || c.Forbidden
		s.Failing = s.Failing || (c.LastError != "" && !c.Forbidden)
	}
	out := make([]metrics.SourceStatus, 0, len(order))
	for _, n := range order {
		out = append(out, *by[n])
	}
	return out
}

// CountedGroups is the poller's group store with its writes counted in m: the groups are
// written by conditional writes, not through the counted Sink, and
// documents_indexed_total{kind="alert-groups"} is documented. A write that lost a race or was
// refused for load is tried again by the poller, so it counts when it lands.
func CountedGroups(g alerts.GroupStore, m *metrics.Metrics) alerts.GroupStore {
	return countedGroups{GroupStore: g, m: m}
}

type countedGroups struct {
	alerts.GroupStore
	m *metrics.Metrics
}

func (g countedGroups) PutGroups(ctx context.Context, ws []alerts.GroupWrite) ([]error, error) {
	errs, err := g.GroupStore.PutGroups(ctx, ws)
	if err != nil {
		return errs, err
	}
	indexed, failed := 0, 0
	for _, e := range errs {
		switch {
		case e == nil:
			indexed++
		case errors.Is(e, alerts.ErrGroupConflict), errors.Is(e, alerts.ErrGroupBusy):
		default:
			failed++
		}
	}
	g.m.CountWrites(alerts.GroupsKind, indexed, failed)
	return errs, nil
}

// AlertsStatus reads the alert cursors for status; nil when the poller never ran.
func AlertsStatus(cfg *config.Config) ([]alerts.CursorStatus, error) {
	path := cfg.AlertsStatePath()
	if _, err := os.Stat(path); err != nil {
		return nil, nil
	}
	st, err := state.Open(path, StoreOptions(cfg, true))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return alerts.Statuses(st)
}

// StatusAlerts fills the alerts part of rep from the poller's own state file and returns the
// part's exit code. Whatever is wrong with that file is said in the alerts part and never
// hides the crawl's: a poller that holds it (running) or a file with nothing committed yet is
// a note; a file that cannot be read is an error, and CodeFatal.
func StatusAlerts(cfg *config.Config, rep *StatusReport) Code {
	cs, err := AlertsStatus(cfg)
	switch {
	case err == nil:
		rep.Alerts = cs
	case errors.Is(err, state.ErrLocked):
		rep.AlertsNote = "the alerts poller holds its state file (it is running); its cursors are not shown"
	case errors.Is(err, state.ErrEmpty):
		rep.AlertsNote = "the alerts state file is empty: no pass has committed anything yet"
	default:
		rep.AlertsError = err.Error()
		return CodeFatal
	}
	return CodeOK
}
