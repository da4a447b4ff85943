// Package state is the durable checkpoint store of the crawler, kept in one
// bbolt file.
//
// It records, per (mailbox, view), the delta token and the resume point of an
// interrupted pass, the documents that failed permanently, a counter of
// full-pass generations and a short history of what each run did; for other
// pollers (the alerts), opaque cursors by name in a bucket of their own, which
// nothing that lists mailboxes ever reads. It knows bbolt
// and nothing about the systems whose progress it records.
//
// Formats. Every format that mimecrawl keeps on disk for the crawl and the
// alerts poller is defined here, except the alerts cursors' contents:
//   - The file's layout: the buckets and the "schema" key of bucket "meta",
//     SchemaVersion (2). The counters in "meta" ("generation", "fullSince")
//     are plain text.
//   - Bucket "positions": one Position per (mailbox, view), JSON, "v" 1.
//   - Bucket "failures": one Failure per document, JSON, "v" 1.
//   - Bucket "runs", the run history, the newest KeptRuns records: in the
//     crawl's file a RunRecord per crawl (AddRun, Runs), in the alerts
//     poller's file a PassRecord per pass (AddPass, Passes); JSON, "v" 1. A
//     record without "v" was written by a release before records were
//     versioned, in version 1's encoding, and is read as version 1. Fields a
//     record does not define are ignored (the history is informational),
//     and its readers copy its fields from their own types: state imports
//     neither the crawler nor the alerts package.
//   - Bucket "cursors": strings by name (Cursors, SetCursors), opaque to
//     state: the alerts package owns their encoding and versions it in its
//     own field "v" (alerts/cursor.go, versions 1 and 2).
//   - Beside the file: the snapshot of a running crawl's Report
//     (WriteSnapshot, ReadSnapshot, at SnapshotPath), JSON, "v" 1; a snapshot
//     without "v" is read as version 1. The Report itself is what `status`
//     shows (its JSON is `status --json`).
//
// A value of a newer version than this package reads is refused rather than
// misread: a position or failure as damage of the file, a history record or
// a snapshot with an error that says to use a newer mimecrawl (for history
// records, wrapping ErrNewerSchema).
//
// Invariants:
//   - Every write is one bbolt Update transaction, synced to disk before it
//     returns (NoSync is never set), so a crash leaves either the old or the
//     new state, never a mix. Commit writes all the positions it is given in
//     one transaction.
//   - The file is created with mode 0600; an existing file that others may
//     read is tightened to 0600 once it has been checked.
//   - A new file is initialised under a temporary name and linked into place,
//     so a failed creation (a full disk) leaves no file, never an empty or
//     half-made one (a process killed while creating it can leave its
//     temporary ".NAME.new-*" beside it, which nothing reads and anyone may
//     delete). An empty file found on disk is not damage: a reader gets
//     ErrEmpty ("nothing yet"), a writer initialises it.
//   - Only one read-write Store may hold a file at a time. A second Open waits
//     at most Options.LockTimeout and then fails with an error that wraps
//     ErrLocked and names the path.
//   - A file that is not a readable state file of this program (garbage, a
//     damaged bbolt file, a value that does not decode) is reported with an
//     error that wraps ErrCorrupt, names the path, and leaves the file's bytes
//     untouched. Nothing is ever reset silently: re-crawling everything is the
//     operator's decision, made by moving the file away.
//   - Damage found after Open, by a read or a commit (a page bbolt cannot
//     read, a value that does not decode, a file cut short under the open
//     store), is reported the same way: ErrCorrupt with the path, never a
//     panic and never a plain I/O error. Store.Check looks for damage that
//     ordinary reads may not meet, page by page and record by record.
//   - A file written by a newer schema is refused (ErrNewerSchema) rather than
//     misread.
//   - Values are JSON objects carrying a version field "v" (cursors: their
//     owner's), so the file can be inspected with ordinary bbolt tools.
package state
