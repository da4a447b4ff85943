package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// With credentials the token endpoint refuses, alerts --once is fatal (exit 1) as the crawl
// is and the README says, not a pass whose every source failed (exit 3); the summary names the
// refusal and no cursor is written.
func TestAlertsWrongCredentialsAreFatal(t *testing.T) {
	w := alertsWorld(t)
	data, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "client_secret: demo-secret", "client_secret: not-the-secret", 1)
	if err := os.WriteFile(w.config, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, logs := w.runText("alerts", "--once")
	if code != exitFatal {
		t.Fatalf("alerts --once with a wrong secret: exit %d, want %d\n%s\n%s", code, exitFatal, out, logs)
	}
	if !strings.Contains(out, "error") || !strings.Contains(out, "token") {
		t.Errorf("the summary does not name the refused credentials:\n%s", out)
	}
	if code, out, _ := w.run("crawl"); code != exitFatal {
		t.Errorf("crawl with a wrong secret: exit %d, want %d (the two agree)\n%s", code, exitFatal, out)
	}
}

// status shows the crawl's state whatever the alerts state file is like: an empty one (left by
// a full disk) is "nothing yet", a damaged one is named in the alerts part, and the exit code
// says so, but the crawl's views are still shown.
func TestStatusShowsTheCrawlWhateverTheAlertsState(t *testing.T) {
	cases := []struct {
		name     string
		content  []byte
		wantCode int
		wantText string
	}{
		{"empty", []byte{}, exitOK, "no pass has committed anything yet"},
		{"garbage", []byte(strings.Repeat("not a bbolt file ", 1000)), exitFatal, "is corrupt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := alertsWorld(t)
			st, err := state.Open(w.state, state.Options{LockTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Commit(map[state.Key]state.Position{{Mailbox: "ceo@example.com", View: "INBOX"}: {Token: time.Now().UTC(), Indexed: 7}}); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if err := os.WriteFile(w.state+".alerts", tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, asJSON := range []bool{false, true} {
				args := []string{"status"}
				if asJSON {
					args = append(args, "--json")
				}
				code, out, logs := w.run(args...)
				if code != tc.wantCode {
					t.Errorf("%v: exit %d, want %d\n%s\n%s", args, code, tc.wantCode, out, logs)
				}
				if !strings.Contains(out, "ceo@example.com") {
					t.Errorf("%v hides the crawl's state:\n%s\n%s", args, out, logs)
				}
				if !strings.Contains(out, tc.wantText) {
					t.Errorf("%v does not say %q of the alerts state:\n%s\n%s", args, tc.wantText, out, logs)
				}
			}
			if tc.wantCode == exitOK {
				// check says the same of an empty file, and passes.
				if code, out, _ := w.run("check"); code != exitOK || !strings.Contains(out, "ok    alerts state") || !strings.Contains(out, tc.wantText) {
					t.Errorf("check exit %d:\n%s", code, out)
				}
			}
		})
	}
}

// A long-running poller with one source the application may not read (403) and one failing on
// every pass stays live through many poll intervals: /healthz never answers anything but 200,
// so the shipped liveness probe never restarts it. /readyz and /status say which source is in
// which state: forbidden with its permission, failing with its last error.
func TestAlertsHealthIgnoresTheTenant(t *testing.T) {
	w := alertsWorld(t)
	w.sim.SetForbidden([]string{"/api/dlp/get-logs"})
	w.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/ttp/url/get-logs", Status: 400}})
	data, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	const interval = time.Second
	if err := os.WriteFile(w.config, append(data, []byte("  poll_interval: 1s\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	base := startAlerts(t, w)

	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	// Probe over more than four intervals after the first failing pass: the old /healthz
	// answered 503 two intervals after it.
	var failing bool
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if code, body := get("/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz %d with a forbidden and a failing source: %s", code, body)
		}
		_, body := get("/readyz")
		if strings.Contains(body, "url_protection: failing for more than") {
			failing = true
			break
		}
	}
	if !failing {
		t.Fatal("/readyz never reported url_protection failing for more than two intervals")
	}
	for end := time.Now().Add(4 * interval); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if code, body := get("/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz %d with a forbidden and a failing source: %s", code, body)
		}
	}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with a source failing for many intervals, want 503", code)
	}
	for _, want := range []string{"dlp: forbidden (the application needs Monitoring | Data Leak Prevention | Read)",
		"threats: ok", "url_protection: failing", "400"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz lacks %q:\n%s", want, body)
		}
	}
	_, body = get("/status")
	var st struct {
		Live, Ready bool
		Sources     []struct {
			Source, State string
		}
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	states := map[string]string{}
	for _, s := range st.Sources {
		states[s.Source] = s.State
	}
	if !st.Live || st.Ready || states["dlp"] != "forbidden" || states["url_protection"] != "failing" || states["threats"] != "ok" {
		t.Errorf("/status:\n%s", body)
	}
}

// startAlerts starts the long-running poller of w on an ephemeral --listen port and returns the
// base URL of its HTTP server; the process is stopped with SIGTERM at cleanup.
func startAlerts(t *testing.T, w *world) string {
	t.Helper()
	cmd := exec.Command(mimecrawlBinary(t), "alerts", "--config", w.config, "--log-format", "json", "--listen", "127.0.0.1:0")
	cmd.Env = childEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l struct{ Message, Listen string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "serving /metrics and /healthz" {
				addrc <- l.Listen
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(45 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	select {
	case a := <-addrc:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("no serving line within 30s")
		return ""
	}
}

// A filter that meets its bound on every alert (here a comprehension over the cost limit)
// keeps the alerts (fail open), counts them as filter errors and in the metrics, and says so in
// one warning per pass, not one per alert.
func TestAlertsFilterAtItsBoundFailsOpenAndWarnsOnce(t *testing.T) {
	w := alertsWorld(t)
	data, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	const bomb = `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, e > 0)))))`
	cfg := strings.Replace(string(data), "  sources: [attachment_protection, url_protection, impersonation, dlp, threats, siem, audit]\n",
		"  sources: [attachment_protection]\n  filters:\n    - expression: '"+bomb+"'\n      action: exclude\n", 1)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, logs := w.runText("alerts", "--once")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, logs)
	}
	if !strings.Contains(out, "filter errors (kept)") || strings.Contains(out, " 0 alerts indexed") {
		t.Errorf("the summary does not show alerts kept despite their filter errors:\n%s", out)
	}
	t.Logf("summary:\n%s", out)
	if n := strings.Count(logs, "filter evaluations stopped at their bound"); n != 1 {
		t.Errorf("%d warnings about filters at their bound, want 1 for the pass:\n%s", n, logs)
	}
}
