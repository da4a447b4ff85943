package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/metrics"
	"github.com/mimecrawl/mimecrawl/state"
)

// alertsSummary is what the alerts command prints and records per pass.
type alertsSummary struct {
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

// alertsRun runs the alerts poller: one pass with once, else a pass every
// alerts.poll_interval until ctx ends. Exit codes: 0 every source polled (403 sources are
// reported, not failures), 1 fatal, 3 some source failed or the pass was interrupted.
func (a *app) alertsRun(ctx context.Context, once bool, listen string) int {
	log := a.log.With().Str("component", "alerts").Logger()
	started := time.Now().UTC()
	m := a.newMetrics()
	if !once {
		return a.alertsPoll(ctx, log, m, false, listen)
	}
	// A one-pass run (a CronJob) pushes how it ended, a failure too.
	code := a.alertsPoll(ctx, log, m, true, "")
	m.SetRun(metrics.RunResult{Started: started, Finished: time.Now().UTC(), ExitCode: code})
	a.pushMetrics(m, "alerts")
	return code
}

// alertsPoll is alertsRun's work, with its metrics.
func (a *app) alertsPoll(ctx context.Context, log zerolog.Logger, m *metrics.Metrics, once bool, listen string) int {
	cfg := a.cfg
	statePath := cfg.AlertsStatePath()
	log.Info().Bool("once", once).Str("state", statePath).Strs("sources", cfg.Alerts.Sources).Msg("run start")
	for _, w := range alerts.ConfigWarnings(cfg.Alerts) {
		log.Warn().Str("problem", w).Msg("configuration will wait on the api quota")
	}
	var maxWait time.Duration // a scheduled pass must end; the long-running poller waits
	if once {
		maxWait = cfg.Alerts.MaxWait.D()
	}
	fatal := func(err error) int {
		if ctx.Err() != nil {
			// A signal arrived while the poller was starting: the stop that was asked for, not
			// a failure. The long-running poller stops cleanly (0); a single pass that never
			// ran is interrupted (3). No cursor moved.
			code := exitOK
			if once {
				code = exitPartial
			}
			log.Info().Err(err).Msg("stopped before the first pass")
			a.printAlerts(a.stdout, &alertsSummary{Command: "alerts", ExitCode: code, Error: "stopped before the first pass"})
			return code
		}
		log.Error().Err(err).Msg("run failed")
		s := &alertsSummary{Command: "alerts", ExitCode: exitFatal, Error: err.Error()}
		a.printAlerts(a.stdout, s)
		return exitFatal
	}

	// The poller's own state file: the crawl holds its file's lock for a whole run.
	store, err := state.Open(statePath, state.Options{LockTimeout: cfg.State.LockTimeout.D()})
	if err != nil {
		return fatal(err)
	}
	defer store.Close()
	rules, err := alerts.NewRules(cfg.Alerts)
	if err != nil {
		return fatal(err)
	}
	m.WatchFilters(rules)
	details, err := alerts.NewDetailsTemplate(cfg.Alerts.DetailsURL)
	if err != nil {
		return fatal(err)
	}
	client, err := a.pollerClient()
	if err != nil {
		return fatal(err)
	}
	defer client.Close()
	m.WatchAPI(client)
	// Credentials the token endpoint refuses are fatal, as for the crawl (README, exit codes):
	// every source would fail the same way, and a pass of failed sources (exit 3) reads as a
	// Mimecast outage to whoever runs it. An unreachable token endpoint is not: the passes
	// report it per source and the long-running poller tries again.
	if err := client.Authenticate(ctx); err != nil {
		if mimecast.IsAuth(err) {
			return fatal(fmt.Errorf("authenticate with mimecast: %w", err))
		}
		log.Warn().Err(err).Msg("mimecast token endpoint unavailable; the sources will retry")
	}
	cluster, err := a.cluster(ctx)
	if err != nil {
		return fatal(err)
	}
	sources := make([]alerts.Source, 0, len(cfg.Alerts.Sources))
	for _, s := range cfg.Alerts.Sources {
		sources = append(sources, alerts.Source(s))
	}
	if err := cluster.Ensure(ctx, alerts.Kinds(sources)...); err != nil {
		return fatal(err)
	}
	writer, closeWriter, err := a.openWriter(cluster, m, log, nil)
	if err != nil {
		return fatal(err)
	}
	defer closeWriter()

	health := metrics.NewHealth(cfg.Alerts.Sources, metrics.HealthOptions{Interval: cfg.Alerts.PollInterval.D()})
	p, err := alerts.New(alerts.Deps{
		Logs: client, Threats: client, SIEM: client, API: client, Liveness: health,
		Sink: m.CountDocuments(writer), Cursors: store, Rules: rules,
		Groups: countedGroups{alerts.NewGroupStore(cluster), m}, Archive: cluster, Directory: client, Messages: client,
		Stream: alerts.NewStream(cluster),
	}, alerts.Options{
		Sources: sources, PollInterval: cfg.Alerts.PollInterval.D(), Lookback: cfg.Alerts.Lookback.D(),
		Overlap: overlapOption(cfg.Alerts.Overlap.D()), PageSize: cfg.Alerts.PageSize,
		MaxPages: cfg.Alerts.MaxPages, MaxRecordBytes: int(cfg.Alerts.MaxRecordSize), MaxWait: maxWait,
		Types: cfg.Alerts.Types, Statuses: cfg.Alerts.Statuses, Routes: cfg.Alerts.Routes,
		SIEMTypes: cfg.Alerts.SIEM.Types, SIEMStream: cfg.Alerts.SIEM.Mode == config.SIEMStream,
		ContentView: cfg.Alerts.ContentView,
		DetailsURL:  details, AckGrace: cfg.Performance.ShutdownGrace.D() * 3 / 4, Logger: log,
	})
	if err != nil {
		return fatal(err)
	}

	updateSources := func() {
		cs, err := alerts.Statuses(store)
		if err != nil {
			log.Error().Err(err).Msg("read alert cursors for the metrics")
			return
		}
		m.SetAlertSources(alertSourceStatuses(cs))
	}
	updateSources()
	if listen != "" {
		m.AddRuntime()
		stop, err := a.serveMetrics(listen, m, health)
		if err != nil {
			return fatal(err)
		}
		defer stop()
	}

	code := exitOK
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
			reportPass(health, src)
		}
		st := client.Stats()
		s := &alertsSummary{Command: "alerts", PassSummary: ps, Seconds: ps.Finished.Sub(ps.Started).Seconds(), APICalls: st.Calls - last.Calls}
		s.APIQuotaCalls, s.APIQuotaGroups = quotaSince(st, last)
		last = st
		if ps.Failed() {
			s.ExitCode = exitPartial
		}
		code = s.ExitCode
		blob, _ := json.Marshal(s)
		if err := store.AddRun(blob); err != nil {
			log.Error().Err(err).Msg("record pass summary")
		}
		log.Info().RawJSON("summary", blob).Msg("pass end")
		a.printAlerts(a.stdout, s)
	}
	if once {
		report(p.Once(ctx))
	} else {
		_ = p.Run(ctx, report) // returns when ctx ends: SIGTERM or SIGINT
		log.Info().Msg("stopping")
	}
	closeWriter()
	if ctx.Err() != nil && code == exitOK && once {
		code = exitPartial
	}
	return code
}

// overlapOption turns alerts.overlap into the poller's option, where 0 means the default:
// a configured 0 means no overlap.
func overlapOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// printAlerts writes the one-screen summary of a pass.
func (a *app) printAlerts(w io.Writer, s *alertsSummary) {
	if !a.textSummary {
		return // the pass's log line is its summary (see app.textSummary)
	}
	fmt.Fprintf(w, "\nmimecrawl alerts summary (%.1fs, %d API calls)\n", s.Seconds, s.APICalls)
	row(w, "quota", (&Summary{Seconds: s.Seconds, APIQuotaCalls: s.APIQuotaCalls, APIQuotaGroups: s.APIQuotaGroups, APIQuotaWaitSeconds: quotaWait(s.APIQuotaGroups)}).quotaParts()...)
	if s.Error != "" {
		fmt.Fprintf(w, "  error         %s\n", s.Error)
	}
	for _, src := range s.Sources {
		fmt.Fprintf(w, "  %-22s ", src.Source)
		if src.Forbidden {
			fmt.Fprintf(w, "not permitted for this API application (needs %s)\n", src.Permission)
			continue
		}
		noun := "alerts"
		if sp, ok := alerts.Spec(src.Source); ok {
			noun = sp.Records.String()
		}
		fmt.Fprintf(w, "%d records, %d %s indexed, %d already there", src.Records, src.Indexed, noun, src.Existing)
		if n := total(src.Excluded); n > 0 {
			fmt.Fprintf(w, ", %d excluded (%s)", n, excludedText(src.Excluded))
		}
		if src.Malformed > 0 {
			fmt.Fprintf(w, ", %d malformed (%s)", src.Malformed, excludedText(src.MalformedReasons))
		}
		if src.FilterErrors > 0 {
			fmt.Fprintf(w, ", %d filter errors (kept)", src.FilterErrors)
		}
		if src.FilesSkipped > 0 {
			fmt.Fprintf(w, ", %d files skipped", src.FilesSkipped)
		}
		if src.FilesPending > 0 {
			fmt.Fprintf(w, ", %d files pending (read again next pass)", src.FilesPending)
		}
		if src.Repeats > 0 {
			fmt.Fprintf(w, ", %d repeats dropped", src.Repeats)
		}
		if src.Rejected > 0 {
			fmt.Fprintf(w, ", %d rejected by elasticsearch", src.Rejected)
		}
		if src.Pending > 0 {
			fmt.Fprintf(w, ", %d alerts pending (parked, tried again next pass)", src.Pending)
		}
		if src.PagesLooped > 0 {
			fmt.Fprintf(w, ", %d pages looped", src.PagesLooped)
		}
		if src.RecordsUnread > 0 {
			fmt.Fprintf(w, ", %d records unread", src.RecordsUnread)
		}
		if src.Groups > 0 {
			fmt.Fprintf(w, ", %s updated", plural(int64(src.Groups), "group"))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  %-22s cursor %s\n", "", src.Cursor)
		if src.Error != "" {
			fmt.Fprintf(w, "  %-22s error: %s\n", "", src.Error)
		}
	}
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func excludedText(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// checkAlerts probes every configured alert source with its smallest request; a source the
// application may not read is named with the permission it needs. Problems are warnings, not
// failures: alerts.sources has defaults, and an installation that only crawls the archive
// must still pass check (the alerts command reports a 403 source the same way and carries on).
func (a *app) checkAlerts(ctx context.Context, c *checker) {
	if len(a.cfg.Alerts.Sources) == 0 {
		c.skip("alerts", "no alerts.sources configured")
		return
	}
	client, err := a.mimecastClient()
	if err != nil {
		c.fail("alerts", err, "")
		return
	}
	defer client.Close()
	a.checkAlertsStream(ctx, c)
	d := alerts.Deps{Logs: client, Threats: client, SIEM: client, API: client}
	for _, s := range a.cfg.Alerts.Sources {
		if c.mimecastDown != "" {
			// One line per root cause: each probe would repeat the token's failure.
			c.skip("alerts source "+s, "not probed: "+c.mimecastDown)
			continue
		}
		name := "alerts source " + s
		err := alerts.Probe(ctx, d, alerts.Source(s), time.Now().UTC())
		switch {
		case err == nil:
			c.ok(name, "answers")
		case mimecast.IsForbidden(err):
			warnCheck(c, name, "not permitted for this API application", mimecastFix(withPermission(err, alerts.Source(s)))+", or remove it from alerts.sources")
		default:
			warnCheck(c, name, err.Error(), mimecastFix(err))
		}
	}
	if _, err := os.Stat(a.cfg.AlertsStatePath()); err == nil {
		st, err := state.Open(a.cfg.AlertsStatePath(), state.Options{LockTimeout: a.cfg.State.LockTimeout.D(), ReadOnly: true})
		if errors.Is(err, state.ErrEmpty) {
			c.ok("alerts state", a.cfg.AlertsStatePath()+" is empty: no pass has committed anything yet")
			return
		}
		if err != nil {
			c.fail("alerts state", err, "")
			return
		}
		defer st.Close()
		cs, err := alerts.Statuses(st)
		if err != nil {
			c.fail("alerts state", err, "")
			return
		}
		c.ok("alerts state", fmt.Sprintf("%s, %d cursors", a.cfg.AlertsStatePath(), len(cs)))
	}
}

// withPermission names, in a 403 that does not, the permission the source's spec says its
// endpoint needs, so that check always tells which permission to grant.
func withPermission(err error, src alerts.Source) error {
	var me *mimecast.Error
	if sp, ok := alerts.Spec(src); ok && errors.As(err, &me) && me.Permission == "" {
		c := *me
		c.Permission = sp.Permission
		return &c
	}
	return err
}

func warnCheck(c *checker, name, what, fix string) {
	c.warn(name, what, fix)
}

// alertsStatus reads the alert cursors for status; nil when the poller never ran.
func (a *app) alertsStatus() ([]alerts.CursorStatus, error) {
	path := a.cfg.AlertsStatePath()
	if _, err := os.Stat(path); err != nil {
		return nil, nil
	}
	st, err := state.Open(path, state.Options{LockTimeout: a.cfg.State.LockTimeout.D(), ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return alerts.Statuses(st)
}

// printAlertsStatus writes the alerts section of status.
func printAlertsStatus(w io.Writer, path string, cs []alerts.CursorStatus) {
	if cs == nil {
		return
	}
	fmt.Fprintf(w, "\nalerts (%s):\n", path)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "CURSOR\tPOSITION\tLATEST EVENT\tLAST POLL\tSTATE")
	for _, c := range cs {
		st := "ok"
		switch {
		case c.Forbidden:
			st = "not permitted for this API application (needs " + c.Permission + ")"
		case c.LastError != "":
			st = "error: " + c.LastError
		}
		if c.Pending > 0 {
			st += fmt.Sprintf(", %d alerts pending", c.Pending)
		}
		if c.FilesPending > 0 {
			st += fmt.Sprintf(", %d files pending", c.FilesPending)
		}
		// Text from the state file: sanitized like the rest of status.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sanitize(c.Name), sanitize(c.Position), fmtTime(c.Latest), fmtTime(c.LastPoll), sanitize(st))
	}
	tw.Flush()
}

// checkAlertsStream names where the alerts go and, on an installation upgraded from a
// release that wrote {prefix}-alerts, that index, which stays readable and is no longer
// written (docs/alerts.md, "Where the alerts go").
func (a *app) checkAlertsStream(ctx context.Context, c *checker) {
	cluster, err := a.cluster(ctx)
	if err != nil {
		c.skip("alerts data stream", "elasticsearch does not answer")
		return
	}
	stream := cluster.IndexName(alerts.AlertsKind)
	n, found, err := cluster.LegacyCount(ctx, alerts.AlertsKind)
	switch {
	case err != nil:
		warnCheck(c, "alerts data stream", err.Error(), "the user needs read on "+cluster.LegacyName(alerts.AlertsKind))
	case found:
		c.ok("alerts data stream", fmt.Sprintf("%s, where Elastic Security looks; %s, written by an earlier release, keeps its %s readable and is not written any more",
			stream, cluster.LegacyName(alerts.AlertsKind), plural(n, "alert")))
	default:
		c.ok("alerts data stream", stream+", where Elastic Security looks")
	}
}
