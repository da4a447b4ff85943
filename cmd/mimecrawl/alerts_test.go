package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// alertsWorld is a simulator with seeded alerts, the real Elasticsearch and a config file.
func alertsWorld(t *testing.T) *world {
	t.Helper()
	return alertsWorldWith(t, simulator.AlertOptions{Attachment: 20, URL: 10, Impersonation: 6, DLP: 4, Threats: 4, SIEM: 30, Audit: 10, Span: 2 * time.Hour})
}

func alertsWorldWith(t *testing.T, ao simulator.AlertOptions) *world {
	t.Helper()
	esURL := indextest.URL(t)
	sim, err := simulator.New(simulator.Options{Seed: 5, Domains: 1, Mailboxes: 2, Messages: 4, Alerts: ao})
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
messages:
  start_date: "2020-01-01"
elasticsearch:
  addresses: [%q]
  index_prefix: %s
  namespace: %s
  bulk:
    flush_interval: 100ms
state:
  path: %s
  lock_timeout: 1s
alerts:
  sources: [attachment_protection, url_protection, impersonation, dlp, threats, siem, audit]
`, srv.URL, esURL, w.prefix, indextest.Namespace(w.prefix), w.state)
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
	w.sim.SetForbidden([]string{"/api/dlp/get-logs", "/api/audit/get-audit-events"})
	code, out, logs := w.runText("alerts", "--once")
	out0 := out
	_ = crawlState.Close()
	if code != 0 {
		t.Fatalf("alerts --once exit %d, want 0 (a 403 source is reported, not a failure)\n%s\n%s", code, out, logs)
	}
	for _, want := range []string{"mimecrawl alerts summary", "attachment_protection", "alerts indexed", "cursor since",
		"dlp                    not permitted for this API application (needs Monitoring | Data Leak Prevention | Read)",
		"audit                  not permitted for this API application (needs Account | Logs | Read)"} {
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
	// An installation upgraded from the release that wrote {prefix}-alerts: check names that
	// index, which stays readable.
	legacy := w.prefix + "-alerts"
	res, err := http.Post(os.Getenv("ELASTICSEARCH_URL")+"/"+legacy+"/_doc/old?refresh=true", "application/json",
		strings.NewReader(`{"event":{"kind":"alert"}}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	code, out, _ = w.run("check")
	if !strings.Contains(out, "ok    alerts source attachment_protection") || !strings.Contains(out, "warn  alerts source dlp") {
		t.Errorf("check (exit %d) should pass the readable sources and warn about dlp:\n%s", code, out)
	}
	// check probes the audit log and names the permission it lacks.
	if !strings.Contains(out, "warn  alerts source audit") || !strings.Contains(out, `"Account | Logs | Read"`) {
		t.Errorf("check (exit %d) should warn about audit, naming its permission:\n%s", code, out)
	}
	stream := "logs-" + alerts.Dataset + "-" + indextest.Namespace(w.prefix)
	if !strings.Contains(out, stream+", where Elastic Security looks; "+legacy+", written by an earlier release, keeps its 1 alert readable") {
		t.Errorf("check does not name the data stream and the old alerts index:\n%s", out)
	}
}

// SIGKILL the long-running poller at random points, then one pass to the end: the alerts
// index holds exactly what the rules keep of the simulator's truth, each alert once.
func TestAlertsKillAndResume(t *testing.T) {
	// With the paging variants on: empty pages carrying tokens, the threat feed as events[]
	// with nextPageToken and a total.
	w := alertsWorldWith(t, simulator.AlertOptions{Attachment: 1500, URL: 600, Impersonation: 100, DLP: 100, Threats: 100, SIEM: 600, Audit: 4000, Span: 6 * time.Hour,
		ThreatsWrapper: "events", Paging: simulator.AlertPaging{EmptyPages: true, TokenKey: "nextPageToken", TotalKey: "total"}})
	bin := mimecrawlBinary(t)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := range 3 {
		cmd := exec.Command(bin, "alerts", "--config", w.config, "--log-format", "json")
		cmd.Env = childEnv()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+r.IntN(1500)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cursors := "none yet"
		if st, err := state.Open(w.state+".alerts", state.Options{ReadOnly: true, LockTimeout: time.Second}); err == nil {
			if cs, err := alerts.Statuses(st); err == nil && len(cs) > 0 {
				cursors = cs[0].Name + " " + cs[0].Position
				for _, c := range cs {
					if c.Name == alerts.CursorName(alerts.Audit, "") {
						cursors += "; " + c.Name + " " + c.Position // mid-window: killed inside its pass
					}
				}
			}
			_ = st.Close()
		}
		t.Logf("killed run %d; cursors: %s", i, cursors)
	}
	if code, out, logs := w.run("alerts", "--once"); code != 0 {
		t.Fatalf("alerts --once after kills: exit %d\n%s\n%s", code, out, logs)
	}

	cfg, err := config.Load(w.config, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	rules, err := alerts.NewRules(cfg.Alerts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	wantEvents := map[string]bool{} // the audit log's, in its own data stream
	for _, ta := range w.sim.AlertTruth("") {
		if ta.Source == simulator.SourceAudit {
			if ev, err := alerts.Decode(alerts.Audit, ta.Record); err == nil {
				wantEvents[ev.ID] = true
			}
			continue
		}
		a, err := alerts.Normalize(alerts.Source(ta.Source), ta.Record)
		if err != nil || (a.Source == alerts.SIEM && !slices.Contains(alerts.DefaultSIEMTypes, a.Type)) {
			continue
		}
		if rules.Decide(&a).Keep {
			want[a.ID] = true
		}
	}
	ids := eventIDs(t, w, alerts.Dataset) // the alerts' data stream
	got := map[string]bool{}
	for _, id := range ids {
		got[id] = true
		if !want[id] {
			t.Errorf("alert %s indexed but not in the truth kept by the rules", id)
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("alert %s lost", id)
		}
	}
	if len(want) == 0 || len(got) != len(ids) {
		t.Errorf("%d expected, %d hits, %d distinct", len(want), len(ids), len(got))
	}
	// The audit events: every one of the truth in their data stream, once.
	gotEvents := map[string]bool{}
	for _, id := range eventIDs(t, w, alerts.AuditDataset) {
		if gotEvents[id] || !wantEvents[id] {
			t.Errorf("audit event %s indexed twice or not in the truth", id)
		}
		gotEvents[id] = true
	}
	if len(wantEvents) != 4000 || len(gotEvents) != len(wantEvents) {
		t.Errorf("%d audit events in the truth (want 4000), %d indexed", len(wantEvents), len(gotEvents))
	}
}

// SIGTERM ends the long-running poller within performance.shutdown_grace, with exit code 0
// and the summary of its last pass.
func TestAlertsSIGTERM(t *testing.T) {
	w := alertsWorldWith(t, simulator.AlertOptions{Attachment: 3000, Span: 6 * time.Hour})
	bin := mimecrawlBinary(t)
	var out strings.Builder
	cmd := exec.Command(bin, "alerts", "--config", w.config, "--log-format", "console")
	cmd.Env = childEnv()
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // inside the first pass (3,000 events take seconds)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("alerts after SIGTERM: %v (want exit 0)\n%s", err, out.String())
		}
	case <-time.After(30*time.Second + 10*time.Second): // the default grace, plus start-up
		_ = cmd.Process.Kill()
		t.Fatal("alerts did not stop within the shutdown grace after SIGTERM")
	}
	if !strings.Contains(out.String(), "mimecrawl alerts summary") {
		t.Errorf("no summary after SIGTERM:\n%s", out.String())
	}
}

// Alerts about archived messages link to them once the crawl has indexed them: their
// subject and document id come from the messages index, with no extra API call; internal
// recipients are named from the directory.
func TestAlertsLinkArchivedMessages(t *testing.T) {
	w := alertsWorldWith(t, simulator.AlertOptions{Attachment: 60, URL: 30, Span: 2 * time.Hour})
	if code, out, logs := w.run("crawl"); code != 0 {
		t.Fatalf("crawl exit %d\n%s\n%s", code, out, logs)
	}
	// What a crawl indexed becomes searchable at the index's next refresh; a poll minutes
	// later sees it, this one runs at once.
	esURL := os.Getenv("ELASTICSEARCH_URL")
	if _, err := http.Post(esURL+"/"+w.prefix+"-messages/_refresh", "application/json", nil); err != nil {
		t.Fatal(err)
	}
	if code, out, logs := w.run("alerts", "--once"); code != 0 {
		t.Fatalf("alerts exit %d\n%s\n%s", code, out, logs)
	}
	name := "logs-" + alerts.Dataset + "-" + indextest.Namespace(w.prefix) // the alerts' data stream
	if _, err := http.Post(esURL+"/"+name+"/_refresh", "application/json", nil); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(esURL + "/" + name + "/_search?size=1000&_source=mimecast.archive,mimecast.recipient")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Hits struct {
			Hits []struct {
				Source struct {
					Mimecast struct {
						Archive struct {
							ID, Index, Subject string
						} `json:"archive"`
						Recipient struct {
							Name, Domain, Mailbox string
						} `json:"recipient"`
					} `json:"mimecast"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	linked, named := 0, 0
	for _, h := range body.Hits.Hits {
		if r := h.Source.Mimecast.Recipient; r.Name != "" && r.Mailbox != "" && r.Domain != "" {
			named++
		}
		a := h.Source.Mimecast.Archive
		if a.ID == "" {
			continue
		}
		linked++
		if a.Index != w.prefix+"-messages" || a.Subject == "" {
			t.Errorf("archive link %+v: want the messages index and the subject", a)
		}
		var doc struct {
			Found bool `json:"found"`
		}
		r, err := http.Get(esURL + "/" + a.Index + "/_doc/" + url.PathEscape(a.ID) + "?_source=false")
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(r.Body).Decode(&doc)
		r.Body.Close()
		if !doc.Found {
			t.Errorf("archive link %s points at no document", a.ID)
		}
	}
	if linked == 0 {
		t.Errorf("none of %d alerts links to an archived message; the simulator refers a third of them to archived mail", len(body.Hits.Hits))
	}
	if named == 0 {
		t.Errorf("no alert names its recipient from the directory")
	}
	t.Logf("%d of %d alerts link to the archive, %d name their recipient", linked, len(body.Hits.Hits), named)
}
