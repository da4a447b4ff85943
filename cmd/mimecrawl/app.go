package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/internal/job"
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
	// does not end it, performance.shutdown_grace after the signal does (job.Shutdown).
	stopping context.Context
	// close ends stopping and the watch on the signal; call it when the command returns.
	close func()
}

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
	a.stopping, a.close = shutdown(ctx, cfg.Performance.ShutdownGrace.D(), a.stderr)
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

// shutdown is the command's shutdown clock (job.Shutdown); the hard stop exits with code 3 and
// a line on stderr.
func shutdown(ctx context.Context, grace time.Duration, stderr io.Writer) (context.Context, func()) {
	return job.Shutdown(ctx, grace, func() {
		fmt.Fprintf(stderr, "mimecrawl: still running %s after the signal (performance.shutdown_grace %s); exiting without a summary\n",
			grace+job.HardStopAfter, grace)
		os.Exit(exitPartial)
	})
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

// env is what the library's commands are given.
func (a *app) env() job.Env {
	return job.Env{Config: a.cfg, Log: a.log, Shard: a.shard, Stopping: a.stopping}
}
