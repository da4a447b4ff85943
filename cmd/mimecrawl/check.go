package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/internal/job"
)

// checkPrinter prints check's lines (job.Check) as they come: each starts with its verdict
// (ok, warn, skip or FAIL) and the check's name in a column wide enough for every name this
// configuration can produce, then the detail on the same line, whole, so that one grep finds
// it; a fix goes on the next line. quiet prints only FAIL and warn lines.
type checkPrinter struct {
	w     io.Writer
	quiet bool
	width int
}

func (p checkPrinter) line(l job.CheckLine) {
	if p.quiet && (l.Verdict == job.VerdictOK || l.Verdict == job.VerdictSkip) {
		return
	}
	fmt.Fprintf(p.w, "%-5s %-*s  %s\n", l.Verdict, p.width, l.Name, l.Detail)
	if l.Fix != "" {
		fmt.Fprintf(p.w, "%-5s %-*s  fix: %s\n", "", p.width, "", l.Fix)
	}
}

// runCheck runs check (job.Check) and prints its lines, its verdict and, unless quiet, the
// configuration they were made with.
func runCheck(ctx context.Context, path, level, format string, shard crawler.Shard, quiet bool, stdout, stderr io.Writer) int {
	p := checkPrinter{w: stdout, quiet: quiet, width: job.CheckNameWidth(&config.Config{})}
	// The check lines are the output; routine log lines would only bury them, unless
	// logging.level or --log-level asks for them.
	a, err := newAppWith(ctx, config.Load, path, level, format, stdout, stderr, true)
	if err != nil {
		// A bad config is check's first failed line instead of stopping before it.
		return int(job.ConfigFailed(err, p.line).Code())
	}
	defer a.close()
	a.shard = shard
	p.width = job.CheckNameWidth(a.cfg)
	rep := job.Check(ctx, a.env(), path, p.line)
	// The verdicts come first; the configuration they were made with follows them.
	if rep.Failed > 0 {
		fmt.Fprintf(stdout, "\n%s failed", job.Plural(int64(rep.Failed), "check"))
	} else {
		fmt.Fprint(stdout, "\nall checks passed")
	}
	if rep.Warned > 0 {
		fmt.Fprintf(stdout, " (%s)", job.Plural(int64(rep.Warned), "warning"))
	}
	fmt.Fprintln(stdout)
	if !quiet {
		fmt.Fprintln(stdout)
		a.printEffectiveConfig(stdout, format)
	}
	return int(rep.Code())
}

// printEffectiveConfig writes the configuration as loaded (defaults, file, environment), with
// every secret as <secret> (config.Secret marshals so) and derived settings as the values in
// force: the alerts state file, the spill directory, the log level and format this run uses.
func (a *app) printEffectiveConfig(w io.Writer, format string) {
	cfg := *a.cfg
	cfg.Alerts.StatePath = a.cfg.AlertsStatePath()
	if cfg.Attachments.SpillDir == "" {
		cfg.Attachments.SpillDir = os.TempDir()
	}
	cfg.Logging.Level = a.level
	if format != "" {
		cfg.Logging.Format = format
	}
	out, err := yaml.Marshal(&cfg)
	if err != nil {
		fmt.Fprintf(w, "(the effective configuration cannot be shown: %v)\n", err)
		return
	}
	fmt.Fprintln(w, "effective configuration (secrets shown as <secret>; derived values as in force):")
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
	if a.shard.Sharded() {
		fmt.Fprintf(w, "  # shard %s\n", a.shard)
	}
}
