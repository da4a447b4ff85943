// Package crawler walks the Mimecast archive and keeps the Elasticsearch index in step with it.
// It is the only package that joins the Mimecast client, the index and the state store, each
// through a small interface declared here.
//
// Invariants:
//   - A delta token (state.Position.Token) or resume point (state.Pass.Low) moves only after
//     Elasticsearch has acknowledged every document of every message it covers.
//   - A message document is written only after all of its attachment documents were
//     acknowledged, so "the message document exists" implies "the message is complete"; this is
//     what lets an incremental run skip messages that are already indexed without a detail call.
//   - Document ids derive from (mailbox, view, Mimecast id[, attachment id]): a replay overwrites.
//   - Nothing is deleted from the index except by the sweep of a completed full pass of a
//     mailbox view.
package crawler
