// Package metrics owns mimecrawl's Prometheus metrics: one registry per process (never the
// global default one), passed to whatever serves or pushes it.
//
// The packages that do the work (integration/mimecast, index, crawler, alerts) know nothing of
// Prometheus. What they count they expose as snapshots (mimecast.Client.Stats,
// index.Writer.Stats); collectors here read those snapshots at gather time, through the small
// interfaces APIStats and WriterStats. Document outcomes are counted by DocCounter, a
// decorator of the bulk writer's Add. Values only known at the end of a run or of a pass
// (mailbox lag, the run's exit code, alert sources) are handed over as snapshots (SetRun,
// SetMailboxLag, SetAlertSources).
//
// Invariants:
//   - Every label set is bounded: endpoints are method and path templates, kinds and sources
//     are fixed lists, and only the WorstN most lagging mailboxes get a series of their own.
//   - mimecrawl_run_last_success_timestamp_seconds is exported only by a run that succeeded.
//     Pushes use the Pushgateway's POST (replace the pushed names, keep the others), so a
//     failed run leaves the last success of an earlier run in place.
//   - Health (/healthz, /readyz, /status) judges from the signs of life and pass outcomes the
//     sources report, concurrently, and a clock it is given; it does no I/O. Liveness depends
//     on the loops only, never on what Mimecast answered.
package metrics
