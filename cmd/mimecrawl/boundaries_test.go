package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/internal/job"
	"github.com/mimecrawl/mimecrawl/state"
)

// setConfig adds settings to a test's config file: each entry of add is "section.key: value",
// inserted under the section's existing line (or as a new section).
func setConfig(t *testing.T, path string, add ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(data)
	for _, a := range add {
		key, value, _ := strings.Cut(a, ": ")
		section, name, _ := strings.Cut(key, ".")
		line := fmt.Sprintf("  %s: %s\n", name, value)
		if strings.Contains(cfg, "\n"+section+":\n") || strings.HasPrefix(cfg, section+":\n") {
			cfg = strings.Replace(cfg, section+":\n", section+":\n"+line, 1)
		} else {
			cfg += section + ":\n" + line
		}
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckGivesUpOnASilentElasticsearch: check against a node that accepts connections and
// never answers fails within elasticsearch.request_timeout and says what is wrong.
func TestCheckGivesUpOnASilentElasticsearch(t *testing.T) {
	w := newWorld(t)
	data, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	silent := indextest.SilentNode(t)
	cfg := strings.Replace(string(data), os.Getenv("ELASTICSEARCH_URL"), silent, 1)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	setConfig(t, w.config, "elasticsearch.request_timeout: 300ms", "performance.max_retries: 1")
	code, out, logs := w.run("check")
	if code != exitFatal {
		t.Fatalf("check exit %d, want 1\n%s\n%s", code, out, logs)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL  elasticsearch") {
			line = l
		}
	}
	for _, want := range []string{silent, "no answer", "300ms"} {
		if !strings.Contains(line, want) {
			t.Errorf("the failed line %q does not contain %q\n%s", line, want, out)
		}
	}
	if !strings.Contains(out, "does not answer within elasticsearch.request_timeout") {
		t.Errorf("check does not name the setting:\n%s", out)
	}
	if !strings.Contains(out, "ok    state file") {
		t.Errorf("the checks after Elasticsearch did not run:\n%s", out)
	}
}

// TestCheckNamesAnUnsupportedVersion: check against a node of a major no release was tested
// on fails, naming its version and the supported range.
func TestCheckNamesAnUnsupportedVersion(t *testing.T) {
	w := newWorld(t)
	data, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	future := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("X-Elastic-Product", "Elasticsearch")
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(`{"nodes":{"n1":{"version":"10.1.0"}}}`))
	}))
	t.Cleanup(future.Close)
	cfg := strings.Replace(string(data), os.Getenv("ELASTICSEARCH_URL"), future.URL, 1)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, logs := w.run("check")
	if code != exitFatal {
		t.Fatalf("check exit %d, want 1\n%s\n%s", code, out, logs)
	}
	for _, want := range []string{`FAIL  elasticsearch`, `"10.1.0"`, "supports " + index.SupportedVersions(), "upgrade the cluster"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// TestSignalWhileLoadingTheConfig: a config "file" that never ends (a FIFO nobody writes)
// holds the load; SIGTERM still ends the process, with exit 1 and a reason.
func TestSignalWhileLoadingTheConfig(t *testing.T) {
	bin := mimecrawlBinary(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "config.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	w := &procWorld{t: t, bin: bin, dir: dir, config: fifo}
	p := w.start("status")
	// Give the process time to install its signal handler and block on the FIFO; a signal
	// before that would only kill it, which the exit code below tells apart.
	time.Sleep(500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != exitFatal {
		t.Fatalf("exit %d, want 1 (-1: killed by the signal, which was not handled)\n%s", code, p.tail(10))
	}
	logs, _ := os.ReadFile(p.log)
	if !strings.Contains(string(logs), "interrupted while loading the configuration") {
		t.Errorf("stderr does not say why:\n%s", logs)
	}
}

func TestHelpListsEveryExitCode(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"help"}, &out, &errb); code != exitOK {
		t.Fatalf("help exit %d", code)
	}
	for _, c := range []int{exitOK, exitFatal, exitUsage, exitPartial, exitRefused} {
		if !strings.Contains(out.String(), fmt.Sprintf("\n  %d  ", c)) {
			t.Errorf("help does not list exit code %d:\n%s", c, out.String())
		}
	}
}

// statusWorld writes a config whose state file is path; status needs nothing else.
func statusConfig(t *testing.T, statePath string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf("mimecast: {client_id: a, client_secret: b}\nstate:\n  path: %s\n  lock_timeout: 1s\n", statePath)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStatusJSONIsValidUTF8: bytes that are not UTF-8 in the state file (a damaged record,
// another program) never reach status --json's output as such.
func TestStatusJSONIsValidUTF8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := state.Key{Mailbox: "a@example.com", View: "INBOX"}
	if err := st.Commit(map[state.Key]state.Position{good: {Token: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		pos := tx.Bucket([]byte("positions"))
		v := bytes.Clone(pos.Get([]byte("a@example.com\x00INBOX")))
		if err := pos.Put([]byte("b\xff\xfe@example.com\x00INBOX"), v); err != nil {
			return err
		}
		return tx.Bucket([]byte("runs")).Put([]byte("\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("{\"command\":\"cr\xffawl\",\"exit_code\":0}"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	code := run([]string{"status", "--json", "--config", statusConfig(t, path)}, &out, &errb)
	if code != exitOK {
		t.Fatalf("status exit %d\n%s", code, errb.String())
	}
	if !utf8.Valid(out.Bytes()) || !json.Valid(out.Bytes()) {
		t.Fatalf("status --json printed invalid UTF-8 or JSON:\n%q", out.String())
	}
	var rep job.StatusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Views) != 2 || len(rep.Runs) != 1 || rep.Runs[0].Command != "cr\uFFFDawl" {
		t.Errorf("report = %s", out.String())
	}
}

// TestStatusNoticesDamage: status runs the state file's consistency check; a damaged page is
// reported with the path and exit 1.
func TestStatusNoticesDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := map[state.Key]state.Position{}
	for i := range 200 {
		up[state.Key{Mailbox: fmt.Sprintf("user%03d@example.com", i), View: "INBOX"}] = state.Position{Indexed: int64(i)}
	}
	if err := st.Commit(up); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg := statusConfig(t, path)
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--config", cfg}, &out, &errb); code != exitOK {
		t.Fatalf("status of an intact file: exit %d\n%s", code, errb.String())
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte("user150@example.com"))
	pageSize := os.Getpagesize()
	copy(raw[i/pageSize*pageSize:], bytes.Repeat([]byte{0xEE}, 16))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"status", "--json"}} {
		out.Reset()
		errb.Reset()
		code := run(append(args, "--config", cfg), &out, &errb)
		if code != exitFatal {
			t.Errorf("%v of a damaged file: exit %d, want 1\n%s", args, code, out.String())
		}
		if !strings.Contains(errb.String(), path) {
			t.Errorf("%v does not name the damaged file:\n%s", args, errb.String())
		}
		if !utf8.Valid(out.Bytes()) || !utf8.Valid(errb.Bytes()) {
			t.Errorf("%v printed invalid UTF-8", args)
		}
	}
}

// TestStalledElasticsearchAndSIGTERM: Elasticsearch stops answering in the middle of a crawl
// (the proxy holds every request) and the process gets SIGTERM. It must exit within
// performance.shutdown_grace with its summary and exit code 3, its checkpoints passing nothing
// Elasticsearch did not acknowledge; once Elasticsearch answers again, a rerun completes the
// index.
func TestStalledElasticsearchAndSIGTERM(t *testing.T) {
	esURL := indextest.URL(t)
	const grace = 2 * time.Second
	proxy := indextest.NewProxy(t, esURL)
	w := newProcWorld(t, procOptions{sim: simulator.Options{Seed: 21, Domains: 2, Mailboxes: 4, Messages: 80}, esAddr: proxy.URL})
	// The request deadlines stay long: the stall must hold until the signal, so that it is the
	// grace, not a timeout, that ends the run.
	setConfig(t, w.config, "performance.shutdown_grace: "+grace.String())
	w.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/archive/", LatencyMS: 3}})
	p := w.start("crawl")
	for deadline := time.Now().Add(processTimeout); proxy.BulkRequests() < 3 && !p.exited() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if p.exited() {
		t.Fatalf("the crawl ended before Elasticsearch stalled\n%s", p.tail(20))
	}
	proxy.SetStall(true)
	for deadline := time.Now().Add(time.Minute); proxy.Stalled() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	// Let the workers run into the full queue behind the held bulk requests.
	time.Sleep(time.Second)
	t.Logf("Elasticsearch stalled after %d bulk requests; %d requests held", proxy.BulkRequests(), proxy.Stalled())
	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The grace, plus time for the summary and the process to end; the hard stop (without a
	// summary) comes later, at grace + job.HardStopAfter.
	limit := grace + 3*time.Second
	select {
	case <-p.done:
	case <-time.After(grace + job.HardStopAfter + 10*time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("the crawl still ran %s after SIGTERM with Elasticsearch stalled\n%s", time.Since(signalled).Round(time.Millisecond), p.tail(30))
	}
	took := time.Since(signalled)
	code := p.wait(t)
	t.Logf("exit %d %s after SIGTERM", code, took.Round(time.Millisecond))
	if took > limit {
		t.Errorf("the crawl took %s after SIGTERM to exit, want at most %s (shutdown_grace %s)", took.Round(time.Millisecond), limit, grace)
	}
	if code != exitPartial {
		t.Errorf("exit code %d, want 3\n%s", code, p.tail(30))
	}
	logs, _ := os.ReadFile(p.log)
	if sum := runEnd(t, checkLogLines(t, string(logs))); sum["exit_code"] != 3.0 {
		t.Errorf("no summary in the log:\n%s", p.tail(30))
	}
	// status shows the run as interrupted, with the views it left, not as an error.
	var out, errb bytes.Buffer
	run([]string{"status", "--config", w.config}, &out, &errb)
	recent := out.String()[strings.Index(out.String(), "recent runs:"):]
	if !strings.Contains(recent, "exit 3  interrupted, ") || !strings.Contains(recent, " interrupted\n") || strings.Contains(recent, "context canceled") {
		t.Errorf("status after SIGTERM:\n%s", recent)
	}

	proxy.SetStall(false)
	first := w.snapshot()
	ex := w.expect()
	w.assertCovered("crawl stopped with Elasticsearch stalled", first, ex, w.indexed())

	w.sim.SetFaults(nil)
	code, p = w.runToEnd("crawl")
	if code != exitOK {
		t.Fatalf("rerun: exit code %d, want 0\n%s", code, p.tail(30))
	}
	w.assertIndexEquals(ex)
}

// TestSIGTERMBeforeTheCrawlBegan: a signal while the mailboxes are listed ends the run as
// interrupted (exit 3), not as a fatal error, and its summary carries no "context canceled".
func TestSIGTERMBeforeTheCrawlBegan(t *testing.T) {
	w := newProcWorld(t, procOptions{sim: simulator.Options{Seed: 22, Domains: 1, Mailboxes: 2, Messages: 2}})
	w.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/user/", LatencyMS: 20000}})
	p := w.start("crawl")
	for deadline := time.Now().Add(processTimeout); !p.exited() && time.Now().Before(deadline); {
		if logs, _ := os.ReadFile(p.log); strings.Contains(string(logs), `"run start"`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // the listing of users is in flight, held 20 s by the simulator
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != exitPartial {
		t.Errorf("exit %d after SIGTERM during enumeration, want 3\n%s", code, p.tail(20))
	}
	logs, _ := os.ReadFile(p.log)
	sum := runEnd(t, checkLogLines(t, string(logs)))
	if sum["interrupted"] != true || sum["fatal"] != nil || sum["error"] != nil {
		t.Errorf("summary after SIGTERM during enumeration: interrupted %v, fatal %v, error %v", sum["interrupted"], sum["fatal"], sum["error"])
	}
}
