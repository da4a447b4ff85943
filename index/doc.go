// Package index is the Elasticsearch side of mimecrawl: it connects to a cluster, installs the
// index templates and the attachment pipeline, writes documents through one shared bulk
// writer, and answers the few questions the crawler asks (which ids exist, how many match,
// delete what a completed pass no longer saw). It knows Elasticsearch and nothing about the
// systems the documents come from or where progress is recorded.
//
// Indices are described by specs in a registry (Register): the archive's messages and
// attachments are registered here, other document owners register theirs (name suffix,
// mapping, settings) and install them with Cluster.Ensure.
//
// Invariants:
//   - Every document given to Writer.Add or Writer.Delete gets exactly one callback, once
//     Elasticsearch has acknowledged it or it has failed; Close returns only after every
//     callback has run. When Close's context ends first, the documents not yet acknowledged fail
//     then (an answer arriving later is dropped), so a caller never waits on a hung request.
//   - Every request has a deadline (RequestTimeout, BulkTimeout for bulk requests) that covers
//     the answer's body; a node that stops answering yields a TimeoutError, which the client
//     does not retry. Add and Close wait only as long as their contexts live.
//   - Items answered 429 are re-queued a bounded number of times, with backoff; item errors
//     that a retry cannot fix (mapping and parsing errors, other 4xx) are reported Permanent with
//     Elasticsearch's reason. Whole-request failures are retried by the client (429, 502, 503,
//     504 with backoff) and then reported for every item, not Permanent.
//   - An OpCreate answered 409 means the document is already there: success with
//     Result.Existed, never a failure to retry.
//   - Setup is idempotent and additive: it never deletes an index or a field.
//   - DeleteWhere refuses an empty filter, so a bug cannot wipe an index.
//   - Passwords and API keys never appear in errors or logs, in any form: raw, as user:password,
//     base64-encoded, or after an echoed Authorization header. Addresses are printed without
//     their user information.
//   - TLS certificates are always verified. A CA fingerprint names the only trusted root; the
//     chain and host name checks still run. Refused certificates and refused credentials are
//     reported as such (IsUntrustedCertificate, IsAuthentication) and not retried.
package index
