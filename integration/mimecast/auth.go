package mimecast

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokens holds the one access token that all goroutines of a Client share, and fetches a new
// one with the client-credentials grant when it is due or when the API refused it.
//
// Callers take the token last, right before a request leaves (after every wait), and report
// a 401 with refused.
//
// Expiry is tracked here, not by oauth2: oauth2 computes Token.Expiry with the wall clock and
// treats a token as expired 10 s early (its expiryDelta), which would add to the configured
// offset. We take expires_in from the answer, measure it on our own clock from the moment
// the request was sent, and add exactly the configured offset.
type tokens struct {
	conf    clientcredentials.Config
	httpc   *http.Client
	now     func() time.Time
	offset  time.Duration
	timeout time.Duration
	op      string
	stats   *counters

	// lock serialises fetches. It is a channel, not a mutex, so that a goroutine waiting for
	// another one's fetch can give up when its own context ends.
	lock chan struct{}

	mu     sync.Mutex
	access string
	expiry time.Time // zero: the answer gave no lifetime; reuse until the API says 401
	// fetched is when the token's request was sent: a 401 to a token used long after it
	// was fetched is the token's age, not the credentials.
	fetched time.Time
	// honoured is the youngest age at which the API refused a token as stale (0: never):
	// tokens are replaced before they reach it.
	honoured time.Duration
	seen     []string // recent access tokens, for scrubbing logs
}

func newTokens(authURL, clientID, clientSecret string, offset, timeout time.Duration, httpc *http.Client, now func() time.Time, stats *counters) *tokens {
	return &tokens{
		conf: clientcredentials.Config{
			ClientID:     clientID,
			ClientSecret: clientSecret,
			TokenURL:     authURL,
			// Every surveyed Mimecast client sends the credentials as form fields; none uses
			// HTTP Basic. Naming the style also stops oauth2 from probing with Basic first.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		httpc:   httpc,
		now:     now,
		offset:  offset,
		timeout: timeout,
		op:      "POST " + safeURL(mustParse(authURL)),
		stats:   stats,
		lock:    make(chan struct{}, 1),
	}
}

// token returns the shared token and when it was fetched (on the Client's clock), fetching
// one if there is none or it is due.
func (t *tokens) token(ctx context.Context) (string, time.Time, error) {
	return t.get(ctx, false)
}

// refused records that the API answered 401 to tok, age after its fetch. If tok is still the
// cached token it is dropped, so that the next call of any goroutine fetches a new one
// instead of meeting the same 401. A refusal of a token older than freshToken also teaches the cache
// how long the API really honours tokens: a server may honour them for less than the
// expires_in it gave, and a token due by that lesson is replaced before it is refused.
func (t *tokens) refused(tok string, age time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A token refused young was revoked or superseded (another call already replaced it),
	// which says nothing about how long tokens live.
	if age > freshToken && (t.honoured == 0 || age < t.honoured) {
		t.honoured = age
	}
	if tok == t.access {
		t.access = ""
	}
}

// fetchNow fetches a token whatever the cache holds.
func (t *tokens) fetchNow(ctx context.Context) (string, error) {
	tok, _, err := t.get(ctx, true)
	return tok, err
}

// newest reports whether tok is the token the cache holds now: a 401 to an older one says
// nothing about the credentials.
func (t *tokens) newest(tok string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tok == t.access
}

func (t *tokens) get(ctx context.Context, force bool) (string, time.Time, error) {
	select {
	case t.lock <- struct{}{}:
	case <-ctx.Done():
		return "", time.Time{}, ctx.Err()
	}
	defer func() { <-t.lock }()

	t.mu.Lock()
	cur, exp, fetched := t.access, t.expiry, t.fetched
	if h := t.honoured; h > 0 {
		// Replace a token an eighth before the age at which one was refused.
		if due := fetched.Add(h - h/8); exp.IsZero() || due.Before(exp) {
			exp = due
		}
	}
	t.mu.Unlock()
	if !force && cur != "" && (exp.IsZero() || t.now().Before(exp)) {
		return cur, fetched, nil
	}
	return t.fetch(ctx)
}

// fetch asks the token endpoint for a new token. Callers hold t.lock.
func (t *tokens) fetch(ctx context.Context) (string, time.Time, error) {
	sent, realSent := t.now(), time.Now()
	fctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	// oauth2 takes its HTTP client from the context: ours, so the token request goes
	// through the same transport (trace, statistics) as the API calls.
	fctx = context.WithValue(fctx, oauth2.HTTPClient, t.httpc)
	// A fetch may happen inside an API call, whose endpoint name ctx carries: the token
	// request is counted as what it is.
	fctx = withEndpoint(fctx, EndpointToken)
	tok, err := t.conf.Token(fctx)
	if err != nil {
		return "", time.Time{}, t.fetchError(ctx, err)
	}
	var expiry time.Time
	if life := lifetime(tok, realSent); life > 0 {
		// An offset that eats the whole lifetime would fetch a token for every call; keep
		// such a short-lived token for half its life instead.
		if life+t.offset <= 0 {
			expiry = sent.Add(life / 2)
		} else {
			expiry = sent.Add(life + t.offset)
		}
	}
	t.mu.Lock()
	t.access, t.expiry, t.fetched = tok.AccessToken, expiry, sent
	t.seen = append(t.seen, tok.AccessToken)
	if len(t.seen) > 8 {
		t.seen = t.seen[len(t.seen)-8:]
	}
	t.mu.Unlock()
	t.stats.tokenRefreshes.Add(1)
	return tok.AccessToken, sent, nil
}

// lifetime is the token's expires_in. clientcredentials leaves Token.ExpiresIn empty but keeps
// the raw answer, so it is read from there; failing that, it is derived from oauth2's
// wall-clock Expiry and the real time the request was sent. 0 means unknown.
func lifetime(tok *oauth2.Token, realSent time.Time) time.Duration {
	if tok.ExpiresIn > 0 {
		return time.Duration(tok.ExpiresIn) * time.Second
	}
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case json.Number:
		secs, _ = v.Float64()
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	if secs > 0 && secs < 1e9 {
		return time.Duration(secs * float64(time.Second))
	}
	if !tok.Expiry.IsZero() {
		return tok.Expiry.Sub(realSent).Round(time.Second)
	}
	return 0
}

// fetchError classifies a failed token request. A refusal (4xx) or an unusable token is a
// permanent auth failure; an unreachable or overloaded endpoint (network, 408, 429, 5xx) is
// not an auth failure but a retryable one, like the same trouble on any other call.
// oauth2's own error text quotes the response body, so it is never passed on verbatim.
func (t *tokens) fetchError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		code, msg := failText(re.Body)
		if re.ErrorCode != "" {
			code, msg = re.ErrorCode, truncate(re.ErrorDescription, maxMessage)
		}
		e := &Error{Op: t.op, Status: status, Code: code, Message: t.scrub(msg), Retryable: retryableStatus(status), auth: !retryableStatus(status), token: true}
		e.hint, e.hasHint = waitHint(re.Response.Header, t.now())
		return e
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		cause := ue.Err
		msg := cause.Error()
		if errors.Is(cause, context.DeadlineExceeded) {
			msg = "no answer within " + t.timeout.String()
		}
		return &Error{Op: t.op, Message: t.scrub(msg), Retryable: true, token: true, cause: cause}
	}
	// A 200 whose body is not a usable token (bad JSON, no access_token).
	return &Error{Op: t.op, Status: http.StatusOK, Code: "malformed_token_response", Message: t.scrub(strings.TrimPrefix(err.Error(), "oauth2: ")), auth: true, token: true}
}

// secrets lists the strings no log line or error may contain.
func (t *tokens) secrets() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.seen)+1)
	out = append(out, t.conf.ClientSecret)
	return append(out, t.seen...)
}

// scrub replaces every known secret in s.
func (t *tokens) scrub(s string) string {
	for _, secret := range t.secrets() {
		// Very short values would mangle unrelated text; they are not used as secrets.
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

func mustParse(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		return &url.URL{}
	}
	return u
}
