package simulator

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Rate-limit header modes of Options.RateLimitHeaders. The reference disagrees about what the
// real API sends, so each variant a client may meet can be switched on.
const (
	// HeadersOn429 sends X-RateLimit-* on 429 answers only (what Elastic's notes describe).
	HeadersOn429 = "on429"
	// HeadersAlways also sends X-RateLimit-* on every other /api answer.
	HeadersAlways = "always"
	// HeadersNone sends no rate-limit headers at all, so clients must fall back to backoff.
	HeadersNone = "none"
	// HeadersRetryAfter sends Retry-After (whole seconds) on 429 instead of X-RateLimit-*.
	HeadersRetryAfter = "retry-after"
	// HeadersEpoch sends X-RateLimit-Reset as a Unix epoch-seconds timestamp on 429.
	HeadersEpoch = "epoch"
)

// Options configures a Server. Zero values mean the documented defaults.
type Options struct {
	Seed int64
	// Domains is the number of internal domains (default 2). One extra domain with local=true
	// is always added: "local.<first domain>".
	Domains int
	// Mailboxes is the number of mailboxes (default 4), spread round-robin over the non-local
	// domains; the local domain gets one mailbox of its own.
	Mailboxes int
	// Messages is the number of messages per mailbox (default 20; negative means none),
	// about 2/3 INBOX and 1/3 SENT.
	Messages int
	// Epoch and Span: seeded messages are received in (Epoch-Span, Epoch].
	// Defaults 2026-01-01T00:00:00Z and 365 days.
	Epoch time.Time
	Span  time.Duration
	// ClientID and ClientSecret are the credentials /oauth/token accepts
	// (defaults "demo-client" / "demo-secret").
	ClientID     string
	ClientSecret string
	// ExtraClients adds further client id -> secret pairs, e.g. to test that page tokens and
	// rate limits are per client.
	ExtraClients map[string]string
	// TokenTTL is the lifetime of access tokens, reported as expires_in (default 1799s).
	TokenTTL time.Duration
	// TokenHonoured is how long the API accepts a token, when that is shorter than the
	// expires_in it reported (0: TokenTTL). A gateway that revokes tokens early, or one whose
	// clock runs ahead, looks like this to a client: a token refused as expired long before
	// the client expected it to be.
	TokenHonoured time.Duration
	// TokenErrorStatus is the HTTP status for bad credentials at /oauth/token: 401 (default)
	// or 400 (the reference is unsure which one the real API uses).
	TokenErrorStatus int
	// RateLimit is the number of /api requests per minute per client id (token bucket,
	// refilled gradually, burst = RateLimit); 0 means unlimited.
	RateLimit int
	// RateLimitHeaders selects which headers 429 answers carry; see the Headers* constants.
	RateLimitHeaders string
	// PageCap is the largest pageSize honoured (default 500). Without pageSize a page holds
	// 25 records (inferred).
	PageCap int
	// EmptyLastPage makes paginated lists behave like the fixtures seen in public
	// integrations: the last page with records still carries "next", and the page it points
	// to has data [] together with yet another "next". By default "next" is omitted on the
	// last page, as documented.
	EmptyLastPage bool
	// ShapeVariants serves, deterministically per record and page (from Seed), the shapes
	// the public sources disagree about: addresses as an object, an array, a string or
	// null; detail to/cc as one object or a string; times with +0000, Z, +hh:mm and
	// fractional seconds; numbers and booleans as strings; optional fields absent or null;
	// unknown extra fields; userCount spelt "usercount"; expires_in as a string; message
	// pages not newest-first; and next on a final page that leads to an empty one. Every
	// variant carries the same information, so Truth is unchanged. See docs/simulator.md.
	ShapeVariants bool
	// BadRecords is the fraction (0..1) of messages that get-message-list serves malformed
	// (a string instead of an object, an id that is an object, no or an unreadable received
	// time), deterministically per message. MalformedIDs names them. Truth still lists them.
	// Independent of ShapeVariants; 0 (the default) serves none.
	BadRecords float64
	// DownloadTTL is the lifetime of pre-signed download URLs (default 60s).
	DownloadTTL time.Duration
	// StreamFiles makes get-file and get-message-part answer with the bytes (API 1.0
	// behaviour) instead of JSON with pre-signed URLs.
	StreamFiles bool
	// Now is the clock for token expiry, rate limiting, download expiry, default date windows
	// and the received time of added messages (default time.Now).
	Now func() time.Time
	// Logger receives one debug line per request; the zero value logs nothing.
	Logger zerolog.Logger
	// Alerts configures the security alert sources; the zero value leaves them off.
	Alerts AlertOptions
}

const (
	defaultDomains     = 2
	defaultMailboxes   = 4
	defaultMessages    = 20
	defaultSpan        = 365 * 24 * time.Hour
	defaultClientID    = "demo-client"
	defaultSecret      = "demo-secret"
	defaultTokenTTL    = 1799 * time.Second
	defaultPageCap     = 500
	defaultPageSize    = 25
	defaultDownloadTTL = 60 * time.Second
	// maxMessages bounds the archive so a typo cannot exhaust memory; ids carry 32-bit
	// sequence numbers.
	maxMessages = 50_000_000
)

var defaultEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// withDefaults returns a copy of o with zero values replaced by defaults, or an error naming
// the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.Domains == 0 {
		o.Domains = defaultDomains
	}
	if o.Mailboxes == 0 {
		o.Mailboxes = defaultMailboxes
	}
	if o.Messages == 0 {
		o.Messages = defaultMessages
	}
	if o.Messages < 0 {
		o.Messages = 0
	}
	if o.Epoch.IsZero() {
		o.Epoch = defaultEpoch
	}
	o.Epoch = o.Epoch.UTC().Truncate(time.Second)
	if o.Span == 0 {
		o.Span = defaultSpan
	}
	if o.ClientID == "" {
		o.ClientID = defaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = defaultSecret
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = defaultTokenTTL
	}
	if o.TokenHonoured == 0 || o.TokenHonoured > o.TokenTTL {
		o.TokenHonoured = o.TokenTTL
	}
	if o.TokenErrorStatus == 0 {
		o.TokenErrorStatus = 401
	}
	if o.RateLimitHeaders == "" {
		o.RateLimitHeaders = HeadersOn429
	}
	if o.PageCap == 0 {
		o.PageCap = defaultPageCap
	}
	if o.DownloadTTL == 0 {
		o.DownloadTTL = defaultDownloadTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.Domains < 0 || o.Domains > 1000:
		return o, fmt.Errorf("options: domains %d: want 1..1000", o.Domains)
	case o.Mailboxes < 0 || o.Mailboxes > 1_000_000:
		return o, fmt.Errorf("options: mailboxes %d: want 1..1000000", o.Mailboxes)
	case int64(o.Mailboxes+1)*int64(o.Messages) > maxMessages:
		return o, fmt.Errorf("options: %d mailboxes x %d messages: more than %d messages", o.Mailboxes+1, o.Messages, maxMessages)
	case o.Span < time.Second:
		return o, fmt.Errorf("options: span %s: want at least 1s", o.Span)
	case o.TokenTTL < time.Second:
		return o, fmt.Errorf("options: token ttl %s: want at least 1s", o.TokenTTL)
	case o.TokenHonoured < 0:
		return o, fmt.Errorf("options: token honoured %s: want >= 0", o.TokenHonoured)
	case o.TokenErrorStatus != 400 && o.TokenErrorStatus != 401:
		return o, fmt.Errorf("options: token error status %d: want 400 or 401", o.TokenErrorStatus)
	case o.RateLimit < 0:
		return o, fmt.Errorf("options: rate limit %d: want >= 0", o.RateLimit)
	case o.PageCap < 1:
		return o, fmt.Errorf("options: page cap %d: want >= 1", o.PageCap)
	case !(o.BadRecords >= 0 && o.BadRecords <= 1):
		return o, fmt.Errorf("options: bad records %v: want 0..1", o.BadRecords)
	case o.DownloadTTL < 0:
		return o, fmt.Errorf("options: download ttl %s: want >= 0", o.DownloadTTL)
	}
	switch o.RateLimitHeaders {
	case HeadersOn429, HeadersAlways, HeadersNone, HeadersRetryAfter, HeadersEpoch:
	default:
		return o, fmt.Errorf("options: rate limit headers %q: want one of on429, always, none, retry-after, epoch", o.RateLimitHeaders)
	}
	var err error
	if o.Alerts, err = o.Alerts.withDefaults(o.Now()); err != nil {
		return o, err
	}
	for id, secret := range o.ExtraClients {
		if id == "" || secret == "" {
			return o, fmt.Errorf("options: extra client %q: id and secret must be non-empty", id)
		}
	}
	return o, nil
}
