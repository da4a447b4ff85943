package mimecast

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// TraceLevel says how much of the HTTP traffic is logged.
type TraceLevel int

const (
	// TraceNone logs no HTTP traffic.
	TraceNone TraceLevel = iota
	// TraceCalls logs one line per HTTP attempt: method, URL, status, duration, attempt.
	TraceCalls
	// TraceAll also logs request form fields and JSON request and response bodies, with
	// secrets, tokens and pre-signed URL signatures redacted. File bytes are never logged.
	TraceAll
)

// ParseTraceLevel parses "none", "calls" or "all".
func ParseTraceLevel(s string) (TraceLevel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "":
		return TraceNone, nil
	case "calls":
		return TraceCalls, nil
	case "all":
		return TraceAll, nil
	}
	return TraceNone, fmt.Errorf("trace level %q: want none, calls or all", s)
}

func (l TraceLevel) String() string {
	switch l {
	case TraceNone:
		return "none"
	case TraceCalls:
		return "calls"
	case TraceAll:
		return "all"
	}
	return fmt.Sprintf("TraceLevel(%d)", int(l))
}

const (
	redacted = "<redacted>"
	// maxTraceBody bounds how much of one body goes into a trace line.
	maxTraceBody = 16 << 10
)

type attemptKey struct{}

// downloadKey marks a request to a pre-signed download URL, whose path and query are the
// credential and are therefore never logged.
type downloadKey struct{}

// withAttempt tells the transport which attempt of a call a request is, for the trace line.
func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// transport decorates the base RoundTripper with call statistics and tracing. It sits under
// both the API calls and the oauth2 token requests, so every HTTP exchange is counted and
// traced the same way. It never retries: retries belong to the Client, one layer only.
type transport struct {
	next  http.RoundTripper
	level TraceLevel
	log   zerolog.Logger
	stats *counters
	// scrub removes every known secret (client secret, access tokens) from a text that is
	// about to be logged: a second line of defence behind key-based redaction.
	scrub func(string) string
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	var reqBody []byte
	if t.level >= TraceAll && req.GetBody != nil {
		// GetBody hands out a fresh copy, so reading it leaves req.Body untouched.
		if rc, err := req.GetBody(); err == nil {
			reqBody, _ = io.ReadAll(io.LimitReader(rc, maxTraceBody+1))
			rc.Close()
		}
	}
	resp, err := t.next.RoundTrip(req)
	took := time.Since(start)
	if err != nil {
		t.stats.failed(endpointOf(req.Context()))
	} else {
		t.stats.answered(endpointOf(req.Context()), resp.StatusCode)
	}
	if t.level == TraceNone {
		return resp, err
	}

	shown := safeURL(req.URL)
	if req.Context().Value(downloadKey{}) != nil {
		shown = hostOnly(req.URL)
	}
	ev := t.log.Info().Str("method", req.Method).Str("url", shown).Dur("took", took)
	if n, ok := req.Context().Value(attemptKey{}).(int); ok {
		ev = ev.Int("attempt", n)
	}
	if err != nil {
		ev.Str("error", t.scrub(err.Error())).Msg("api call")
		return resp, err
	}
	ev = ev.Int("status", resp.StatusCode)
	if resp.ContentLength >= 0 {
		ev = ev.Int64("size", resp.ContentLength)
	}
	if t.level >= TraceAll {
		ev = t.traceRequestBody(ev, req, reqBody)
		if isJSON(resp.Header.Get("Content-Type")) {
			// Peek at the JSON answer and hand the caller an identical body. The peek is
			// bounded; the caller still sees every byte.
			head, rerr := io.ReadAll(io.LimitReader(resp.Body, maxTraceBody+1))
			var rest io.Reader = resp.Body
			if rerr != nil {
				rest = errReader{rerr}
			}
			resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), rest), resp.Body}
			ev = traceJSON(ev, "response", head, t.scrub)
		}
	}
	ev.Msg("api call")
	return resp, nil
}

func (t *transport) traceRequestBody(ev *zerolog.Event, req *http.Request, body []byte) *zerolog.Event {
	if len(body) == 0 {
		return ev
	}
	ct := req.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return ev.Int("request_size", len(body))
		}
		d := zerolog.Dict()
		for k, vs := range form {
			v := strings.Join(vs, ",")
			if sensitiveKey(k) {
				v = redacted
			}
			d = d.Str(k, t.scrub(v))
		}
		return ev.Dict("form", d)
	case isJSON(ct):
		return traceJSON(ev, "request", body, t.scrub)
	}
	return ev.Int("request_size", len(body))
}

// traceJSON adds a redacted copy of a JSON body. Bodies over the trace bound are cut and
// logged as text, after the same scrubbing.
func traceJSON(ev *zerolog.Event, key string, body []byte, scrub func(string) string) *zerolog.Event {
	if len(body) > maxTraceBody {
		return ev.Str(key, scrub(string(body[:maxTraceBody]))+"…(truncated)")
	}
	clean, ok := redactJSON(body)
	if !ok {
		return ev.Str(key, scrub(string(body)))
	}
	return ev.RawJSON(key, []byte(scrub(string(clean))))
}

// redactJSON replaces the values of secret-looking keys and the query of URLs (pre-signed
// download URLs carry their signature there) in a JSON document.
func redactJSON(body []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // keep "<redacted>" readable
	if err := enc.Encode(redactValue(v)); err != nil {
		return nil, false
	}
	return bytes.TrimRight(out.Bytes(), "\n"), true
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch lk := strings.ToLower(k); {
			case sensitiveKey(k):
				x[k] = redacted
			case lk == "url" || lk == "urls":
				// Pre-signed download URLs: the whole path may be the signature.
				x[k] = redactURLs(val)
			default:
				x[k] = redactValue(val)
			}
		}
	case []any:
		for i, val := range x {
			x[i] = redactValue(val)
		}
	case string:
		return redactString(x)
	}
	return v
}

func redactURLs(v any) any {
	switch x := v.(type) {
	case string:
		if u, err := url.Parse(x); err == nil && u.Host != "" {
			return hostOnly(u)
		}
		return redacted
	case []any:
		for i, val := range x {
			x[i] = redactURLs(val)
		}
		return x
	}
	return v
}

// redactString hides bearer tokens and URL queries inside a string value.
func redactString(s string) string {
	if strings.HasPrefix(strings.ToLower(s), "bearer ") {
		return redacted
	}
	if strings.Contains(s, "://") && strings.Contains(s, "?") {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return safeURL(u)
		}
	}
	return s
}

// sensitiveKey reports whether a JSON key or form field holds a credential. Paging cursors
// (pageToken, next, previous) are opaque positions, not credentials, and stay visible.
func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	switch k {
	case "token", "access_token", "accesstoken", "refresh_token", "id_token", "authorization", "bearer", "signature":
		return true
	}
	return strings.Contains(k, "secret") || strings.Contains(k, "password") ||
		(strings.HasSuffix(k, "_token") && k != "page_token")
}

// safeURL renders a URL for logs and errors: scheme, host and path; the query is replaced,
// because on download hosts it is the credential.
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" {
		s += "?" + redacted
	}
	return s
}

// hostOnly renders a download URL for logs and errors: only where it points.
func hostOnly(u *url.URL) string {
	return u.Scheme + "://" + u.Host + "/" + redacted
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/json"
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errReader replays a read error met while peeking, after the peeked bytes.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
