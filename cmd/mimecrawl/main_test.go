package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// world is a simulator over a socket, the real Elasticsearch, and a config file pointing at both.
type world struct {
	t      *testing.T
	sim    *simulator.Server
	config string
	state  string
	prefix string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	esURL := indextest.URL(t)
	sim, err := simulator.New(simulator.Options{Seed: 3, Domains: 1, Mailboxes: 2, Messages: 6, ClientSecret: "s3cr3t-value-never-printed"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	w := &world{t: t, sim: sim, state: filepath.Join(dir, "state.db"), prefix: fmt.Sprintf("mccmd-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	cfg := fmt.Sprintf(`mimecast:
  base_url: %s
  client_id: demo-client
  client_secret: s3cr3t-value-never-printed
messages:
  start_date: "2020-01-01"
attachments:
  extract: true
elasticsearch:
  addresses: [%q]
  index_prefix: %s
  namespace: %s
  bulk:
    flush_interval: 100ms
state:
  path: %s
  lock_timeout: 1s
logging:
  trace: all
`, srv.URL, esURL, w.prefix, indextest.Namespace(w.prefix), w.state)
	w.config = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { indextest.Remove(t, esURL, w.prefix) })
	return w
}

func (w *world) run(args ...string) (int, string, string) {
	return w.runFormat("json", args...)
}

// runText runs with logs for a person (console), where a run's summary is printed as text.
func (w *world) runText(args ...string) (int, string, string) {
	return w.runFormat("console", args...)
}

func (w *world) runFormat(format string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append(args, "--config", w.config, "--log-format", format), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckAllOKThenForbiddenGetFile(t *testing.T) {
	w := newWorld(t)
	code, out, logs := w.run("check")
	if code != 0 {
		t.Fatalf("check exit %d, want 0\n%s\n%s", code, out, logs)
	}
	for _, want := range []string{"ok    config", "ok    mimecast token", "ok    mimecast internal domains", "ok    mimecast internal users",
		"ok    mimecast message list", "ok    mimecast message detail", "ok    mimecast get-file", "ok    elasticsearch ", "ok    elasticsearch write", "ok    state file",
		", supported (" + index.SupportedVersions() + ")"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	w.sim.SetForbidden([]string{"/api/archive/get-file"})
	code, out, logs = w.run("check")
	if code != 1 {
		t.Fatalf("check with get-file forbidden: exit %d, want 1\n%s", code, out)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL") {
			line = l
		}
	}
	if !strings.Contains(line, "mimecast get-file") || !strings.Contains(line, "/api/archive/get-file") || !strings.Contains(line, "403") {
		t.Errorf("the failed line should name get-file, its path and the 403; got %q\n%s", line, out)
	}
	if !strings.Contains(out, "fix:") {
		t.Errorf("a failed check should say how to fix it:\n%s", out)
	}
	if strings.Contains(out+logs, "s3cr3t-value-never-printed") {
		t.Errorf("the client secret appears in check's output or logs")
	}
}

func TestCrawlSummaryAndStatus(t *testing.T) {
	w := newWorld(t)
	code, out, logs := w.run("crawl")
	if code != 0 {
		t.Fatalf("crawl exit %d, want 0\n%s\n%s", code, out, logs)
	}
	// With JSON logs the summary is the run end line, and stdout holds no text beside it.
	if out != "" {
		t.Errorf("with --log-format json the crawl printed on stdout:\n%s", out)
	}
	if n := strings.Count(logs, `"message":"run end"`); n != 1 || !strings.Contains(logs, `"summary":{`) {
		t.Errorf("%d JSON run end lines in the log, want 1 with the summary", n)
	}
	code, out, logs = w.runText("crawl")
	if code != 0 {
		t.Fatalf("second crawl exit %d, want 0\n%s\n%s", code, out, logs)
	}
	for _, want := range []string{"mimecrawl crawl summary", "messages ", "attachments ", "exit code     0"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+logs, "s3cr3t-value-never-printed") {
		t.Errorf("the client secret appears in the output or the trace log")
	}
	code, out, _ = w.run("status")
	if code != 0 || !strings.Contains(out, "INBOX") || !strings.Contains(out, "recent runs") {
		t.Errorf("status exit %d:\n%s", code, out)
	}
	code, out, _ = w.run("status", "--json")
	if code != 0 || !strings.Contains(out, `"delta_token"`) {
		t.Errorf("status --json exit %d:\n%s", code, out)
	}
	code, out, _ = w.run("plan")
	if code != 0 || !strings.Contains(out, "nothing was changed") {
		t.Errorf("plan exit %d:\n%s", code, out)
	}
}

func TestSecondRunFailsFastOnLockedState(t *testing.T) {
	w := newWorld(t)
	held, err := state.Open(w.state, state.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	done := make(chan struct{})
	var code int
	var out, logs string
	go func() {
		code, out, logs = w.run("crawl")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second run did not give up within 10 seconds")
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(out+logs, w.state) || !strings.Contains(out+logs, "locked") {
		t.Errorf("the error should name the locked state file %s:\n%s\n%s", w.state, out, logs)
	}
}

func TestCorruptStateStopsTheRunAndChangesNothing(t *testing.T) {
	w := newWorld(t)
	garbage := bytes.Repeat([]byte("not a bbolt file "), 400)
	if err := os.WriteFile(w.state, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, logs := w.run("crawl")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(out+logs, w.state) {
		t.Errorf("the error should name the corrupt state file:\n%s\n%s", out, logs)
	}
	after, err := os.ReadFile(w.state)
	if err != nil || !bytes.Equal(after, garbage) {
		t.Errorf("the corrupt state file was modified")
	}
	if n := w.sim.Stats().Total; n != 0 {
		t.Errorf("the run called Mimecast %d times before giving up on its state", n)
	}
}

func TestBadConfigIsFatalAndNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	os.WriteFile(p, []byte("mimecast:\n  client_id: x\n  client_secret: y\nmailboxes:\n  include: ['([a-z']\n"), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"crawl", "--config", p}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "mailboxes.include[0]") {
		t.Errorf("exit %d, stderr %q: want 1 and the key mailboxes.include[0]", code, errb.String())
	}
	_ = context.Background
}

func (w *world) count(query string) int {
	w.t.Helper()
	esURL := os.Getenv("ELASTICSEARCH_URL")
	http.Post(esURL+"/"+w.prefix+"-*/_refresh", "application/json", nil)
	resp, err := http.Get(esURL + "/" + w.prefix + "-*/_count?q=" + url.QueryEscape(query))
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Count int `json:"count"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		w.t.Fatal(err)
	}
	return out.Count
}

func (w *world) knownMailboxes() []string {
	w.t.Helper()
	st, err := state.Open(w.state, state.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	ms, err := st.Mailboxes()
	if err != nil {
		w.t.Fatal(err)
	}
	return ms
}

// TestMailboxRemovalGuard: an enumeration that comes back empty, or a removal of more than the
// allowed share, removes nothing and exits 4; --allow-mass-removal removes the mailbox's
// documents and state.
func TestMailboxRemovalGuard(t *testing.T) {
	w := newWorld(t)
	if code, out, logs := w.run("crawl"); code != 0 {
		t.Fatalf("first crawl exit %d\n%s\n%s", code, out, logs)
	}
	total := w.count("*:*")
	known := w.knownMailboxes()
	if total == 0 || len(known) != 2 {
		t.Fatalf("after the first crawl: %d documents, known mailboxes %v", total, known)
	}

	w.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/user/get-internal-users", Empty: true}})
	code, out, _ := w.runText("crawl")
	if code != 4 || !strings.Contains(out, "kept no mailbox") {
		t.Errorf("empty enumeration: exit %d, want 4 and the reason:\n%s", code, out)
	}
	if got := w.count("*:*"); got != total {
		t.Errorf("empty enumeration changed the index: %d documents, had %d", got, total)
	}
	if got := w.knownMailboxes(); len(got) != 2 {
		t.Errorf("empty enumeration changed the state: %v", got)
	}
	w.sim.SetFaults(nil)

	gone := known[0]
	if err := w.sim.DeleteMailbox(gone); err != nil {
		t.Fatal(err)
	}
	code, out, _ = w.runText("crawl")
	if code != 4 || !strings.Contains(out, "max_mailbox_removal_ratio") {
		t.Errorf("removing 1 of 2 mailboxes (50%% > 20%%): exit %d, want 4:\n%s", code, out)
	}
	if got := w.count(index.FieldMailbox + `:"` + gone + `"`); got == 0 {
		t.Errorf("the guard refused, yet the documents of %s are gone", gone)
	}
	code, out, logs := w.runText("crawl", "--allow-mass-removal")
	if code != 0 {
		t.Fatalf("crawl --allow-mass-removal exit %d\n%s\n%s", code, out, logs)
	}
	if got := w.count(index.FieldMailbox + `:"` + gone + `"`); got != 0 {
		t.Errorf("%d documents of the removed mailbox %s remain", got, gone)
	}
	if got := w.knownMailboxes(); len(got) != 1 || got[0] == gone {
		t.Errorf("state after removal knows %v, want only the remaining mailbox", got)
	}
	if !strings.Contains(out, "1 removed") {
		t.Errorf("summary does not report the removal:\n%s", out)
	}
}

// TestInterruptedFullRecrawlGoesOn: a full re-crawl that stopped after some views goes on
// with the others only, also from a plain `crawl`, and is closed once every view is done.
func TestInterruptedFullRecrawlGoesOn(t *testing.T) {
	w := newWorld(t)
	if code, out, logs := w.run("crawl"); code != 0 {
		t.Fatalf("first crawl exit %d\n%s\n%s", code, out, logs)
	}
	// Simulate a --full run that finished one view and was then killed.
	st, err := state.Open(w.state, state.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	if err := st.SetFullSince(since); err != nil {
		t.Fatal(err)
	}
	positions, err := st.Positions()
	if err != nil || len(positions) < 2 {
		t.Fatalf("positions %v %v", positions, err)
	}
	var done state.Key
	for k, p := range positions {
		done = k
		p.FullDone = since
		if err := st.Commit(map[state.Key]state.Position{k: p}); err != nil {
			t.Fatal(err)
		}
		break
	}
	st.Close()
	var doneMessages, total int64
	for _, mb := range w.sim.Truth().Mailboxes {
		if mb.Local || mb.Type != simulator.TypeMailbox {
			continue
		}
		for _, m := range mb.Messages {
			total++
			if strings.EqualFold(mb.Address, done.Mailbox) && m.View == done.View {
				doneMessages++
			}
		}
	}

	if code, out, _ := w.run("status"); code != 0 || !strings.Contains(out, "full re-crawl pending since") {
		t.Errorf("status does not show the pending full re-crawl (exit %d):\n%s", code, out)
	}
	w.sim.ResetStats()
	code, out, logs := w.runText("crawl")
	if code != 0 {
		t.Fatalf("crawl exit %d\n%s\n%s", code, out, logs)
	}
	if !strings.Contains(out, "full re-crawl") {
		t.Errorf("a plain crawl with a pending full re-crawl should go on with it:\n%s", out)
	}
	var fetches int64
	for _, n := range w.sim.Stats().Requests["/api/archive/get-file"] {
		fetches += n
	}
	if want := total - doneMessages; fetches != want {
		t.Errorf("%d get-file calls, want %d: every message except those of the view already done (%v, %d messages)", fetches, want, done, doneMessages)
	}
	st, err = state.Open(w.state, state.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, pending, _ := st.FullSince(); pending {
		t.Errorf("the full re-crawl is still pending after every view completed")
	}
}
