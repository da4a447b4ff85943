package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

const (
	tokenPath      = "/oauth/token"
	apiPrefix      = "/api/"
	downloadPrefix = "/_download/"
	controlPrefix  = "/_sim/"

	maxBodyBytes = 1 << 20
)

// Server is a Mimecast API 2.0 simulator. Create it with New and serve Handler() over a
// real socket. All methods are safe for concurrent use.
type Server struct {
	opts    Options
	keys    keyring
	log     zerolog.Logger
	clients map[string]string // client id -> secret

	arch   *archive
	tokens *tokenStore
	limit  *limiter
	faults *faultSet
	stats  *statsRecorder
	alerts *alertStore

	forbiddenMu sync.RWMutex
	forbidden   map[string]bool

	requests  atomic.Uint64
	endpoints map[string]endpoint
	rest      map[string]restRoute // REST alert endpoints by path (sources.go)
	control   http.Handler
}

// endpoint serves one legacy /api path.
type endpoint func(c *call) reply

// call is one authenticated, parsed /api request.
type call struct {
	r         *http.Request
	client    string
	data      []json.RawMessage
	pageSize  int
	pageToken string
}

// reply is what an endpoint answers: a legacy envelope, or raw bytes when streaming.
type reply struct {
	status     int // HTTP status; 0 = 200
	metaStatus int // meta.status; 0 = status
	data       []any
	fail       []api.Fail
	pagination *api.Pagination
	raw        *rawFile
	header     http.Header // extra response headers (the threat-intel feed's next token)
}

type rawFile struct {
	contentType string
	filename    string
	body        []byte
}

// New builds a simulator with its seeded archive.
func New(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new simulator: %w", err)
	}
	keys := newKeyring(o.Seed)
	s := &Server{
		opts:      o,
		keys:      keys,
		log:       o.Logger,
		clients:   map[string]string{o.ClientID: o.ClientSecret},
		arch:      newArchive(o, keys),
		tokens:    newTokenStore(),
		limit:     newLimiter(o.RateLimit),
		faults:    newFaultSet(o.Seed),
		stats:     newStatsRecorder(),
		forbidden: map[string]bool{},
		alerts:    newAlertStore(),
	}
	for id, secret := range o.ExtraClients {
		s.clients[id] = secret
	}
	s.endpoints = map[string]endpoint{
		"/api/domain/get-internal-domain": s.getInternalDomain,
		"/api/user/get-internal-users":    s.getInternalUsers,
		"/api/archive/get-message-list":   s.getMessageList,
		"/api/archive/get-message-detail": s.getMessageDetail,
		"/api/archive/get-file":           s.getFile,
		"/api/archive/get-message-part":   s.getMessagePart,
	}
	s.addSourceEndpoints()
	if err := s.seedSources(); err != nil {
		return nil, fmt.Errorf("new simulator: %w", err)
	}
	s.control = s.controlHandler()
	return s, nil
}

// Handler serves everything: /oauth/token, /api/..., download paths and the /_sim/ control API.
func (s *Server) Handler() http.Handler { return s }

// Truth returns the ground truth (same as GET /_sim/truth).
func (s *Server) Truth() Truth { return s.TruthOf(TruthQuery{}) }

// TruthOf returns a narrowed ground truth (GET /_sim/truth?mailbox=...&attachments=false).
// The alert records are always listed in full.
func (s *Server) TruthOf(q TruthQuery) Truth {
	t := s.arch.truth(q)
	t.Alerts = s.truth("")
	return t
}

// AddMessages adds n messages received now (per Options.Now) to a mailbox, alternating
// INBOX and SENT, and returns their ids.
func (s *Server) AddMessages(mailbox string, n int) ([]string, error) {
	return s.arch.addMessages(mailbox, n, s.opts.Now().UTC().Truncate(time.Second))
}

// DeleteMessage removes a message from the archive; its id then answers like a foreign id.
func (s *Server) DeleteMessage(id string) error { return s.arch.deleteMessage(id) }

// AddMailbox adds an empty mailbox in an existing domain.
func (s *Server) AddMailbox(address string) error { return s.arch.addMailbox(address) }

// DeleteMailbox removes a mailbox, its alias rows and its messages.
func (s *Server) DeleteMailbox(address string) error { return s.arch.deleteMailbox(address) }

// SetFaults replaces the injected faults (nil clears them). Go callers are trusted: the
// entries are not validated here, unlike PUT /_sim/faults.
func (s *Server) SetFaults(f []Fault) { s.faults.set(f) }

// SetForbidden makes the given /api paths answer 403 app_forbidden (nil clears the set).
func (s *Server) SetForbidden(paths []string) {
	s.forbiddenMu.Lock()
	defer s.forbiddenMu.Unlock()
	s.forbidden = map[string]bool{}
	for _, p := range paths {
		s.forbidden[p] = true
	}
}

// ExpireTokens makes every token issued so far answer 401 token_expired.
func (s *Server) ExpireTokens() { s.tokens.expireAll() }

// Stats returns a snapshot of the request counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ResetStats zeroes the request counters.
func (s *Server) ResetStats() { s.stats.reset() }

// statusWriter remembers the status an answer was sent with.
// statusWriter records a request in the statistics when its status is written, before any byte
// reaches the client: a test that reads the statistics right after its call returns must see it.
type statusWriter struct {
	http.ResponseWriter
	status int
	record func(status int)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.record(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// requestID renders a UUID-shaped request id.
func (s *Server) requestID() string {
	n := s.requests.Add(1)
	a, b := mix64(uint64(s.opts.Seed)^n), mix64(n^0xBEEF)
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xFFFF, a&0xFFFF, b>>48, b&0xFFFFFFFFFFFF)
}

// ServeHTTP routes a request; the same as Handler().ServeHTTP.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := s.requestID()
	rw.Header().Set("x-request-id", rid)
	path := r.URL.Path
	if strings.HasPrefix(path, controlPrefix) {
		s.control.ServeHTTP(rw, r)
		return
	}
	bearerOnDownload := strings.HasPrefix(path, downloadPrefix) && r.Header.Get("Authorization") != ""
	w := &statusWriter{ResponseWriter: rw, record: func(status int) { s.stats.record(path, status, bearerOnDownload) }}
	switch {
	case path == tokenPath:
		s.serveToken(w, r)
	case strings.HasPrefix(path, apiPrefix):
		s.serveAPI(w, r)
	case strings.HasPrefix(path, downloadPrefix):
		s.serveDownload(w, r)
	case s.isRESTAlertPath(path):
		s.serveREST(w, r)
	default:
		writeFlatFail(w, http.StatusNotFound, "not_found", "The requested resource does not exist")
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	s.log.Debug().Str("request_id", rid).Str("method", r.Method).Str("path", statsPath(path)).
		Int("status", w.status).Dur("took", time.Since(start)).Msg("request")
}

// serveToken implements POST /oauth/token (client credentials, form fields).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeFlatFail(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use POST")
		return
	}
	if s.applyFaults(w, r, nil) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeFlatFail(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeFlatFail(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	want, ok := s.clients[id]
	if !ok || id == "" || secret != want {
		writeFlatFail(w, s.opts.TokenErrorStatus, "InvalidClientIdentifier", "Client credentials are invalid")
		return
	}
	now := s.opts.Now()
	tok := s.tokens.issue(id, now, now.Add(s.opts.TokenHonoured))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.tokenBody(tok))
}

// gate runs the checks every API request meets first, in the order a gateway applies them: the
// method, the bearer token, the account's quota. ok is false when it has answered the request.
func (s *Server) gate(w http.ResponseWriter, r *http.Request, method string) (client string, now time.Time, st limitState, ok bool) {
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeFlatFail(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method "+r.Method+" is not allowed; use "+method)
		return "", time.Time{}, st, false
	}
	if client, ok = s.authenticate(w, r); !ok {
		return "", time.Time{}, st, false
	}
	now = s.opts.Now()
	if st = s.limit.take(client, now); !st.allowed {
		s.setRateHeaders(w.Header(), st.remaining, st.reset, true)
		writeFlatFail(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Too many requests; the request was not executed")
		return "", time.Time{}, st, false
	}
	return client, now, st, true
}

// serveAPI runs the gateway checks in the order a request meets them, then the endpoint.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	client, _, st, ok := s.gate(w, r, http.MethodPost)
	if !ok {
		return
	}
	if s.opts.RateLimit > 0 {
		s.setRateHeaders(w.Header(), st.remaining, st.reset, false)
	}
	s.forbiddenMu.RLock()
	forbidden := s.forbidden[r.URL.Path]
	s.forbiddenMu.RUnlock()
	if forbidden {
		writeFlatFail(w, http.StatusForbidden, "app_forbidden", "Resource or method requested does not exist in any product assigned to the application")
		return
	}
	ep, ok := s.endpoints[r.URL.Path]
	if !ok {
		writeFlatFail(w, http.StatusNotFound, "not_found", "The requested resource does not exist")
		return
	}
	c, err := s.parseCall(w, r, client)
	if err != nil {
		writeReply(w, reply{status: http.StatusBadRequest, fail: []api.Fail{{Code: "err_request_malformed", Message: err.Error()}}})
		return
	}
	var first json.RawMessage
	if len(c.data) > 0 {
		first = c.data[0]
	}
	if s.applyFaults(w, r, first) {
		return
	}
	writeReply(w, ep(c))
}

// authenticate checks the bearer token and answers 401 itself when it is not valid.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if h == "" || !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		writeFlatFail(w, http.StatusUnauthorized, "unauthorized", "Unauthorized Request: a bearer token is required")
		return "", false
	}
	client, state := s.tokens.check(strings.TrimSpace(tok), s.opts.Now())
	switch state {
	case tokenExpired:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeFlatFail(w, http.StatusUnauthorized, "token_expired", "The access token has expired")
		return "", false
	case tokenUnknown:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeFlatFail(w, http.StatusUnauthorized, "token_verification_failed", "The access token could not be verified")
		return "", false
	}
	return client, true
}

// setRateHeaders writes the rate-limit headers the configured mode asks for.
func (s *Server) setRateHeaders(h http.Header, remaining int, reset time.Duration, limited bool) {
	limit := strconv.Itoa(max(s.opts.RateLimit, 1))
	ms := strconv.FormatInt(int64(math.Ceil(float64(reset)/float64(time.Millisecond))), 10)
	switch s.opts.RateLimitHeaders {
	case HeadersNone:
	case HeadersRetryAfter:
		if limited {
			h.Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(reset.Seconds()))), 10))
		}
	case HeadersEpoch:
		if limited {
			h.Set("X-RateLimit-Limit", limit)
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(s.opts.Now().Add(reset).UnixMilli())/1000)), 10))
		}
	case HeadersAlways, HeadersOn429:
		if limited || s.opts.RateLimitHeaders == HeadersAlways {
			h.Set("X-RateLimit-Limit", limit)
			h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
			if limited {
				h.Set("X-RateLimit-Remaining", "0")
			}
			h.Set("X-RateLimit-Reset", ms)
		}
	}
}

// parseCall decodes the legacy request envelope.
func (s *Server) parseCall(w http.ResponseWriter, r *http.Request, client string) (*call, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	c := &call{r: r, client: client}
	if len(bytes.TrimSpace(body)) == 0 {
		return c, nil
	}
	var req struct {
		Meta *struct {
			Pagination *struct {
				PageSize  json.RawMessage `json:"pageSize"`
				PageToken string          `json:"pageToken"`
			} `json:"pagination"`
		} `json:"meta"`
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("request body is not a valid envelope: %v", err)
	}
	c.data = req.Data
	if req.Meta != nil && req.Meta.Pagination != nil {
		p := req.Meta.Pagination
		c.pageToken = p.PageToken
		if len(p.PageSize) > 0 && string(p.PageSize) != "null" {
			// Accept a number or a numeric string; anything else is malformed.
			n, err := strconv.Atoi(strings.Trim(string(p.PageSize), `"`))
			if err != nil {
				return nil, fmt.Errorf("meta.pagination.pageSize %s is not a number", p.PageSize)
			}
			c.pageSize = n
		}
	}
	return c, nil
}

// effectivePageSize applies the default and the cap.
func (s *Server) effectivePageSize(n int) int {
	if n <= 0 {
		return defaultPageSize
	}
	return min(n, s.opts.PageCap)
}

// applyFaults runs matching faults; true if a fault answered the request.
func (s *Server) applyFaults(w http.ResponseWriter, r *http.Request, item json.RawMessage) bool {
	latency, f := s.faults.match(r.URL.Path)
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	if f == nil {
		return false
	}
	switch {
	case f.Empty:
		writeReply(w, reply{data: []any{}})
	case f.FailItems:
		if len(item) == 0 {
			item = json.RawMessage(`{}`)
		}
		writeReply(w, reply{fail: []api.Fail{itemFail(item, "err_validation_null", "A required value is null (injected)")}})
	case f.Status == http.StatusTooManyRequests:
		reset := 50 * time.Millisecond
		if f.ResetMS > 0 {
			reset = time.Duration(f.ResetMS) * time.Millisecond
		}
		s.setRateHeaders(w.Header(), 0, reset, true)
		writeFlatFail(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Too many requests; the request was not executed")
	case f.EmptyBody:
		w.WriteHeader(f.Status)
	default:
		code := "internal-error"
		if f.Status < 500 {
			code = "err_" + strings.ToLower(strings.ReplaceAll(http.StatusText(f.Status), " ", "_"))
		}
		writeFlatFail(w, f.Status, code, "An unexpected error occurred (injected)")
	}
	return true
}

// itemFail is a per-item failure {key, errors[]}.
func itemFail(key json.RawMessage, code, msg string) api.Fail {
	return api.Fail{Key: key, Errors: []api.FailError{{Code: code, Message: msg, Retryable: false}}}
}

// writeFlatFail writes the gateway-level error body {"fail":[{"code","message"}]}.
func writeFlatFail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, struct {
		Fail []api.Fail `json:"fail"`
	}{[]api.Fail{{Code: code, Message: msg}}})
}

type envelope struct {
	Meta api.ResponseMeta `json:"meta"`
	Data []any            `json:"data"`
	Fail []api.Fail       `json:"fail"`
}

func writeReply(w http.ResponseWriter, rp reply) {
	for k, v := range rp.header {
		w.Header()[k] = v
	}
	if rp.raw != nil {
		h := w.Header()
		h.Set("Content-Type", rp.raw.contentType)
		h.Set("Content-Length", strconv.Itoa(len(rp.raw.body)))
		if rp.raw.filename != "" {
			h.Set("Content-Disposition", contentDisposition(rp.raw.filename))
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(rp.raw.body)
		return
	}
	status := rp.status
	if status == 0 {
		status = http.StatusOK
	}
	meta := rp.metaStatus
	if meta == 0 {
		meta = status
	}
	env := envelope{Meta: api.ResponseMeta{Status: meta, Pagination: rp.pagination}, Data: rp.data, Fail: rp.fail}
	if env.Data == nil {
		env.Data = []any{}
	}
	if env.Fail == nil {
		env.Fail = []api.Fail{}
	}
	writeJSON(w, status, env)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"fail":[{"code":"internal-error","message":"could not encode the response"}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
