// Package job is what each command of mimecrawl does, apart from the command line: one
// function per crawl-side command (Crawl, Plan, Status), each returning a typed report. The
// command (cmd/mimecrawl) parses flags, handles signals, prints the report and exits with the
// code the report gives; every decision is here, where it is tested without a process.
//
// It owns:
//   - the configuration → component mapping (CrawlerOptions, Rules, MimecastConfig,
//     IndexConfig, StoreOptions): the crawl, plan, check and the benchmark all use it;
//   - the full re-crawl campaign (fullCampaign), the mailbox removal guard's use and the rule
//     that a damaged state file ends the run as fatal;
//   - the exit-code rule (Summary.Outcome, Worst);
//   - the shutdown clock (Shutdown, AckGrace, HardStopAfter): one grace per command;
//   - the run summary (Summary, recorded in the state file); the status report and the
//     snapshot a running crawl writes beside its state file are state's (state.Report,
//     state.WriteSnapshot), this package only says when they are written.
//
// Goroutines: Crawl starts the status snapshotter (one goroutine, stopped before Crawl returns)
// and the crawler's own (see package crawler); Plan lists views on goroutines of an errgroup it
// waits for. None outlives the call that started it.
package job
