// Command mimecrawl keeps an Elasticsearch index in step with a Mimecast email archive.
//
// It only parses flags, wires the packages together, handles signals and maps errors to exit
// codes; the work is done by package crawler.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `mimecrawl keeps an Elasticsearch index in step with a Mimecast archive.

Usage:
  mimecrawl check  --config FILE           test the configuration, credentials, permissions and Elasticsearch
  mimecrawl crawl  --config FILE [--full]  crawl new messages (--full: re-crawl everything and remove what is gone)
  mimecrawl status --config FILE [--json]  show checkpoints, failures and recent runs
  mimecrawl plan   --config FILE           show what a crawl would do, without changing anything
  mimecrawl alerts --config FILE [--once]  poll the security alert sources (--once: one pass, then exit;
                   [--listen ADDR]         --listen: serve /metrics and /healthz while polling)
  mimecrawl version

Exit codes:
  0  success
  1  fatal error: bad configuration, a damaged state file, a failed check, or the run could not start
  2  bad command line
  3  partial: some mailbox views failed or were interrupted (SIGTERM, SIGINT); their checkpoints
     did not pass what was not indexed, and the next run goes on from there
  4  the mailbox removal guard refused a removal; nothing was removed, kept mailboxes were crawled
The most severe wins: 1, then 3, then 4.

On SIGTERM or SIGINT a run stops within performance.shutdown_grace (default 30s).
The config file may also be given by MIMECRAWL_CONFIG.
`

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("mimecrawl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("MIMECRAWL_CONFIG"), "configuration file (YAML)")
	logLevel := fs.String("log-level", "", "override logging.level (trace, debug, info, warn, error)")
	logFormat := fs.String("log-format", "", "override logging.format: auto (console on a terminal, JSON otherwise), json, console or ecs (Elastic Common Schema JSON)")
	var full, allowMass, asJSON, once *bool
	listen := new(string)
	switch cmd {
	case "alerts":
		once = fs.Bool("once", false, "one pass over every alert source, then exit (for a CronJob)")
		listen = fs.String("listen", "", "serve /metrics and /healthz on this address (e.g. :9464) while polling; not with --once")
	case "crawl":
		full = fs.Bool("full", false, "ignore delta tokens: re-crawl every kept mailbox from messages.start_date and remove documents no longer in the archive")
		allowMass = fs.Bool("allow-mass-removal", false, "remove mailboxes even when more than safety.max_mailbox_removal_ratio of them would go")
	case "status":
		asJSON = fs.Bool("json", false, "print JSON")
	case "check", "plan":
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "mimecrawl", version)
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mimecrawl: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mimecrawl %s: unexpected arguments %q\n", cmd, fs.Args())
		return exitUsage
	}
	if once != nil && *once && *listen != "" {
		fmt.Fprintf(stderr, "mimecrawl %s: --listen serves a long-running poller; with --once set metrics.pushgateway_url instead\n", cmd)
		return exitUsage
	}
	if *configPath == "" {
		fmt.Fprintf(stderr, "mimecrawl %s: --config FILE is required (or set MIMECRAWL_CONFIG)\n", cmd)
		return exitUsage
	}

	// The signal context exists before anything slow happens, loading the configuration
	// included, so that SIGTERM is never caught and then ignored.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cmd == "check" {
		// check reports a bad config as its first failed line instead of stopping before it.
		return runCheck(ctx, *configPath, *logLevel, *logFormat, stdout, stderr)
	}
	a, err := newApp(ctx, *configPath, *logLevel, *logFormat, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mimecrawl %s: %v\n", cmd, err)
		return exitFatal
	}
	defer a.close()
	switch cmd {
	case "crawl":
		return a.crawl(ctx, *full, *allowMass)
	case "status":
		return a.status(*asJSON)
	case "plan":
		return a.plan(ctx)
	case "alerts":
		return a.alertsRun(ctx, *once, *listen)
	}
	return exitUsage
}
