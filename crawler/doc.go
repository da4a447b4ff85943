// Package crawler walks the Mimecast archive and keeps the Elasticsearch index in step with it.
// It is the only package that joins the Mimecast client, the index and the state store, each
// through a small interface declared here.
//
// Invariants:
//   - A delta token (state.Position.Token) or resume point (state.Pass.Low) moves only after
//     Elasticsearch has acknowledged every document of every message it covers.
//   - A message document is written only after all of its attachment documents were
//     acknowledged, so "the message document exists" implies "the message is complete"; this is
//     what lets an incremental run skip messages that are already indexed without fetching them.
//     The skip check reads with _mget, which is realtime: it sees every acknowledged write
//     without a refresh.
//   - Document ids derive from source data, so a replay overwrites: a message's from (mailbox,
//     view, Mimecast id); an attachment's from (mailbox, view, Mimecast id of the message, its
//     position among the attachment-like parts of the RFC 822 message, its SHA-256), the same
//     with and without the message detail (AttachmentDocID). Only an attachment the detail
//     lists but the RFC 822 message lacks is named by its Mimecast attachment id
//     (DetailAttachmentDocID, the rule of earlier versions for every attachment); documents under
//     earlier ids are swept by the next full pass like any document it did not write.
//   - A message costs one quota-counted call (get-file) unless Options.MessageDetail adds the
//     detail; attachments are taken from the RFC 822 message, never downloaded again, except
//     one only the detail lists.
//   - Nothing is deleted from the index except by the sweep of a completed full pass of a
//     mailbox view, and by the removal of a mailbox enumeration no longer keeps. Both search for
//     what they delete, and searches see only refreshed documents: both refresh first, and a
//     removal drops a mailbox's state only once a count (after another refresh) finds none of
//     its documents.
//   - The window a pass lists is decided in one place, PlanPass; `plan` uses it too. A stored
//     position in the future (beyond now + MaxClockSkew) is damaged and replaced by a safe one.
//   - A view ends with a typed Outcome and an error; the run ends early, with ErrIndexUnreachable
//     or ErrForbidden, when a failure applies to every view.
//
// Goroutines. New starts none. Run starts all of them and returns after every one has ended:
//
//	Run (caller's goroutine)
//	├─ services WaitGroup, waited for last:
//	│   ├─ committer.run    writes checkpoints in batches; ends when Run closes its queue,
//	│   │                   after the views are done
//	│   ├─ handoff.run      adds message documents whose attachments are acknowledged; ends
//	│   │                   when the grace context ends
//	│   ├─ flusher.run      flushes the sink back to back while a view waits for
//	│   │                   acknowledgements or room in its window; ends with the grace context
//	│   └─ grace timer      ends the grace context ShutdownGrace after the work context ended,
//	│                       or at once when every view has returned
//	├─ fetchers WaitGroup, ListingSlots × MessageWorkers goroutines: each takes listed messages of
//	│   any view from the fetch queue and fetches, builds and sends their documents; they end
//	│   when Run closes the queue after the views returned
//	└─ views WaitGroup, one goroutine per mailbox view (at most ListingSlots listing, plus
//	    maxFinishing awaiting acknowledgements); each runs crawlView's phases in order:
//	    ├─ phase 1 in a listing slot: plan, list, and hand each listed message that needs a
//	    │  fetch to the fetch queue (waiting for room in the view's window of messages in
//	    │  flight); the slot is released when the listing ends
//	    ├─ phase 2 without a slot: tracker.wait(grace) for acknowledgements
//	    └─ phases 3, 4: outcome, sweep, commit through the committer
//
// The bulk indexer's own goroutines belong to the sink (index.Writer), which the caller closes
// after Run. Acknowledgement callbacks run there and never block: they update counters and the
// tracker, and queue message documents for the hand-off.
//
// Contexts. The work context (the caller's, cancelled also by a circuit breaker) governs
// listing and fetching. The grace context governs sending documents and waiting for their
// acknowledgements: it outlives the work context by at most ShutdownGrace, so a stopping run
// still commits what Elasticsearch acknowledged, and never waits longer than that. Every wait
// selects on one of the two (semaphore.Acquire(ctx), channel receives with ctx.Done()); commits
// to the local state file are not cancelled. Run makes both and passes them down as parameters
// (a view's phases, the fetch workers, the hand-off, the sink's Add); no struct keeps one. The
// goroutines report through the views' results, never an error, so they are WaitGroups.
//
// Shards. Rules.Shard splits the mailboxes among cooperating runs, each with its own API
// application and state file, writing one index (see Shard). Invariants: every mailbox belongs to
// exactly one shard, decided by its address alone, so the shards together crawl exactly what one
// unsharded run would; a shard keeps only the mailboxes it owns, and PlanRemoval considers only
// those, so no shard removes another's mailboxes, whatever its state file remembers.
package crawler
