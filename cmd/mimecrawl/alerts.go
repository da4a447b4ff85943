package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/state"
)

// alertsAckGrace is how long a stopping pass waits for Elasticsearch to acknowledge what it
// sent, so that the cursors record it; with flushDeadline it bounds the stop after SIGTERM.
const alertsAckGrace = 10 * time.Second

// alertsSummary is what the alerts command prints and records per pass.
type alertsSummary struct {
	Command string `json:"command"`
	alerts.PassSummary
	Seconds  float64 `json:"seconds"`
	APICalls int64   `json:"api_calls"`
	ExitCode int     `json:"exit_code"`
	Error    string  `json:"error,omitempty"`
}

// alertsRun runs the alerts poller: one pass with once, else a pass every
// alerts.poll_interval until ctx ends. Exit codes: 0 every source polled (403 sources are
// reported, not failures), 1 fatal, 3 some source failed or the pass was interrupted.
func (a *app) alertsRun(ctx context.Context, once bool) int {
	log := a.log.With().Str("component", "alerts").Logger()
	cfg := a.cfg
	statePath := cfg.AlertsStatePath()
	log.Info().Bool("once", once).Str("state", statePath).Strs("sources", cfg.Alerts.Sources).Msg("run start")
	fatal := func(err error) int {
		log.Error().Err(err).Msg("run failed")
		s := &alertsSummary{Command: "alerts", ExitCode: crawler.ExitFatal, Error: err.Error()}
		a.printAlerts(a.stdout, s)
		return crawler.ExitFatal
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
	details, err := alerts.NewDetailsTemplate(cfg.Alerts.DetailsURL)
	if err != nil {
		return fatal(err)
	}
	client, err := a.mimecastClient()
	if err != nil {
		return fatal(err)
	}
	defer client.Close()
	cluster, err := a.cluster(ctx)
	if err != nil {
		return fatal(err)
	}
	if err := cluster.Ensure(ctx, alerts.AlertsKind, alerts.GroupsKind); err != nil {
		return fatal(err)
	}
	writer, err := cluster.NewWriter()
	if err != nil {
		return fatal(err)
	}
	closeWriter := sync.OnceFunc(func() {
		cctx, cancel := context.WithTimeout(context.Background(), flushDeadline)
		defer cancel()
		if err := writer.Close(cctx); err != nil {
			log.Error().Err(err).Msg("flush bulk writer")
		}
	})
	defer closeWriter()

	sources := make([]alerts.Source, 0, len(cfg.Alerts.Sources))
	for _, s := range cfg.Alerts.Sources {
		sources = append(sources, alerts.Source(s))
	}
	p, err := alerts.New(alerts.Deps{
		Logs: client, Threats: client, SIEM: client, Sink: writer, Cursors: store, Rules: rules,
		Groups: alerts.NewGroupStore(cluster), Archive: cluster, Directory: client,
	}, alerts.Options{
		Sources: sources, PollInterval: cfg.Alerts.PollInterval.D(), Lookback: cfg.Alerts.Lookback.D(),
		Overlap: overlapOption(cfg.Alerts.Overlap.D()), PageSize: cfg.Alerts.PageSize,
		Types: cfg.Alerts.Types, Statuses: cfg.Alerts.Statuses, Routes: cfg.Alerts.Routes,
		DetailsURL: details, AckGrace: alertsAckGrace, Logger: log,
	})
	if err != nil {
		return fatal(err)
	}

	code := crawler.ExitOK
	var lastCalls int64
	report := func(ps alerts.PassSummary) {
		calls := client.Stats().Calls
		s := &alertsSummary{Command: "alerts", PassSummary: ps, Seconds: ps.Finished.Sub(ps.Started).Seconds(), APICalls: calls - lastCalls}
		lastCalls = calls
		if ps.Failed() {
			s.ExitCode = crawler.ExitPartial
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
	if ctx.Err() != nil && code == crawler.ExitOK && once {
		code = crawler.ExitPartial
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
	fmt.Fprintf(w, "\nmimecrawl alerts summary (%.1fs, %d API calls)\n", s.Seconds, s.APICalls)
	if s.Error != "" {
		fmt.Fprintf(w, "  error         %s\n", s.Error)
	}
	for _, src := range s.Sources {
		fmt.Fprintf(w, "  %-22s ", src.Source)
		if src.Forbidden {
			fmt.Fprintf(w, "not permitted for this API application (needs %s)\n", src.Permission)
			continue
		}
		fmt.Fprintf(w, "%d records, %d alerts indexed, %d already there", src.Records, src.Indexed, src.Existing)
		if n := total(src.Excluded); n > 0 {
			fmt.Fprintf(w, ", %d excluded (%s)", n, excludedText(src.Excluded))
		}
		if src.Malformed > 0 {
			fmt.Fprintf(w, ", %d malformed", src.Malformed)
		}
		if src.FilterErrors > 0 {
			fmt.Fprintf(w, ", %d filter errors (kept)", src.FilterErrors)
		}
		if src.FilesSkipped > 0 {
			fmt.Fprintf(w, ", %d files skipped", src.FilesSkipped)
		}
		if src.Repeats > 0 {
			fmt.Fprintf(w, ", %d repeats dropped", src.Repeats)
		}
		if src.Rejected > 0 {
			fmt.Fprintf(w, ", %d rejected by elasticsearch", src.Rejected)
		}
		if src.Groups > 0 {
			fmt.Fprintf(w, ", %d groups updated", src.Groups)
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
