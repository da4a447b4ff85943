// Package state is the durable checkpoint store of the crawler, kept in one
// bbolt file.
//
// It records, per (mailbox, view), the delta token and the resume point of an
// interrupted pass, the documents that failed permanently, a counter of
// full-pass generations and a short history of run summaries; for other
// pollers (the alerts), opaque cursors by name in a bucket of their own, which
// nothing that lists mailboxes ever reads. It knows bbolt
// and nothing about the systems whose progress it records.
//
// It also owns the formats read beside the file: the report of what the file
// holds (Report, as `status` shows it) and the snapshot of that report a
// running crawl writes next to the file it holds locked (WriteSnapshot,
// ReadSnapshot), versioned in its field "v" like the records.
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
//   - Values are JSON objects carrying a version field "v", so the file can be
//     inspected with ordinary bbolt tools.
package state
