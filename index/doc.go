// Package index is the Elasticsearch side of mimecrawl: it connects to a cluster, installs the
// index templates and the attachment pipeline, writes documents through one shared bulk
// writer, and answers the few questions the crawler asks (which ids exist, how many match,
// delete what a completed pass no longer saw). It knows Elasticsearch and nothing about the
// systems the documents come from or where progress is recorded.
//
// Each kind of document is a Kind, a handle on its Spec (name suffix, mapping, settings) made
// by the package that owns the documents with NewKind and passed wherever they are written or
// read; the package keeps no list of kinds. The archive's messages and attachments are made
// here and managed by every Cluster (Setup); other document owners install theirs with
// Cluster.Ensure, which refuses a kind whose name or dataset another kind of the cluster has.
//
// There is one bulk path (bulk.go): every _bulk request is encoded by an esutil.BulkIndexer,
// sent through the same transport (413 splitting, the client's retries, redaction), parsed by
// one decoder and has each item's answer classified once (done, already there, already gone,
// conflict, busy, transient, permanent). The Writer keeps long-lived indexers that batch the
// documents of many goroutines and answer each by callback. PutDocs, DeleteWhere,
// StreamIDs.Remove and migrations need their answer before they go on, within their own
// context, for concrete indices, and leave a 429 to their caller, so each sends one request
// through the same path with an indexer of its own and gets one result per item, in order.
// Every _mget is read by one parser too.
//
// Documents follow the Elastic Common Schema (ECSVersion) where ECS has the field and keep the
// rest under mimecast.*; the names code queries are the Field* constants. Each kind lives in a
// versioned index ({prefix}-{name}-000001) behind the alias {prefix}-{name}, which is the name
// everything reads and writes through (setup.go, migrate.go), except the kinds that are data
// streams, named after Elastic's scheme logs-{dataset}-{namespace} (stream.go).
//
// Invariants:
//   - Setup never writes the operator's @custom component templates and never changes the
//     settings of an existing index or the parameters of a field it has; it only adds fields.
//   - A migration to a new schema version removes nothing before every document of the old
//     index is confirmed in the new one; the swap of the alias is one atomic _aliases request;
//     copies use op_type create, so a concurrent or repeated migration never overwrites a
//     document written since.
//   - Every document given to Writer.Add or Writer.Delete gets exactly one callback, once
//     Elasticsearch has acknowledged it or it has failed; Close returns only after every
//     callback has run. When Close's context ends first, the documents not yet acknowledged fail
//     then (an answer arriving later is dropped), so a caller never waits on a hung request.
//     A bulk answer that does not list one item per document sent fails every document of
//     its request (not Permanent): answers are matched to documents by position. The same
//     holds for every bulk request of the package: a deletion or a migration never counts
//     the items listed and goes on.
//   - Every request has a deadline (RequestTimeout, BulkTimeout for bulk requests) that covers
//     the answer's body; a node that stops answering yields a TimeoutError, which the client
//     does not retry. Add and Close wait only as long as their contexts live.
//   - Items answered 429 are re-queued a bounded number of times, with backoff; item errors
//     that a retry cannot fix (mapping and parsing errors, other 4xx) are reported Permanent with
//     Elasticsearch's reason. Whole-request failures are retried by the client (429, 502, 503,
//     504 with backoff) and then reported for every item, not Permanent.
//   - A bulk request refused as too large (413, from Elasticsearch or a proxy) is sent again
//     in halves down to single documents (split.go); a document refused on its own fails
//     Permanent with StatusTooLarge and a reason giving its size, and the others go through.
//   - An OpCreate answered 409 means the document is already there: success with
//     Result.Existed, never a failure to retry.
//   - Setup is idempotent and additive: it never deletes a field, and deletes an index only
//     when migrating from a concrete index of the release before aliases, whose name the
//     alias takes.
//   - Nothing that is not mimecrawl's is changed: every template, index and pipeline it
//     creates carries _meta.managed_by "mimecrawl" and the schema version (an alias is ours
//     when every index behind it is). Setup, Ensure, Plan, migrations and DeleteWhere check
//     every object of a name they manage before they write anything, and stop with a
//     ForeignError naming the object when one lacks the mark and is not recognised as an
//     earlier release's (own.go says how).
//   - Every document body is what json.Marshal makes of the document, byte for byte. The
//     archive's two document types encode themselves without reflection (encode.go); a test
//     that fills every field of them by reflection holds that encoder to json.Marshal.
//   - DeleteWhere refuses an empty filter, so a bug cannot wipe an index.
//   - Passwords and API keys never appear in errors or logs, in any form: raw, as user:password,
//     base64-encoded, or after an echoed Authorization header. Addresses are printed without
//     their user information.
//   - TLS certificates are always verified. A CA fingerprint names the only trusted root; the
//     chain and host name checks still run. Refused certificates and refused credentials are
//     reported as such (IsUntrustedCertificate, IsAuthentication) and not retried.
package index
