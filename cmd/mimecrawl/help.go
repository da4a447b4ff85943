package main

import (
	"flag"
	"fmt"
	"io"
)

// command describes one subcommand for its help: what it does, how it is called, examples.
type command struct {
	name     string
	synopsis string // after "mimecrawl NAME"
	short    string // one line, for the command list
	long     string
	examples []string
	// exits lists the exit codes this command returns (exitCodes has their meaning).
	exits []int
}

var commands = []command{
	{
		name: "check", synopsis: "--config FILE [--quiet] [--shard i/n]",
		short: "test the configuration, credentials, permissions, Elasticsearch and the state file",
		long: `Proves with the smallest request each that the Mimecast token, every endpoint a crawl needs
and Elasticsearch answer, and that the state file opens: one line per check, starting with
ok, warn, skip or FAIL, one line per root cause (a wrong secret fails the token, and what
needs the token is skipped). It says what it created (index templates, indices, the state
file) and what it found already there. After the verdict it prints the effective
configuration (secrets shown as <secret>, derived values such as the alerts state file, the
spill directory and the log level as in force); --quiet prints only what failed or warns.`,
		examples: []string{"mimecrawl check --config /etc/mimecrawl/config.yaml", "mimecrawl check --config config.yaml --quiet"},
		exits:    []int{exitOK, exitFatal, exitUsage},
	},
	{
		name: "crawl", synopsis: "--config FILE [--full] [--allow-mass-removal] [--shard i/n | --shards n]",
		short: "crawl new messages into Elasticsearch",
		long: `Lists the kept mailboxes, removes those that are gone (within the removal guard), and indexes
every message (and attachment) new since each mailbox view's checkpoint. Checkpoints move only
after Elasticsearch acknowledged what they cover, so a run stopped at any point goes on where
it was. On a terminal it draws its progress; elsewhere it logs a progress line every 10s.

--full re-crawls every kept mailbox from messages.start_date and removes documents no longer in
the archive; an interrupted full re-crawl goes on with the next run.

--shard i/n crawls only the mailboxes of shard i of n (a stable hash of the address), so that
several runs, each with its own Mimecast API application and state file, share a large tenant.
In a Kubernetes Indexed Job give --shards n (or MIMECRAWL_SHARDS) and the index comes from
JOB_COMPLETION_INDEX.`,
		examples: []string{
			"mimecrawl crawl --config config.yaml",
			"mimecrawl crawl --config config.yaml --full",
			"mimecrawl crawl --config shard-1.yaml --shard 1/3",
		},
		exits: []int{exitOK, exitFatal, exitUsage, exitPartial, exitRefused},
	},
	{
		name: "status", synopsis: "--config FILE [--json] [--shard i/n]",
		short: "show checkpoints, failed documents and recent runs (no credentials needed)",
		long: `Reads the state file only: it needs no Mimecast or Elasticsearch credentials. Before the first
crawl (also after check created the state file) it says that no crawl has run yet. While a
crawl runs (it holds the state file's lock) it shows the snapshot that crawl writes at every
checkpoint, and says how old it is. --json has [] for an empty list.`,
		examples: []string{"mimecrawl status --config config.yaml", "mimecrawl status --config config.yaml --json | jq .views"},
		exits:    []int{exitOK, exitFatal, exitUsage},
	},
	{
		name: "plan", synopsis: "--config FILE [--json] [--shard i/n | --shards n]",
		short: "show what a crawl would do, without changing anything",
		long: `A dry run: lists domains and mailboxes with the rule that keeps or excludes each, the mailboxes a
crawl would remove, and per mailbox view the window a crawl would list and how many messages it
holds. It calls only listing endpoints and writes nothing. Before the first crawl it says so and
shows what the first crawl would do (every view's pass is "first"). While a crawl runs it plans
from that crawl's snapshot, as status shows it.`,
		examples: []string{"mimecrawl plan --config config.yaml", "mimecrawl plan --config config.yaml --json"},
		exits:    []int{exitOK, exitFatal, exitUsage},
	},
	{
		name: "alerts", synopsis: "--config FILE [--once]",
		short: "poll the security alert sources into Elasticsearch",
		long: `Polls every configured alert source every alerts.poll_interval until SIGTERM; with --once it does
one pass and exits (for a CronJob). Its cursors live in their own state file, so it runs beside
a crawl.`,
		examples: []string{"mimecrawl alerts --config config.yaml", "mimecrawl alerts --config config.yaml --once"},
		exits:    []int{exitOK, exitFatal, exitUsage, exitPartial},
	},
}

// exitCodes is the meaning of every exit code, for the help.
var exitCodes = map[int]string{
	exitOK:      "success",
	exitFatal:   "fatal error: bad configuration, a damaged or locked state file, a failed check, or the run could not start",
	exitUsage:   "bad command line",
	exitPartial: "partial: some mailbox views (or alert sources) failed or were interrupted (SIGTERM, SIGINT); their\n     checkpoints did not pass what was not indexed, and the next run goes on from there",
	exitRefused: "the mailbox removal guard refused a removal; nothing was removed, kept mailboxes were crawled",
}

// builtinShort describes the commands that take no flags and no configuration.
var builtinShort = map[string]string{
	"version": "print the version (and the commit it was built from)",
	"help":    "this text; `mimecrawl help COMMAND` (or COMMAND --help) describes a command",
}

func lookupCommand(name string) (command, bool) {
	for _, c := range append(commands[:len(commands):len(commands)], textCommand) {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func writeExitCodes(w io.Writer, codes []int) {
	fmt.Fprintln(w, "Exit codes:")
	for _, c := range codes {
		fmt.Fprintf(w, "  %d  %s\n", c, exitCodes[c])
	}
}

// printUsage writes the top-level help.
func printUsage(w io.Writer) {
	fmt.Fprint(w, "mimecrawl keeps an Elasticsearch index in step with a Mimecast archive.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  mimecrawl %-7s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "  mimecrawl %-7s %s\n", textCommand.name, textCommand.short)
	fmt.Fprintf(w, "  mimecrawl %-7s %s\n", "version", builtinShort["version"])
	fmt.Fprintf(w, "  mimecrawl %-7s %s\n\n", "help", builtinShort["help"])
	writeExitCodes(w, []int{exitOK, exitFatal, exitUsage, exitPartial, exitRefused})
	fmt.Fprint(w, `The most severe wins: 1, then 3, then 4.

On SIGTERM or SIGINT a run stops within performance.shutdown_grace (default 30s).
The config file may also be given by MIMECRAWL_CONFIG.
`)
}

// printCommandHelp writes the help of one command: what it does, every flag, examples and its
// exit codes. fs holds the command's flags.
func printCommandHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "mimecrawl %s: %s\n\nUsage:\n  mimecrawl %s %s\n\n%s\n\nFlags:\n", c.name, c.short, c.name, c.synopsis, c.long)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
	fmt.Fprintln(w, "\nExamples:")
	for _, e := range c.examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintln(w)
	writeExitCodes(w, c.exits)
}
