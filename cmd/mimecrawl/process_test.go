package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// Helpers of the tests that run mimecrawl as a process of its own, so that it can be killed:
// a simulator in the test process, the real Elasticsearch (or a fault proxy in front of it),
// a config file, and readers of the state file and the index that check what a run left.

// procPageSize is performance.page_size of the process tests: small pages make many resume
// points.
const procPageSize = 5

// processTimeout bounds one mimecrawl run; far above what a run needs, it only stops a hang.
const processTimeout = 3 * time.Minute

var procSeq atomic.Int64

type procWorld struct {
	t      *testing.T
	bin    string
	sim    *simulator.Server
	esURL  string // the real cluster, for the test's own queries
	prefix string
	dir    string
	config string
	state  string
	runs   int
}

type procOptions struct {
	sim    simulator.Options
	esAddr string // where mimecrawl sends index traffic; "" means the cluster itself
}

func newProcWorld(t *testing.T, o procOptions) *procWorld {
	t.Helper()
	esURL := indextest.URL(t)
	bin := mimecrawlBinary(t)
	sim, err := simulator.New(o.sim)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	if o.esAddr == "" {
		o.esAddr = esURL
	}
	dir := t.TempDir()
	w := &procWorld{t: t, bin: bin, sim: sim, esURL: esURL, dir: dir,
		prefix: fmt.Sprintf("mcproc-%d-%d", os.Getpid(), procSeq.Add(1)),
		config: filepath.Join(dir, "config.yaml"), state: filepath.Join(dir, "state.db")}
	// Small pages, a short flush interval and frequent checkpoints make a run commit many
	// resume points, so that kills land between them. The pace is pinned to 3 × 4 requests
	// in flight, fixed: the kill schedules (50 ms to 1.5 s) are tuned to it, and the random
	// 429s of killFaults, which come whatever the load, would make adaptive concurrency back
	// off and move most kills before any progress.
	cfg := fmt.Sprintf(`mimecast:
  base_url: %s
  client_id: demo-client
  client_secret: demo-secret
messages:
  start_date: "2020-01-01"
attachments:
  extract: true
parallelism:
  mailboxes: 3
  messages: 4
performance:
  concurrency: fixed
  page_size: %d
  checkpoint_interval: 20ms
  max_retries: 20
elasticsearch:
  addresses: [%q]
  index_prefix: %s
  bulk:
    flush_interval: 50ms
state:
  path: %s
  lock_timeout: 10s
logging:
  level: debug
`, srv.URL, procPageSize, o.esAddr, w.prefix, w.state)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { indextest.Remove(t, esURL, w.prefix) })
	return w
}

// proc is one mimecrawl process; its stdout and stderr go to files in the test's directory.
type proc struct {
	name     string
	cmd      *exec.Cmd
	out, log string
	done     chan struct{}
	waitErr  error
}

// start runs `mimecrawl <args> --config ...` in the background.
func (w *procWorld) start(args ...string) *proc {
	w.t.Helper()
	w.runs++
	p := &proc{name: fmt.Sprintf("run %d (%s)", w.runs, strings.Join(args, " ")),
		out: filepath.Join(w.dir, fmt.Sprintf("run-%02d.out", w.runs)),
		log: filepath.Join(w.dir, fmt.Sprintf("run-%02d.log", w.runs)), done: make(chan struct{})}
	stdout, err := os.Create(p.out)
	if err != nil {
		w.t.Fatal(err)
	}
	stderr, err := os.Create(p.log)
	if err != nil {
		w.t.Fatal(err)
	}
	p.cmd = exec.Command(w.bin, append(args, "--config", w.config, "--log-format", "json")...)
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	p.cmd.Env = childEnv()
	if err := p.cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		w.t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.done)
	}()
	return p
}

// childEnv is the test's environment without mimecrawl's own variables, which would override
// the config file.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MIMECRAWL_") {
			env = append(env, kv)
		}
	}
	return env
}

// exited reports whether the process has ended by itself.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to end and returns its exit code; -1 means killed by a signal.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(processTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not end within %v\n%s", p.name, processTimeout, p.tail(30))
	}
	var ee *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
		t.Fatalf("%s: %v", p.name, p.waitErr)
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// kill sends SIGKILL: no handler runs, nothing is flushed, the state file is left as the last
// committed transaction left it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill %s: %v", p.name, err)
	}
}

// tail returns the end of the process's summary and log, for failure messages.
func (p *proc) tail(lines int) string {
	var b strings.Builder
	for _, f := range []string{p.out, p.log} {
		data, _ := os.ReadFile(f)
		ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), strings.Join(ls, "\n"))
	}
	return b.String()
}

// runToEnd runs mimecrawl uninterrupted and returns its exit code.
func (w *procWorld) runToEnd(args ...string) (int, *proc) {
	w.t.Helper()
	p := w.start(args...)
	return p.wait(w.t), p
}

// snapshot is what the state file holds after a run ended or was killed.
type snapshot struct {
	pos      map[state.Key]state.Position
	failures int
	// fullPending: a full re-crawl was started and not finished; a plain crawl continues it
	// (see fullCampaign), so it may start full passes in place of pending plain ones.
	fullPending bool
}

func (s snapshot) String() string {
	done, passes, resumable := 0, 0, 0
	var indexed int64
	for _, p := range s.pos {
		if p.Pass == nil && !p.Token.IsZero() {
			done++
		}
		if p.Pass != nil {
			passes++
			if !p.Pass.Low.IsZero() {
				resumable++
			}
		}
		indexed += p.Indexed
	}
	return fmt.Sprintf("%d views known: %d with no pass pending, %d passes pending (%d with a resume point), %d documents counted, %d failures",
		len(s.pos), done, passes, resumable, indexed, s.failures)
}

// snapshot opens the state file read-only, as no run is going, and reads every position.
func (w *procWorld) snapshot() snapshot {
	w.t.Helper()
	s := snapshot{pos: map[state.Key]state.Position{}}
	// Killed before it created the state file, or between creating it and writing its first
	// pages (bbolt writes them in one call; the next run initialises an empty file).
	if info, err := os.Stat(w.state); errors.Is(err, fs.ErrNotExist) || (err == nil && info.Size() == 0) {
		return s
	}
	st, err := state.Open(w.state, state.Options{ReadOnly: true, LockTimeout: 10 * time.Second})
	if err != nil {
		w.t.Fatalf("open the state file read-only after a run: %v", err)
	}
	defer st.Close()
	if s.pos, err = st.Positions(); err != nil {
		w.t.Fatalf("read positions: %v", err)
	}
	fails, err := st.Failures(nil)
	if err != nil {
		w.t.Fatalf("read failures: %v", err)
	}
	s.failures = len(fails)
	if _, s.fullPending, err = st.FullSince(); err != nil {
		w.t.Fatalf("read the full re-crawl: %v", err)
	}
	return s
}

// samePass reports whether two recorded passes are the same pass, seen at two moments.
func samePass(a, b *state.Pass) bool {
	return a.End.Equal(b.End) && a.Started.Equal(b.Started) && a.Full == b.Full && a.Generation == b.Generation
}

// checkProgress compares the state before and after one run (killed or not) and reports what
// crash-safe resume forbids: a delta token or generation going back, a resume point moving up
// within a pass, a position lost, or an interrupted pass not resumed (a plain crawl resumes
// every pass, full ones as full; --full, and a plain crawl that continues an unfinished full
// re-crawl, resume full passes). gone lists mailboxes deleted
// upstream, whose positions mailbox removal may drop.
func checkProgress(t *testing.T, run string, prev, cur snapshot, runFull bool, gone map[string]bool) {
	t.Helper()
	keys := make([]state.Key, 0, len(prev.pos))
	for k := range prev.pos {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		p := prev.pos[k]
		c, ok := cur.pos[k]
		if !ok {
			if !gone[k.Mailbox] {
				t.Errorf("%s: the position of %s disappeared (was %s)", run, k, showPos(p))
			}
			continue
		}
		if c.Token.Before(p.Token) {
			t.Errorf("%s: %s: delta token went back from %s to %s", run, k, showTime(p.Token), showTime(c.Token))
		}
		if c.Generation < p.Generation {
			t.Errorf("%s: %s: generation went back from %d to %d", run, k, p.Generation, c.Generation)
		}
		if p.Pass == nil {
			continue
		}
		if c.Pass != nil && samePass(p.Pass, c.Pass) && !p.Pass.Low.IsZero() &&
			(c.Pass.Low.IsZero() || c.Pass.Low.After(p.Pass.Low)) {
			t.Errorf("%s: %s: resume point moved up within a pass, from %s to %s", run, k, showTime(p.Pass.Low), showTime(c.Pass.Low))
		}
		if prev.failures > 0 || ((runFull || prev.fullPending) && !p.Pass.Full) {
			continue // the run may start a new pass instead of this one
		}
		switch {
		case c.Pass == nil && (!c.Token.Equal(p.Pass.End) || c.Generation != p.Pass.Generation):
			t.Errorf("%s: %s: the pending pass (%s) was not what completed: now %s", run, k, showPass(p.Pass), showPos(c))
		case c.Pass != nil && !samePass(p.Pass, c.Pass):
			t.Errorf("%s: %s: the pending pass (%s) was not resumed: now %s", run, k, showPass(p.Pass), showPass(c.Pass))
		}
	}
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

func showPass(p *state.Pass) string {
	if p == nil {
		return "no pass"
	}
	return fmt.Sprintf("pass end %s low %s full %v generation %d started %s", showTime(p.End), showTime(p.Low), p.Full, p.Generation, showTime(p.Started))
}

func showPos(p state.Position) string {
	return fmt.Sprintf("token %s generation %d, %s", showTime(p.Token), p.Generation, showPass(p.Pass))
}

// expectation is what the index must hold for the simulator's truth with the default rules:
// every message of every mailbox of a non-local domain, aliases and lists left out.
type expectation struct {
	messages    map[string]expectedMessage // message document id
	attachments map[string]bool            // attachment document id
}

type expectedMessage struct {
	key         state.Key
	id          string
	received    time.Time
	attachments []string // attachment document ids
}

func (w *procWorld) expect() expectation {
	w.t.Helper()
	ex := expectation{messages: map[string]expectedMessage{}, attachments: map[string]bool{}}
	truth := w.sim.Truth()
	var rules crawler.Rules
	localDomain := map[string]bool{}
	for _, d := range truth.Domains {
		localDomain[d.Domain] = d.Local
	}
	for _, mb := range truth.Mailboxes {
		if mb.Alias || mb.Type != simulator.TypeMailbox {
			continue
		}
		addr := strings.ToLower(mb.Address)
		if !rules.DomainDecision(strings.ToLower(mb.Domain), localDomain[mb.Domain] || mb.Local).Kept || !rules.MailboxDecision(addr).Kept {
			continue
		}
		for _, m := range mb.Messages {
			received, err := time.Parse("2006-01-02T15:04:05-0700", m.Received)
			if err != nil {
				w.t.Fatalf("truth: message %s: received %q: %v", m.ID, m.Received, err)
			}
			em := expectedMessage{key: state.Key{Mailbox: addr, View: m.View}, id: m.ID, received: received}
			for i, a := range m.Attachments {
				id := crawler.AttachmentDocID(addr, m.View, m.ID, i, a.SHA256)
				em.attachments = append(em.attachments, id)
				ex.attachments[id] = true
			}
			ex.messages[crawler.MessageDocID(addr, m.View, m.ID)] = em
		}
	}
	if len(ex.messages) == 0 {
		w.t.Fatal("the truth expects no message at all")
	}
	return ex
}

// indexed is every document id in the test's indices, by kind, with how often it occurs.
type indexed struct {
	messages, attachments map[string]int
}

// indexed refreshes and reads the ids of every document under the test's prefix.
func (w *procWorld) indexed() indexed {
	w.t.Helper()
	w.es(http.MethodPost, "/"+w.prefix+"-*/_refresh", "", nil)
	var out struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
			Hits []struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	w.es(http.MethodPost, "/"+w.prefix+"-*/_search?size=10000&track_total_hits=true",
		`{"_source":false,"query":{"match_all":{}}}`, &out)
	if out.Hits.Total.Value != len(out.Hits.Hits) {
		w.t.Fatalf("the index holds %d documents, more than one search returns (%d)", out.Hits.Total.Value, len(out.Hits.Hits))
	}
	got := indexed{messages: map[string]int{}, attachments: map[string]int{}}
	for _, h := range out.Hits.Hits {
		// Documents live in the versioned indices behind the aliases users query.
		switch strings.TrimRight(h.Index, "0123456789") {
		case w.prefix + "-messages-":
			got.messages[h.ID]++
		case w.prefix + "-attachments-":
			got.attachments[h.ID]++
		default:
			w.t.Errorf("document %s in an unexpected index %s", h.ID, h.Index)
		}
	}
	return got
}

func (w *procWorld) es(method, path, body string, out any) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.esURL+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		w.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			w.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// assertIndexEquals compares the index with the expectation id by id: every expected document
// exactly once, nothing else.
func (w *procWorld) assertIndexEquals(ex expectation) {
	w.t.Helper()
	got := w.indexed()
	wantAtt := ex.attachments
	wantMsg := make(map[string]bool, len(ex.messages))
	for id := range ex.messages {
		wantMsg[id] = true
	}
	for _, c := range []struct {
		kind string
		want map[string]bool
		got  map[string]int
	}{{"messages", wantMsg, got.messages}, {"attachments", wantAtt, got.attachments}} {
		var missing, extra, dup []string
		for id := range c.want {
			if c.got[id] == 0 {
				missing = append(missing, id)
			}
		}
		for id, n := range c.got {
			if !c.want[id] {
				extra = append(extra, id)
			}
			if n > 1 {
				dup = append(dup, id)
			}
		}
		total := 0
		for _, n := range c.got {
			total += n
		}
		if len(missing)+len(extra)+len(dup) > 0 || total != len(c.want) {
			w.t.Errorf("%s: want %d documents, the index has %d: %d missing %v, %d unexpected %v, %d more than once %v",
				c.kind, len(c.want), total, len(missing), firstFew(missing, 3), len(extra), firstFew(extra, 3), len(dup), firstFew(dup, 3))
		}
	}
}

func firstFew(s []string, n int) []string {
	sort.Strings(s)
	if len(s) > n {
		return s[:n]
	}
	return s
}

// assertCovered checks that no checkpoint passed data the index lacks: every expected message
// received at or before its view's delta token, or inside the acknowledged part (Low, End] of
// its view's pending pass, is in the index with all of its attachments. (Low itself is left
// out: messages received in the same second as the resume point may still be unfinished; the
// resumed listing includes that second again.)
func (w *procWorld) assertCovered(run string, s snapshot, ex expectation, got indexed) {
	w.t.Helper()
	bad := 0
	for id, m := range ex.messages {
		p, ok := s.pos[m.key]
		if !ok {
			continue
		}
		var by string
		switch {
		case !p.Token.IsZero() && !m.received.After(p.Token):
			by = "delta token " + showTime(p.Token)
		case p.Pass != nil && !p.Pass.Low.IsZero() && m.received.After(p.Pass.Low) && !m.received.After(p.Pass.End):
			by = "resume point " + showTime(p.Pass.Low)
		default:
			continue
		}
		var lost []string
		if got.messages[id] == 0 {
			lost = append(lost, "message document "+id)
		}
		for _, a := range m.attachments {
			if got.attachments[a] == 0 {
				lost = append(lost, "attachment document "+a)
			}
		}
		if len(lost) > 0 {
			bad++
			if bad <= 5 {
				w.t.Errorf("%s: %s message %s received %s is covered by the %s, but the index lacks %v",
					run, m.key, m.id, showTime(m.received), by, lost)
			}
		}
	}
	if bad > 5 {
		w.t.Errorf("%s: %d messages covered by a checkpoint are not fully indexed", run, bad)
	}
}

// fetchCalls counts successful get-file calls: one per message fetched, whose attachments
// come inside it.
func (w *procWorld) fetchCalls() int64 {
	return w.sim.Stats().Requests["/api/archive/get-file"][http.StatusOK]
}

// waitPastTokens sleeps until the clock's second is after every delta token and pass end, so
// that messages added now are received after them: a message received in the very second a
// pass began may arrive after that pass listed it, which is what delta_token_offset is for,
// and would make assertCovered report a loss that is none.
func waitPastTokens(s snapshot) {
	var last time.Time
	for _, p := range s.pos {
		if p.Token.After(last) {
			last = p.Token
		}
		if p.Pass != nil && p.Pass.End.After(last) {
			last = p.Pass.End
		}
	}
	if d := time.Until(last.Truncate(time.Second).Add(time.Second)); d > 0 {
		time.Sleep(d)
	}
}

// passStart is one "pass start" line of a run's log: where a mailbox view's listing began.
type passStart struct {
	key      state.Key
	from, to time.Time
	full     bool
	resumed  bool
}

// passStarts reads the pass starts a run logged (JSON lines at debug level). A log line that is
// not JSON is a torn last line of a killed run and is skipped.
func (p *proc) passStarts(t *testing.T) []passStart {
	t.Helper()
	data, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatalf("read the log of %s: %v", p.name, err)
	}
	var out []passStart
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `"pass start"`) {
			continue
		}
		var l struct {
			Message string    `json:"message"`
			Mailbox string    `json:"mailbox"`
			View    string    `json:"view"`
			From    time.Time `json:"from"`
			To      time.Time `json:"to"`
			Full    bool      `json:"full"`
			Resumed bool      `json:"resumed"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Message != "pass start" {
			continue
		}
		out = append(out, passStart{key: state.Key{Mailbox: l.Mailbox, View: l.View}, from: l.From, to: l.To, full: l.Full, resumed: l.Resumed})
	}
	return out
}

// checkResumedListing checks, from the run's log, that every pass the state left pending was
// taken up where it stopped: a resumed pass of the same kind, listing down from its resume
// point (or from its end when nothing was acknowledged yet), not from the start of the view.
// It returns how many pending passes with a resume point the run took up.
func checkResumedListing(t *testing.T, run string, p *proc, prev snapshot, runFull bool) int {
	t.Helper()
	resumed := 0
	for _, s := range p.passStarts(t) {
		pp, ok := prev.pos[s.key]
		// A plain crawl that continues a pending full re-crawl starts full passes in place of
		// pending plain ones, as a --full run does.
		if !ok || pp.Pass == nil || prev.failures > 0 || ((runFull || prev.fullPending) && !pp.Pass.Full) {
			continue
		}
		want := pp.Pass.End
		if !pp.Pass.Low.IsZero() {
			want = pp.Pass.Low
			resumed++
		}
		if !s.resumed || s.full != pp.Pass.Full || !s.to.Equal(want) {
			t.Errorf("%s: %s: the pending pass (%s) should resume listing down from %s; the run started a pass resumed=%v full=%v listing %s..%s",
				run, s.key, showPass(pp.Pass), showTime(want), s.resumed, s.full, showTime(s.from), showTime(s.to))
		}
	}
	return resumed
}
