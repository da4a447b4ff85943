// Command mimecrawl keeps an Elasticsearch index in step with a Mimecast email archive.
//
// It only parses flags, wires the packages together, handles signals, prints and exits with the
// code a command's report gives; what each command does and decides is package job's
// (internal/job), the work itself the crawler's and the alerts poller's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/mimecrawl/mimecrawl/crawler"
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "mimecrawl", versionString(version, debug.ReadBuildInfo))
		return exitOK
	case "text":
		return runText(rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		if len(rest) == 0 {
			printUsage(stdout)
			return exitOK
		}
		if len(rest) == 1 && (rest[0] == "version" || rest[0] == "help") {
			// Usage lists both; neither takes flags, so their help is their line of it.
			fmt.Fprintf(stdout, "mimecrawl %s: %s\n", rest[0], builtinShort[rest[0]])
			return exitOK
		}
		c, ok := lookupCommand(rest[0])
		if !ok || len(rest) > 1 {
			fmt.Fprintf(stderr, "mimecrawl help: unknown command %q\n\n", strings.Join(rest, " "))
			printUsage(stderr)
			return exitUsage
		}
		fs, _ := newFlags(c.name, io.Discard)
		if c.name == textCommand.name {
			fs, _, _, _ = textFlags(io.Discard)
		}
		printCommandHelp(stdout, c, fs)
		return exitOK
	}
	c, ok := lookupCommand(cmd)
	if !ok {
		fmt.Fprintf(stderr, "mimecrawl: unknown command %q\n\n", cmd)
		printUsage(stderr)
		return exitUsage
	}
	fs, f := newFlags(cmd, stderr)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(stdout, c, fs)
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mimecrawl %s: unexpected arguments %q\n", cmd, fs.Args())
		return exitUsage
	}
	configPath := f.configPath
	if f.once != nil && *f.once && *f.listen != "" {
		fmt.Fprintf(stderr, "mimecrawl %s: --listen serves a long-running poller; with --once set metrics.pushgateway_url instead\n", cmd)
		return exitUsage
	}
	if *configPath == "" {
		fmt.Fprintf(stderr, "mimecrawl %s: --config FILE is required (or set MIMECRAWL_CONFIG)\n", cmd)
		return exitUsage
	}
	shard, err := resolveShard(f, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "mimecrawl %s: %v\n", cmd, err)
		return exitUsage
	}
	logLevel, logFormat := f.logLevel, f.logFormat
	full, allowMass, asJSON, once := f.full, f.allowMass, f.asJSON, f.once

	// The signal context exists before anything slow happens, loading the configuration
	// included, so that SIGTERM is never caught and then ignored.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cmd == "check" {
		// check reports a bad config as its first failed line instead of stopping before it.
		return runCheck(ctx, *configPath, *logLevel, *logFormat, shard, *f.quiet, stdout, stderr)
	}
	var a *app
	if cmd == "status" {
		// status reads local files only: it needs no credentials.
		a, err = newLocalApp(ctx, *configPath, *logLevel, *logFormat, stdout, stderr)
	} else {
		a, err = newApp(ctx, *configPath, *logLevel, *logFormat, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mimecrawl %s: %v\n", cmd, err)
		return exitFatal
	}
	defer a.close()
	a.shard = shard
	switch cmd {
	case "crawl":
		return a.crawl(ctx, *full, *allowMass)
	case "status":
		return a.status(*asJSON)
	case "plan":
		return a.plan(ctx, *asJSON)
	case "alerts":
		return a.alertsRun(ctx, *once, *f.listen)
	}
	return exitUsage
}

// versionString is the version set at link time (-X main.version=…); a binary built without
// it (go install, go build) names the commit and time its module was built from, which the Go
// toolchain records, so that a report of a bug says which code ran.
func versionString(v string, info func() (*debug.BuildInfo, bool)) string {
	if v != "dev" {
		return v
	}
	bi, ok := info()
	if !ok {
		return v
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "+modified"
	}
	if at != "" {
		return fmt.Sprintf("%s (commit %s, %s)", v, rev, at)
	}
	return fmt.Sprintf("%s (commit %s)", v, rev)
}

// flags are the parsed command line of one command; a flag the command does not take stays nil.
type flags struct {
	configPath, logLevel, logFormat *string
	full, allowMass, asJSON, once   *bool
	quiet                           *bool
	listen                          *string
	shard                           *string
	shards                          *int
}

// newFlags defines the flags of cmd. Help prints from the same definitions, so it lists every
// flag a command takes.
func newFlags(cmd string, stderr io.Writer) (*flag.FlagSet, *flags) {
	fs := flag.NewFlagSet("mimecrawl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "run `mimecrawl help %s` for its flags and examples\n", cmd)
	}
	f := &flags{}
	f.configPath = fs.String("config", os.Getenv("MIMECRAWL_CONFIG"), "configuration file (YAML); default $MIMECRAWL_CONFIG")
	f.logLevel = fs.String("log-level", "", "override logging.level (trace, debug, info, warn, error)")
	f.logFormat = fs.String("log-format", "", "override logging.format: auto (console on a terminal, JSON otherwise), json, console or ecs (Elastic Common Schema JSON)")
	switch cmd {
	case "alerts":
		f.once = fs.Bool("once", false, "one pass over every alert source, then exit (for a CronJob)")
		f.listen = fs.String("listen", "", "serve /metrics and the probes /healthz, /readyz, /status on this address (e.g. :9464) while polling; not with --once")
	case "crawl":
		f.full = fs.Bool("full", false, "ignore delta tokens: re-crawl every kept mailbox from messages.start_date and remove documents no longer in the archive")
		f.allowMass = fs.Bool("allow-mass-removal", false, "remove mailboxes even when more than safety.max_mailbox_removal_ratio of them would go")
	case "check":
		f.quiet = fs.Bool("quiet", false, "print only what failed or warns, and the verdict (not the effective configuration)")
	case "status":
		f.asJSON = fs.Bool("json", false, "print JSON")
	case "plan":
		f.asJSON = fs.Bool("json", false, "print JSON")
	}
	switch cmd {
	case "crawl", "plan", "status", "check":
		f.shard = fs.String("shard", "", "crawl only shard `i/n` of the mailboxes (0 <= i < n); each shard has its own config, credentials and state file")
		f.shards = fs.Int("shards", 0, "the number of shards, the index coming from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job); default $"+envShards)
	}
	return fs, f
}

// envShards gives the shard count when --shards is not set; the index comes from envJobIndex,
// which a Kubernetes Indexed Job sets in every pod.
const (
	envShards   = "MIMECRAWL_SHARDS"
	envJobIndex = "JOB_COMPLETION_INDEX"
)

// resolveShard turns --shard, --shards and the environment into the shard of this run: --shard
// i/n wins; otherwise a count from --shards or MIMECRAWL_SHARDS takes its index from
// JOB_COMPLETION_INDEX. No count means the unsharded run, whatever JOB_COMPLETION_INDEX says.
func resolveShard(f *flags, getenv func(string) string) (crawler.Shard, error) {
	if f.shard == nil {
		return crawler.Shard{}, nil
	}
	if *f.shard != "" {
		s, err := crawler.ParseShard(*f.shard)
		if err != nil {
			return crawler.Shard{}, fmt.Errorf("--shard: %w", err)
		}
		if *f.shards != 0 && *f.shards != s.Count {
			return crawler.Shard{}, fmt.Errorf("--shard %s and --shards %d disagree", *f.shard, *f.shards)
		}
		return s, nil
	}
	n := *f.shards
	if n == 0 {
		if v := getenv(envShards); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 1 {
				return crawler.Shard{}, fmt.Errorf("%s=%q: want a whole number of shards, 1 or more", envShards, v)
			}
		}
	}
	if n <= 1 {
		return crawler.Shard{}, nil
	}
	idx := getenv(envJobIndex)
	if idx == "" {
		return crawler.Shard{}, fmt.Errorf("%d shards but no shard index: give --shard i/%d, or run as a Kubernetes Indexed Job (which sets %s)", n, n, envJobIndex)
	}
	s, err := crawler.NewShard(idx, n)
	if err != nil {
		return crawler.Shard{}, fmt.Errorf("%s: %w", envJobIndex, err)
	}
	return s, nil
}
