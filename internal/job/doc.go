// Package job is what each command of mimecrawl does, apart from the command line: one
// function per command (Crawl, Plan, Status, Alerts, Check), each returning a typed report. The
// command (cmd/mimecrawl) parses flags, handles signals, prints the report and exits with the
// code the report gives; every decision is here, where it is tested without a process.
//
// It owns:
//   - the configuration → component mapping (CrawlerOptions, AlertsOptions, Rules,
//     MimecastConfig, PollerClient, IndexConfig, StoreOptions): the crawl, the alerts poller,
//     plan, check and the benchmark all use it;
//   - the full re-crawl campaign (fullCampaign), the mailbox removal guard's use and the rule
//     that a damaged state file ends the run as fatal;
//   - the exit-code rule (Summary.Outcome, Worst; for the alerts poller passCode, startCode
//     and endCode);
//   - the alerts poller's run: its data streams, its state file, a single pass or the
//     long-running poller, each pass's summary (AlertsSummary, recorded in the poller's state
//     file) and the sources' health; the command only serves the probes (AlertsArgs.Serve);
//   - check's probes, their verdicts and the advice for each problem (Check, CheckReport,
//     MimecastFix); the command prints the lines and the effective configuration;
//   - the shutdown clock (Shutdown, AckGrace, HardStopAfter): one grace per command;
//   - the run summary (Summary, recorded in the state file); the status report and the
//     snapshot a running crawl writes beside its state file are state's (state.Report,
//     state.WriteSnapshot), this package only says when they are written.
//
// Goroutines: Alerts runs the poller's (see package alerts), which end before it returns;
// Crawl starts the status snapshotter (one goroutine, stopped before Crawl returns) and the
// crawler's own (see package crawler); Plan lists views on goroutines of an errgroup it
// waits for. None outlives the call that started it.
package job
