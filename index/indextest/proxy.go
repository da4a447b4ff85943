package indextest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a reverse proxy in front of a real cluster that injects faults on request. Point the
// code under test at Proxy.URL.
type Proxy struct {
	URL string

	t      testing.TB
	target *url.URL
	pass   *httputil.ReverseProxy
	client *http.Client

	mu    sync.Mutex
	rules map[string]*rule // by document id
	seen  map[string]int   // bulk items per document id, injected or forwarded
	down  bool
	cut   bool
	// searchesDown: so many _search requests still to answer 503, as a search does while the
	// primary shard of an index it reads is not started.
	searchesDown int
	// stall is open while the proxy holds requests; closing it releases them.
	stall chan struct{}

	stalled atomic.Int64

	requests     atomic.Int64
	bulkRequests atomic.Int64
}

type rule struct {
	tooMany int  // 429 answers still to give
	mapping bool // always answer a mapping error
	omit    bool // forward the item but leave its result out of the answer
}

// NewProxy starts a proxy to the cluster at target; it stops at the end of the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("proxy target %q: %v", target, err)
	}
	p := &Proxy{
		t:      t,
		target: u,
		pass:   httputil.NewSingleHostReverseProxy(u),
		client: &http.Client{},
		rules:  map[string]*rule{},
		seen:   map[string]int{},
	}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	// Runs before srv.Close, which waits for the handlers that still hold a request.
	t.Cleanup(func() { p.SetStall(false) })
	p.URL = srv.URL
	return p
}

// RejectTooMany makes the bulk item of document id fail with 429 (es_rejected_execution_exception)
// for its next n occurrences; later occurrences reach the cluster.
func (p *Proxy) RejectTooMany(id string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ruleFor(id).tooMany = n
}

// RejectMapping makes every bulk item of document id fail with 400 mapper_parsing_exception.
func (p *Proxy) RejectMapping(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ruleFor(id).mapping = true
}

func (p *Proxy) ruleFor(id string) *rule {
	r := p.rules[id]
	if r == nil {
		r = &rule{}
		p.rules[id] = r
	}
	return r
}

// OmitFromAnswer makes the proxy forward every bulk item of document id but leave its result
// out of the answer, as a broken intermediary might: the answer then lists fewer items than the
// request sent.
func (p *Proxy) OmitFromAnswer(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ruleFor(id).omit = true
}

// SetDown makes every request fail with 503 while down is true.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// FailSearches makes the next n _search requests answer 503 search_phase_execution_exception
// ("all shards failed"), as a cluster does while a new index's primary shard starts.
func (p *Proxy) FailSearches(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.searchesDown = n
}

// SetRefuse makes the proxy drop every connection without an answer while refuse is true, as
// a cluster that went away does.
func (p *Proxy) SetRefuse(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = refuse
}

// SetStall makes the proxy hold every request without answering while stall is true, as a
// node that accepts connections and stops answering does. Held requests reach the cluster once
// stall is set false again, unless their client gave up first.
func (p *Proxy) SetStall(stall bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case stall && p.stall == nil:
		p.stall = make(chan struct{})
	case !stall && p.stall != nil:
		close(p.stall)
		p.stall = nil
	}
}

// Stalled returns how many requests the proxy has held so far.
func (p *Proxy) Stalled() int64 { return p.stalled.Load() }

// Requests returns how many requests reached the proxy, including refused ones.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// BulkRequests returns how many _bulk requests reached the proxy.
func (p *Proxy) BulkRequests() int64 { return p.bulkRequests.Load() }

// Seen returns how many bulk items for document id reached the proxy.
func (p *Proxy) Seen(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[id]
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	down, cut, stall := p.down, p.cut, p.stall
	if strings.HasSuffix(r.URL.Path, "/_search") && p.searchesDown > 0 {
		p.searchesDown--
		down = true
	}
	p.mu.Unlock()
	if stall != nil {
		p.stalled.Add(1)
		select {
		case <-stall:
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case cut:
		hijackAndClose(p.t, w)
		return
	case down:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"type":"unavailable","reason":"injected by indextest proxy"},"status":503}`)
		return
	}
	if (r.Method == http.MethodPost || r.Method == http.MethodPut) && strings.HasSuffix(r.URL.Path, "/_bulk") {
		p.bulkRequests.Add(1)
		p.serveBulk(w, r)
		return
	}
	p.pass.ServeHTTP(w, r)
}

func hijackAndClose(t testing.TB, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Errorf("proxy: response writer cannot hijack")
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Errorf("proxy: hijack: %v", err)
		return
	}
	_ = conn.Close()
}

// bulkAction is one action of a bulk body: its metadata line and, except for delete, its
// source line.
type bulkAction struct {
	op, index, id string
	lines         [][]byte
}

// serveBulk forwards the bulk request without the items chosen for a fault, then splices a
// synthetic result for each of them into the real answer at the item's position.
func (p *Proxy) serveBulk(w http.ResponseWriter, r *http.Request) {
	actions, err := parseBulk(r.Body, defaultIndex(r.URL.Path))
	if err != nil {
		p.t.Errorf("proxy: read bulk body: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	injected := make([]json.RawMessage, len(actions)) // nil where the cluster answers
	var forward bytes.Buffer
	forwarded := 0
	for i, a := range actions {
		if item := p.decide(a); item != nil {
			injected[i] = item
			continue
		}
		for _, l := range a.lines {
			forward.Write(l)
			forward.WriteByte('\n')
		}
		forwarded++
	}

	answer := map[string]json.RawMessage{"took": json.RawMessage("0"), "errors": json.RawMessage("false")}
	var real []json.RawMessage
	header := http.Header{"X-Elastic-Product": {"Elasticsearch"}}
	if forwarded > 0 {
		res, err := p.forward(r, forward.Bytes())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if res.StatusCode != http.StatusOK {
			// The whole request failed: pass that on as it is.
			copyHeader(w.Header(), res.Header)
			w.WriteHeader(res.StatusCode)
			_, _ = w.Write(body)
			return
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			p.t.Errorf("proxy: decode bulk answer: %v", err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if err := json.Unmarshal(answer["items"], &real); err != nil || len(real) != forwarded {
			p.t.Errorf("proxy: bulk answer has %d items for %d forwarded (%v)", len(real), forwarded, err)
			http.Error(w, "bad bulk answer", http.StatusBadGateway)
			return
		}
		header = res.Header
	}

	items := make([]json.RawMessage, 0, len(actions))
	anyInjected := false
	for i, a := range actions {
		if injected[i] != nil {
			items = append(items, injected[i])
			anyInjected = true
			continue
		}
		item := real[0]
		real = real[1:]
		if !p.omitted(a.id) {
			items = append(items, item)
		}
	}
	answer["items"], _ = json.Marshal(items)
	if anyInjected {
		answer["errors"] = json.RawMessage("true")
	}
	out, err := json.Marshal(answer)
	if err != nil {
		p.t.Errorf("proxy: encode bulk answer: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	copyHeader(w.Header(), header)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// decide records the item and returns its synthetic result, or nil to let it through.
func (p *Proxy) decide(a bulkAction) json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[a.id]++
	r := p.rules[a.id]
	var status int
	var errType, reason string
	switch {
	case r == nil:
		return nil
	case r.mapping:
		status, errType = http.StatusBadRequest, "mapper_parsing_exception"
		reason = fmt.Sprintf("failed to parse field [received] of type [date] in document with id '%s' (injected by indextest proxy)", a.id)
	case r.tooMany > 0:
		r.tooMany--
		status, errType = http.StatusTooManyRequests, "es_rejected_execution_exception"
		reason = "rejected execution of coordinating operation (injected by indextest proxy)"
	default:
		return nil
	}
	item, _ := json.Marshal(map[string]any{a.op: map[string]any{
		"_index": a.index, "_id": a.id, "status": status,
		"error": map[string]string{"type": errType, "reason": reason},
	}})
	return item
}

func (p *Proxy) omitted(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rules[id]
	return r != nil && r.omit
}

func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	u := *p.target
	u.Path = strings.TrimRight(p.target.Path, "/") + r.URL.Path
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		// Leave compression to this client's transport, which then also undoes it.
		case "Accept-Encoding", "Content-Length", "Connection":
			continue
		}
		req.Header[k] = v
	}
	return p.client.Do(req)
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Content-Encoding", "Transfer-Encoding":
			continue
		}
		dst[k] = v
	}
}

// defaultIndex returns the index named in a /{index}/_bulk path, or "".
func defaultIndex(path string) string {
	return strings.Trim(strings.TrimSuffix(path, "_bulk"), "/")
}

func parseBulk(r io.Reader, index string) ([]bulkAction, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	var (
		out     []bulkAction
		current *bulkAction
	)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		line = bytes.Clone(line)
		if current != nil {
			current.lines = append(current.lines, line)
			out = append(out, *current)
			current = nil
			continue
		}
		var meta map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(line, &meta); err != nil || len(meta) != 1 {
			return nil, fmt.Errorf("bad action line %q", line)
		}
		a := bulkAction{index: index, lines: [][]byte{line}}
		for op, m := range meta {
			a.op, a.id = op, m.ID
			if m.Index != "" {
				a.index = m.Index
			}
		}
		if a.op == "delete" {
			out = append(out, a)
			continue
		}
		current = &a
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if current != nil {
		return nil, fmt.Errorf("action %s %s has no source line", current.op, current.id)
	}
	return out, nil
}
