// Package alerts polls Mimecast's security-event sources (TTP attachment, URL and impersonation
// protection logs, DLP logs, the API 2.0 threat feed and SIEM events), normalises each record
// into an Alert, filters, prioritises and groups them, enriches them from the directory and the
// archive index (and, with content view, the Mimecast archive itself), and writes them to
// Elasticsearch as ECS alerts, where Elastic Security's default index patterns find them. It
// also reads Mimecast's logs of events (the audit log) with the same machinery, each into a
// data stream of its own, without rules, groups or enrichment (event.go).
//
// Every source is one SourceSpec in a file of its own (source_<name>.go), listed once in the
// table of source.go: its name, endpoint, permission, data stream, retention, reader, decoder
// and probe. Nothing else switches on a source; adding one is its file, a line in the table,
// its client method and simulator endpoint, and its tests.
//
// It is a sibling of package crawler, not a mode of it: security logs are append-only and read
// oldest first with a simple cursor per source, whereas the archive is mirrored newest first
// with per-mailbox delta tokens and sweeps.
//
// Invariants:
//   - A source's cursor moves only after Elasticsearch acknowledged every alert before it; it is
//     never moved to "now" because a page was empty, and never saved before the alerts it
//     covers are written.
//   - Alert ids derive from the fields that make a record unique, so overlapping windows,
//     re-delivered records and repeated SIEM pages are written once.
//   - Alerts go to the data stream logs-mimecrawl.alerts-{namespace} (datastream.go), which
//     takes op_type create only and refuses a repeated id only within one backing index:
//     before a page is written its ids are looked up in the whole stream (and the index of
//     the release before data streams), so that no rollover lets an alert in twice. A
//     lookup that fails holds the page like an unacknowledged alert.
//   - A malformed record fails that record (counted by reason, warned once per reason and
//     pass), never the source; a 403 on one source disables that source for the run and the
//     others carry on.
//   - One paging rule for every reader (paging.go): follow a token until a page has none; a
//     token that comes back or too many pages, or fewer records than a page stated, end
//     the window without the cursor passing it.
//   - Filters fail open: a CEL evaluation error keeps the alert and is counted.
//   - Group documents are a merge of set unions (bounded to their smallest values), minimums
//     and maximums, written back only over the version they were read at: applying the same
//     alerts again, in any order or concurrently, gives the same document. A page's groups
//     are read with one request and written with one; only lost races are read again.
//   - Enrichment never holds an alert back: a failing directory, archive index or content
//     view leaves the alert without (warned once per pass; content view's 403 once per run).
//   - The filter language lives in the leaf package celfilter, so that package config can
//     compile filters at load time without importing this package.
//   - A page (or a page of SIEM files) is one unit of the cursor: its cursor is saved only
//     when every unit up to it is complete (every record handed to the writer, every alert
//     acknowledged or parked, every group written). An alert Elasticsearch refuses for good,
//     or a threat event without its details, is parked in the cursor and tried again every
//     pass; an unreadable SIEM file likewise, up to its third read. Any other failure holds
//     the unit, and the next pass resumes at it. The rules in full are written once, in
//     cursor.go.
//
// Goroutines: Poller.Once owns an errgroup with one goroutine per source; each reads its
// pages in order and hands documents to the Sink, whose callbacks (on the writer's
// goroutines) only count, park and signal. UpdateGroups runs on the source's goroutine.
// Every wait selects on the pass's context; after it ends, a source waits at most
// Options.AckGrace for acknowledgements already due. Run owns an errgroup with one
// goroutine per source, each polling its source, reporting (serialised) and sleeping
// PollInterval on a timer that also selects on the context: no source waits for another.
package alerts
