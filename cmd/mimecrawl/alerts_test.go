package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// alertsWorld is a simulator with seeded alerts, the real Elasticsearch and a config file.
func alertsWorld(t *testing.T) *world {
	t.Helper()
	esURL := os.Getenv("ELASTICSEARCH_URL")
	if esURL == "" {
		t.Skip("ELASTICSEARCH_URL is not set; these tests need a real Elasticsearch")
	}
	sim, err := simulator.New(simulator.Options{Seed: 5, Domains: 1, Mailboxes: 2, Messages: 4,
		Alerts: simulator.AlertOptions{Attachment: 20, URL: 10, Impersonation: 6, DLP: 4, Threats: 4, SIEM: 30, Span: 2 * time.Hour}})
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
  client_secret: demo-secret
elasticsearch:
  addresses: [%q]
  index_prefix: %s
  bulk:
    flush_interval: 100ms
state:
  path: %s
  lock_timeout: 1s
alerts:
  sources: [attachment_protection, url_protection, impersonation, dlp, threats, siem]
`, srv.URL, esURL, w.prefix, w.state)
	w.config = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { indextest.Remove(t, esURL, w.prefix) })
	return w
}

// alerts --once runs while a crawl holds the crawl's state file, reports per source, and
// status and check show the cursors and a forbidden source.
func TestAlertsOnceBesideACrawl(t *testing.T) {
	w := alertsWorld(t)
	crawlState, err := state.Open(w.state, state.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.sim.SetForbidden([]string{"/api/dlp/get-logs"})
	code, out, logs := w.run("alerts", "--once")
	out0 := out
	_ = crawlState.Close()
	if code != 0 {
		t.Fatalf("alerts --once exit %d, want 0 (a 403 source is reported, not a failure)\n%s\n%s", code, out, logs)
	}
	for _, want := range []string{"mimecrawl alerts summary", "attachment_protection", "alerts indexed", "cursor since",
		"dlp                    not permitted for this API application (needs Monitoring | Data Leak Prevention | Read)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = w.run("status")
	if code != 0 || !strings.Contains(out, "alerts ("+w.state+".alerts)") || !strings.Contains(out, "alerts/attachment_protection") ||
		!strings.Contains(out, "alerts/siem/batch/av") {
		t.Errorf("status exit %d lacks the alerts section:\n%s", code, out)
	}
	if !strings.Contains(out, "not permitted for this API application") {
		t.Errorf("status does not name the forbidden source:\n%s", out)
	}
	boxes := func() []string {
		st, err := state.Open(w.state+".alerts", state.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		m, err := st.Mailboxes()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := boxes(); len(m) != 0 {
		t.Errorf("alert cursors listed as mailboxes: %v", m)
	}

	t.Logf("alerts summary:\n%s", out0)
	code, out, _ = w.run("check")
	if !strings.Contains(out, "ok    alerts source attachment_protection") || !strings.Contains(out, "warn  alerts source dlp") {
		t.Errorf("check (exit %d) should pass the readable sources and warn about dlp:\n%s", code, out)
	}
}
