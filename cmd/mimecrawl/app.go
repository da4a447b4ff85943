package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/state"
)

// app holds what every command needs: the loaded configuration and the logger.
type app struct {
	cfg      *config.Config
	log      zerolog.Logger
	stdout   io.Writer
	stderr   io.Writer
	terminal bool
	// line is the progress line when stderr is a terminal; log lines pass through it.
	line *statusLine
	// beforeSummary, when set, runs just before the summary is printed (the progress's last
	// frame).
	beforeSummary func(*Summary)
	// shard is the part of the mailboxes this run owns (zero: all of them).
	shard crawler.Shard
	// level is the log level in force (levelInForce).
	level string
	// textSummary: the logs are for a person (console, or auto on a terminal), so a run's
	// summary is also printed as text on stdout. With a structured format, or no terminal,
	// the summary is the one log line that ends the run, and stdout stays free of text that a
	// log pipeline would have to tell apart from JSON.
	textSummary bool

	// stopping is for the work a stopping command still does after SIGTERM or SIGINT
	// (flushing what is queued, committing what was acknowledged, the summary): the signal
	// does not end it, performance.shutdown_grace after the signal does.
	stopping context.Context
	// close ends stopping and the watch on the signal; call it when the command returns.
	close func()
}

// hardStopAfter is how long past the grace a command that still has not returned is stopped
// outright, without its summary: the promise to stop after a signal holds even if some wait
// does not honour its context.
const hardStopAfter = 5 * time.Second

func newApp(ctx context.Context, path, level, format string, stdout, stderr io.Writer) (*app, error) {
	return newAppWith(ctx, config.Load, path, level, format, stdout, stderr, false)
}

// newLocalApp is newApp for commands that read only local files: the configuration's
// credentials are neither required nor read (config.LoadLocal).
func newLocalApp(ctx context.Context, path, level, format string, stdout, stderr io.Writer) (*app, error) {
	return newAppWith(ctx, config.LoadLocal, path, level, format, stdout, stderr, false)
}

// newAppWith loads the configuration and builds the logger; quiet raises the default log
// level to warn wherever the command runs (see levelInForce).
func newAppWith(ctx context.Context, load configLoader, path, level, format string, stdout, stderr io.Writer, quiet bool) (*app, error) {
	cfg, err := loadConfig(ctx, load, path)
	if err == nil {
		// The source names are the alerts package's table, which config cannot import.
		err = alerts.ValidateSources(cfg.Alerts.Sources)
	}
	if err != nil {
		return nil, fmt.Errorf("load config %s:\n%w", path, err)
	}
	// One lock for everything written to stderr: log lines and the progress line come from
	// several goroutines.
	a := &app{cfg: cfg, stdout: stdout, terminal: isTerminal(stderr)}
	out := stderr
	if f, ok := stderr.(*os.File); ok && a.terminal {
		// Log lines go above the progress line, never into it.
		a.line = newStatusLine(stderr, terminalWidth(f))
		out = a.line
	}
	a.stderr = zerolog.SyncWriter(out)
	a.stopping, a.close = shutdownDeadline(ctx, cfg.Performance.ShutdownGrace.D(), a.stderr)
	if format == "" {
		format = cfg.Logging.Format
	}
	level = levelInForce(level, cfg.Logging, a.terminal && format == "auto" || quiet)
	a.level = level
	a.textSummary = format == "console" || format == "auto" && a.terminal
	if a.log, err = newLogger(level, format, a.stderr, a.terminal); err != nil {
		return nil, err
	}
	return a, nil
}

// configLoader is config.Load or config.LoadLocal.
type configLoader func(path string, getenv func(string) string) (*config.Config, error)

// loadConfig loads the configuration unless ctx ends first. Loading is bounded (the file
// size, list lengths and regular expression sources are), but reading the file is not: it may
// be a pipe or sit on a network share that stopped answering. So the load runs apart and the
// command returns on the signal without waiting for it; the process ends then, and the load
// with it. The channel is buffered so that a load finishing late never blocks.
func loadConfig(ctx context.Context, load configLoader, path string) (*config.Config, error) {
	type loaded struct {
		cfg *config.Config
		err error
	}
	ch := make(chan loaded, 1)
	go func() {
		cfg, err := load(path, os.Getenv)
		ch <- loaded{cfg, err}
	}()
	select {
	case l := <-ch:
		return l.cfg, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("interrupted while loading the configuration: %w", ctx.Err())
	}
}

// shutdownDeadline returns a context that ends grace after ctx ends (or when the returned
// function is called), and arranges that the process exits, with code 3 and a line on stderr,
// if it still runs hardStopAfter after that.
func shutdownDeadline(ctx context.Context, grace time.Duration, stderr io.Writer) (context.Context, func()) {
	stopping, cancel := context.WithCancel(context.Background())
	var (
		mu     sync.Mutex
		done   bool
		timers []*time.Timer
	)
	unwatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		timers = append(timers,
			time.AfterFunc(grace, cancel),
			time.AfterFunc(grace+hardStopAfter, func() {
				fmt.Fprintf(stderr, "mimecrawl: still running %s after the signal (performance.shutdown_grace %s); exiting without a summary\n",
					grace+hardStopAfter, grace)
				os.Exit(exitPartial)
			}))
	})
	return stopping, func() {
		unwatch()
		mu.Lock()
		done = true
		for _, t := range timers {
			t.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

func newLogger(level, format string, w io.Writer, terminal bool) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", level)
	}
	switch format {
	case "json":
	case "ecs":
		// No zerolog timestamp: the ECS writer stamps @timestamp with milliseconds.
		return zerolog.New(newECSWriter(w, time.Now)).Level(lvl), nil
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	case "auto":
		if terminal {
			w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
		}
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format %q: want auto, json, console or ecs", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// levelInForce is the log level a command applies: --log-level, else logging.level when the
// configuration sets it, else the default, raised to warn when quiet (on a terminal the
// progress line and the summary tell the story, and check's lines are its output; routine log
// lines would scroll them away). Only the default is raised: a level someone wrote is honoured.
func levelInForce(flagLevel string, l config.Logging, quiet bool) string {
	if flagLevel != "" {
		return flagLevel
	}
	if quiet && !l.LevelSet() {
		return atLeastWarn(l.Level)
	}
	return l.Level
}

func atLeastWarn(level string) string {
	if l, err := zerolog.ParseLevel(strings.ToLower(level)); err == nil && l < zerolog.WarnLevel {
		return "warn"
	}
	return level
}

// isTerminal reports whether w is a character device (a terminal), where progress is drawn
// in place; elsewhere progress goes to the JSON log.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (a *app) mimecastClient() (*mimecast.Client, error) {
	// One message being fetched has one archive request in flight at a time, so the crawl's
	// workers bound the requests; the limiter, adaptive by default, decides how many of them
	// pay.
	p := a.cfg.Performance
	return a.newMimecastClient(mimecast.Concurrency{Adaptive: p.Concurrency != config.ConcurrencyFixed, Max: a.cfg.MaxInflight()})
}

// pollerClient is the alerts poller's client: without the archive limiter, which is the
// crawl's. The poller's archive lookups are few and one at a time, and the REST sources it
// polls are outside the limiter, so the poller neither needs it nor exports its series.
func (a *app) pollerClient() (*mimecast.Client, error) {
	return a.newMimecastClient(mimecast.Concurrency{})
}

func (a *app) newMimecastClient(conc mimecast.Concurrency) (*mimecast.Client, error) {
	m, p, l := a.cfg.Mimecast, a.cfg.Performance, a.cfg.Logging
	trace, err := mimecast.ParseTraceLevel(l.Trace)
	if err != nil {
		return nil, err
	}
	return mimecast.New(mimecast.Config{
		BaseURL: m.BaseURL, AuthURL: m.AuthURL, ClientID: m.ClientID, ClientSecret: m.ClientSecret.Reveal(),
		AuthTokenOffset: p.AuthTokenOffset.D(), RetryAfterMultiplier: p.RetryAfterMultiplier,
		MaxRetries: p.MaxRetries, RequestTimeout: m.RequestTimeout.D(), Trace: trace,
		StatsInterval: l.StatsInterval.D(), Logger: a.log.With().Str("component", "mimecast").Logger(),
		Concurrency: conc,
	})
}

func (a *app) cluster(ctx context.Context) (*index.Cluster, error) {
	e := a.cfg.Elasticsearch
	var ca []byte
	if e.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(e.CAFile); err != nil {
			return nil, fmt.Errorf("elasticsearch.ca_file: %w", err)
		}
	}
	return index.Open(ctx, index.Config{
		Addresses: e.Addresses, Username: e.Username, Password: e.Password.Reveal(), APIKey: e.APIKey.Reveal(),
		CACert: ca, CAFingerprint: e.CAFingerprintSHA256(), IndexPrefix: e.IndexPrefix, Namespace: e.Namespace, Shards: e.Shards, Replicas: e.Replicas, BulkWorkers: e.Bulk.Workers, FlushBytes: int(e.Bulk.FlushBytes),
		FlushInterval: e.Bulk.FlushInterval.D(), MaxItemRetries: e.Bulk.MaxItemRetries,
		RequestTimeout: e.RequestTimeout.D(), BulkTimeout: e.Bulk.Timeout.D(),
		Logger: a.log.With().Str("component", "index").Logger(),
	})
}

func (a *app) openStore(readOnly bool) (*state.Store, error) {
	return state.Open(a.cfg.State.Path, state.Options{LockTimeout: a.cfg.State.LockTimeout.D(), ReadOnly: readOnly})
}

func (a *app) rules() crawler.Rules {
	c := a.cfg
	return crawler.Rules{
		IncludeDomains: c.Domains.Include, IncludeLocal: c.Domains.IncludeLocal,
		IncludeMailboxes: c.Mailboxes.Include, ExcludeMailboxes: c.Mailboxes.Exclude,
		Shard: a.shard,
	}
}

// usePipeline tells whether attachment text goes through the cluster's ingest pipeline:
// attachments.text is elasticsearch and the cluster has the attachment processor. Without the
// processor the crawler extracts the text itself rather than index none.
func (a *app) usePipeline(hasProcessor bool) bool {
	if a.cfg.Attachments.Text != config.TextByElasticsearch {
		return false
	}
	if !hasProcessor {
		a.log.Warn().Msg("attachments.text is elasticsearch but the cluster has no attachment processor; the crawler extracts attachment text")
	}
	return hasProcessor
}

func (a *app) crawlOptions(full, pipeline bool) crawler.Options {
	c := a.cfg
	return crawler.Options{
		Views: c.Messages.Views, StartDate: c.Messages.StartDate.Time,
		ExcludeSubjects: c.Messages.ExcludeSubjects, BlankSubject: c.Messages.BlankSubject,
		MessageDetail:      c.Messages.Detail,
		ExtractAttachments: c.Attachments.Extract, ExcludeNames: c.Attachments.ExcludeNames,
		BlankName: c.Attachments.BlankName, MaxAttachmentBytes: int64(c.Attachments.MaxBytes),
		AttachmentPipeline: pipeline, NoAttachmentText: c.Attachments.Text == config.TextNone,
		MaxAttachmentTextChars: c.Attachments.MaxTextChars, AttachmentTextTimeout: c.Attachments.TextTimeout.D(),
		PageSize: c.Performance.PageSize, Mailboxes: c.Parallelism.Mailboxes, MessageWorkers: c.Parallelism.Messages,
		MaxInflight:  c.Performance.MessagesInFlight,
		IndexQueries: c.Parallelism.IndexQueries, DeltaTokenOffset: c.Performance.DeltaTokenOffset.D(),
		CheckpointInterval: c.Performance.CheckpointInterval.D(), Full: full,
		Logger: a.log.With().Str("component", "crawler").Logger(),
		Limits: crawler.MessageLimits{MaxMessageBytes: int64(c.Messages.MaxBytes),
			KeepMemory: int64(c.Attachments.MemoryPerMessage), SpillDir: c.Attachments.SpillDir},
	}
}
