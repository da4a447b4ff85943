// Package mimecast is the client of the Mimecast API 2.0: OAuth2 client-credentials tokens,
// the legacy POST /api/... envelopes, the REST GET endpoints (threats, SIEM), pagination,
// file downloads, retries and rate limiting.
// It knows HTTP and Mimecast and nothing about where the data goes. Wire types live in the
// api subpackage.
//
// Invariants:
//   - One token per Client, shared by all goroutines; it is reused until its expiry plus the
//     configured offset (or an eighth before the age at which the API refused an old one), and
//     taken right before a request leaves, after every wait. A 401 drops it and the call is
//     repeated with a new one; only two refusals of tokens fetched within 5 s of their use
//     are a credential failure.
//   - One pacer per quota group (the account's legacy endpoints, threats, SIEM batch, SIEM
//     stream). A sporadic 429 makes only its call wait, for the server's hint (scaled and
//     clamped); a dense run of them (20 of the last 100 answers) is the quota binding, and
//     then every goroutine calling that group waits and calls are spaced by an interval that
//     follows the quota's refill rate; other groups carry on. The SIEM groups also keep
//     client-side budgets.
//   - Archive requests in flight (calls of the account's quota group and downloads) are bounded
//     by one limiter per Client (Config.Concurrency): fixed, or adaptive (AIMD: one more per
//     window of answers, a quarter fewer on a quota's 429 or rising latency). A request holds its slot
//     from before the pacer's wait until its answer is read; a streamed body holds it until it
//     is read to its end or closed. A slot is released exactly once.
//   - Alert sources are read one page per call and records are returned as served, so the
//     caller keeps every page token and decides what a record means.
//   - Errors are classified once, next to the HTTP call, into *Error with Retryable set;
//     retrying is the only retry layer for API calls, POST and GET alike. Context cancellation is returned wrapped,
//     never retried and never logged as an error.
//   - Request bodies are byte slices, so every attempt sends the same bytes.
//   - The bearer token goes to the API host only; pre-signed download URLs are fetched
//     without it and their path and query (the signature) are never logged nor put in errors.
//   - Answers are decoded tolerantly (package api): any documented or plausible shape of a
//     field is accepted, unknown fields are ignored, and only what the crawler needs (ids,
//     received times, attachment ids) is required. A record that lacks it fails alone: a
//     get-message-list record comes back with Problem set (and ID == "" or an unparsable
//     Received), never as an error for the page. The first unexpected shape per endpoint
//     and field is logged once per Client at warn, with the field path and JSON kind only.
//   - No log line or error text contains the client secret or an access token, at any trace
//     level; downloaded bytes are never logged, only their size.
//   - Every HTTP exchange is counted once, in the transport (Stats): by status and by
//     endpoint, where the endpoint is the call's method and path template, "token" or
//     "download", so the set of names stays small whatever ids the paths carry. Calls of API
//     endpoints (what a quota counts) are told apart from token requests and downloads, and
//     counted by quota group with the time they waited for it. The package knows nothing of
//     Prometheus: package metrics reads Stats.
package mimecast
