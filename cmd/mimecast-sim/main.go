// Command mimecast-sim serves the Mimecast API 2.0 simulator on a local socket for demos,
// manual testing and benchmarks. It prints the listen address on stdout, logs JSON to stderr
// and stops gracefully on SIGINT or SIGTERM.
//
// Exit codes: 0 after a clean shutdown, 1 when serving fails, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2

	shutdownTimeout = 5 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// config is what the flags say.
type config struct {
	addr      string
	readyFile string
	logLevel  string
	opts      simulator.Options
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var epoch string
	var alerts, alertsSIEM, moreLogs int
	fs := flag.NewFlagSet("mimecast-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8089", "listen address (port 0 picks a free port)")
	fs.StringVar(&c.readyFile, "ready-file", "", "write the actual listen address to this file once listening")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug (one line per request), info, warn, error")
	fs.Int64Var(&c.opts.Seed, "seed", 0, "seed of the generated archive")
	fs.IntVar(&c.opts.Domains, "domains", 2, "internal domains (plus one local domain)")
	fs.IntVar(&c.opts.Mailboxes, "mailboxes", 4, "mailboxes, round-robin over the domains (plus one in the local domain)")
	fs.IntVar(&c.opts.Messages, "messages", 20, "messages per mailbox")
	fs.StringVar(&epoch, "epoch", "2026-01-01T00:00:00Z", "seeded messages are received up to this time (RFC 3339)")
	fs.DurationVar(&c.opts.Span, "span", 365*24*time.Hour, "seeded messages are received within this span before --epoch")
	fs.StringVar(&c.opts.ClientID, "client-id", "demo-client", "accepted OAuth2 client id")
	fs.StringVar(&c.opts.ClientSecret, "client-secret", "demo-secret", "accepted OAuth2 client secret")
	fs.DurationVar(&c.opts.TokenTTL, "token-ttl", 1799*time.Second, "access token lifetime")
	fs.IntVar(&c.opts.TokenErrorStatus, "token-error-status", 401, "status for bad credentials: 401 or 400")
	fs.IntVar(&c.opts.RateLimit, "rate-limit", 0, "requests per minute per client id (0 = unlimited)")
	fs.StringVar(&c.opts.RateLimitHeaders, "ratelimit-headers", "on429", "rate-limit headers: on429, always, none, retry-after, epoch")
	fs.IntVar(&c.opts.PageCap, "page-cap", 500, "largest pageSize honoured")
	fs.BoolVar(&c.opts.EmptyLastPage, "empty-last-page", false, "end lists with an empty page that still carries next")
	fs.BoolVar(&c.opts.ShapeVariants, "shape-variants", false, "serve the record shapes the public sources disagree on (seeded per record)")
	fs.Float64Var(&c.opts.BadRecords, "bad-records", 0, "fraction 0..1 of message-list records served malformed")
	fs.BoolVar(&c.opts.StreamFiles, "stream-files", false, "get-file/get-message-part stream bytes instead of pre-signed URLs")
	fs.DurationVar(&c.opts.DownloadTTL, "download-ttl", 60*time.Second, "lifetime of pre-signed download URLs")
	fs.IntVar(&alerts, "alerts", 0, "seeded security alerts per source (attachment, URL, impersonation, DLP, threats); 0 = alert endpoints off unless --alerts-siem or records are added")
	fs.IntVar(&alertsSIEM, "alerts-siem", -1, "seeded SIEM events (default: 4 x --alerts)")
	fs.IntVar(&c.opts.Alerts.Audit, "alerts-audit", 0, "seeded audit events (POST /api/audit/get-audit-events)")
	fs.DurationVar(&c.opts.Alerts.Span, "alerts-span", 12*time.Hour, "seeded alerts happen within this span before the start time (at most 168h)")
	fs.StringVar(&c.opts.Alerts.ThreatsWrapper, "threats-wrapper", "value", "key of the records in threat feed answers: value, data or events")
	fs.IntVar(&moreLogs, "logs", 0, "seeded records per archive access, release, threat-intel (each feed) and Cloud Integrated SIEM log")
	fs.Func("count", "seeded records of one source, as name=N (repeatable; any source name of alerts.sources); wins over --alerts, --alerts-siem, --alerts-audit and --logs for that source", func(v string) error {
		name, num, ok := strings.Cut(v, "=")
		n, err := strconv.Atoi(num)
		if !ok || name == "" || err != nil || n < 0 {
			return fmt.Errorf("%q: want name=N with N >= 0", v)
		}
		if c.opts.Alerts.Counts == nil {
			c.opts.Alerts.Counts = map[string]int{}
		}
		c.opts.Alerts.Counts[name] = n
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	t, err := time.Parse(time.RFC3339, epoch)
	if err != nil {
		return c, fmt.Errorf("--epoch %q: %w", epoch, err)
	}
	c.opts.Epoch = t
	if alerts < 0 || alertsSIEM < -1 || c.opts.Alerts.Audit < 0 {
		return c, errors.New("--alerts, --alerts-siem and --alerts-audit: want >= 0")
	}
	if alertsSIEM == -1 {
		alertsSIEM = 4 * alerts
	}
	a := &c.opts.Alerts
	a.Attachment, a.URL, a.Impersonation, a.DLP, a.Threats, a.SIEM = alerts, alerts, alerts, alerts, alerts, alertsSIEM
	if moreLogs < 0 {
		return c, errors.New("--logs: want >= 0")
	}
	l := &a.Logs
	l.ArchiveSearch, l.Search, l.View, l.HeldRelease, l.ThreatIntelCustomer, l.ThreatIntelGrid, l.SIEMCI =
		moreLogs, moreLogs, moreLogs, moreLogs, moreLogs, moreLogs, 3*moreLogs
	if c.opts.Messages == 0 {
		c.opts.Messages = -1 // 0 on the command line means none, not the default
	}
	return c, nil
}

// run serves until ctx ends; onReady (optional) receives the listen address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, onReady func(addr string)) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "mimecast-sim:", err)
		}
		return exitUsage
	}
	level, err := zerolog.ParseLevel(c.logLevel)
	if err != nil || c.logLevel == "" {
		fmt.Fprintf(stderr, "mimecast-sim: --log-level %q: want debug, info, warn or error\n", c.logLevel)
		return exitUsage
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	c.opts.Logger = log

	sim, err := simulator.New(c.opts)
	if err != nil {
		fmt.Fprintln(stderr, "mimecast-sim:", err)
		return exitUsage
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		log.Error().Err(err).Str("addr", c.addr).Msg("listen failed")
		return exitError
	}
	addr := ln.Addr().String()
	if c.readyFile != "" {
		if err := writeReadyFile(c.readyFile, addr); err != nil {
			ln.Close()
			log.Error().Err(err).Msg("write ready file failed")
			return exitError
		}
	}
	messages := max(c.opts.Messages, 0)
	log.Info().Str("addr", addr).Int64("seed", c.opts.Seed).Int("domains", c.opts.Domains).
		Int("mailboxes", c.opts.Mailboxes).Int("messages_per_mailbox", messages).
		Int("messages", (c.opts.Mailboxes+1)*messages).Str("client_id", c.opts.ClientID).
		Int("rate_limit", c.opts.RateLimit).Bool("stream_files", c.opts.StreamFiles).
		Bool("shape_variants", c.opts.ShapeVariants).Float64("bad_records", c.opts.BadRecords).
		Int("alerts_per_source", c.opts.Alerts.Attachment).Int("siem_events", c.opts.Alerts.SIEM).Msg("listening")
	fmt.Fprintln(stdout, addr)
	if onReady != nil {
		onReady(addr)
	}

	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		log.Error().Err(err).Msg("serve failed")
		return exitError
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error().Err(err).Msg("shutdown incomplete")
		return exitError
	}
	if c.readyFile != "" {
		_ = os.Remove(c.readyFile)
	}
	log.Info().Msg("stopped")
	return exitOK
}

// writeReadyFile writes addr atomically, so a watcher never reads half a line.
func writeReadyFile(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mimecast-sim-ready-*")
	if err != nil {
		return fmt.Errorf("create ready file next to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.WriteString(addr + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("write ready file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close ready file %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename ready file to %s: %w", path, err)
	}
	return nil
}
