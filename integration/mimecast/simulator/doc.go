// Package simulator is a Mimecast API 2.0 simulator: a real HTTP server that the client
// tests, crawler tests, the demo and the benchmarks talk to over a socket. It models the
// parts of the API mimecrawl uses (OAuth2 client credentials, the legacy /api envelope,
// internal domains and users, get-message-list, get-message-detail, get-file and
// get-message-part with pre-signed downloads) together with the gateway behaviour a robust
// client must survive: token expiry, 401/403/404/405, rate limiting with several header
// dialects, injected faults and 200-with-fail answers. It also serves the security alert
// sources (TTP attachment/URL/impersonation and DLP logs, the threat feed, SIEM batch files
// and stream; alerts*.go), off unless Options.Alerts asks for them. docs/simulator.md
// describes every behaviour and what remains uncertain about the real API.
//
// Invariants:
//   - Determinism: the same Options (seed and sizes) give the same domains, addresses, ids,
//     times, subjects and bytes; messages added later get ids from a sequence number, so
//     the same sequence of mutations gives the same ids again. Only bearer tokens and
//     request ids are random.
//   - Compactness: per message only (seq, mailbox, view, received, size) is stored; subject,
//     headers, bodies and attachment bytes are derived from (seed, seq) whenever needed.
//   - Consistency: sizes and SHA-256 digests in details and in Truth are computed from the
//     very bytes the download paths serve.
//   - Office files (documents.go) are real, minimal PDF, DOCX, XLSX, PPTX and ODT files,
//     written deterministically; each with searchable text holds a word of its own, which
//     Truth lists as the attachment's text_token, so a test can search for it.
//   - Listing order is newest first with ties broken by id (in shape-variant mode some pages
//     are served shuffled, the same way every time); pages continue after the last
//     record of that order, so adding or deleting messages between pages neither repeats
//     nor skips the records that remain.
//   - Page tokens and download URLs are sealed with a key derived from the seed: a token
//     replayed with another filter, by another client or after tampering is rejected.
//   - Shape variants (Options.ShapeVariants) change how records are spelt, never what they
//     say: Truth is the same with and without them. Malformed records (Options.BadRecords)
//     are the one exception that loses information, and MalformedIDs names them.
//   - Concurrency: all exported methods and the handler are safe for concurrent use.
package simulator
