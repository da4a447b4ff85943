package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// roller rolls a kind's data stream over after the calls it is told to (counted from 1),
// between reading a page and writing it.
type roller struct {
	w     *world
	kind  index.Kind
	at    map[int64]bool
	calls atomic.Int64
	done  atomic.Int64
}

// call counts one page read and rolls the data stream over when told to; its error is the
// rollover's request failing.
func (r *roller) call() error {
	if n := r.calls.Add(1); !r.at[n] {
		return nil
	}
	// On the source's goroutine: Errorf, not Fatal.
	res, err := http.Post(r.w.esURL+"/"+r.w.cluster.IndexName(r.kind)+"/_rollover", "application/json", nil)
	if err != nil {
		r.w.t.Errorf("rollover: %v", err)
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		r.w.t.Errorf("rollover: status %d", res.StatusCode)
	} else {
		r.done.Add(1)
	}
	return nil
}

// rollingLogs rolls the alerts' data stream over after the pages it is told to.
type rollingLogs struct {
	alerts.LogSource
	roller
}

func (r *rollingLogs) SecurityLogs(ctx context.Context, k mimecast.LogKind, q mimecast.LogQuery) (mimecast.Page, error) {
	p, err := r.LogSource.SecurityLogs(ctx, k, q)
	if rerr := r.call(); rerr != nil {
		return p, rerr
	}
	return p, err
}

// Idempotence survives rollover: a second pass re-reads the overlap of the first while the
// data stream rolls over twice in the middle of that re-read (after its first and its third
// page). op_type create alone would accept every re-read alert again in the new backing
// index; the index must still hold each alert once, and the second pass index nothing.
func TestEndToEndRolloverDuringOverlapReRead(t *testing.T) {
	w := newWorld(t, simulator.AlertOptions{Enabled: true}, alerts.AttachmentProtection)
	now := time.Now().UTC().Truncate(time.Second)
	var recs []json.RawMessage
	for i := range 90 {
		recs = append(recs, attachment(fmt.Sprintf("u%d@corp.example", i), fmt.Sprintf("%064x", i+1), fmt.Sprintf("f%d.pdf", i), "malicious"))
	}
	// Within the overlap (10 minutes) of the first pass's cursor: all of them are re-read.
	if _, err := w.sim.AddAlerts(simulator.SourceAttachment, recs, now.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	first := w.pass(context.Background())
	if s := first.Sources[0]; s.Error != "" || s.Indexed == 0 {
		t.Fatalf("first pass = %+v", s)
	}
	want := w.expected()
	compare(t, w.indexed(), want)

	roll := &rollingLogs{roller: roller{w: w, kind: alerts.AlertsKind, at: map[int64]bool{1: true, 3: true}}}
	w.logs = func(l alerts.LogSource) alerts.LogSource { roll.LogSource = l; return roll }
	second := w.pass(context.Background())
	s := second.Sources[0]
	if roll.done.Load() != 2 {
		t.Fatalf("rolled over %d times during the re-read (%d pages read); want 2", roll.done.Load(), roll.calls.Load())
	}
	if s.Error != "" || s.Indexed != 0 || s.Existing == 0 {
		t.Errorf("second pass = %+v; want nothing indexed, the re-read alerts existing", s)
	}
	var backing struct {
		DataStreams []struct {
			Backing []string `json:"backing_indices"`
		} `json:"data_streams"`
	}
	w.get("/_resolve/index/"+w.cluster.IndexName(alerts.AlertsKind), &backing)
	if len(backing.DataStreams) != 1 || len(backing.DataStreams[0].Backing) < 3 {
		t.Errorf("data stream = %+v; want 3 backing indices", backing)
	}
	compare(t, w.indexed(), want) // fails on an alert listed twice
}

// rollingAudit rolls the audit events' data stream over after the pages it is told to.
type rollingAudit struct {
	alerts.AuditReader
	roller
}

func (r *rollingAudit) AuditEvents(ctx context.Context, q mimecast.AuditQuery) (mimecast.Page, error) {
	p, err := r.AuditReader.AuditEvents(ctx, q)
	if rerr := r.call(); rerr != nil {
		return p, rerr
	}
	return p, err
}

// The same for an event source: audit events re-read in the overlap while their own data
// stream rolls over twice are not written again (the lookup is per data stream).
func TestEndToEndAuditRolloverDuringOverlapReRead(t *testing.T) {
	w := newWorld(t, simulator.AlertOptions{Enabled: true}, alerts.Audit)
	now := time.Now().UTC().Truncate(time.Second)
	var recs []json.RawMessage
	for i := range 90 {
		b, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("eNq%04d", i), "auditType": "User Logged On",
			"user": fmt.Sprintf("u%d@corp.example", i), "eventInfo": fmt.Sprintf("Successful authentication, IP: 198.51.100.%d", i+1),
			"category": "authentication_logs"})
		recs = append(recs, b)
	}
	if _, err := w.sim.AddAlerts(simulator.SourceAudit, recs, now.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	first := w.pass(context.Background())
	if s := first.Sources[0]; s.Error != "" || s.Indexed != 90 {
		t.Fatalf("first pass = %+v; want 90 indexed", s)
	}
	want := w.expected()
	if len(want) != 90 {
		t.Fatalf("the truth gives %d audit events, want 90", len(want))
	}
	compare(t, w.indexed(), want)

	roll := &rollingAudit{roller: roller{w: w, kind: alerts.AuditKind, at: map[int64]bool{1: true, 3: true}}}
	w.api = func(c *mimecast.Client) any { roll.AuditReader = c; return roll }
	second := w.pass(context.Background())
	s := second.Sources[0]
	if roll.done.Load() != 2 {
		t.Fatalf("rolled over %d times during the re-read (%d pages read); want 2", roll.done.Load(), roll.calls.Load())
	}
	if s.Error != "" || s.Indexed != 0 || s.Existing != 90 {
		t.Errorf("second pass = %+v; want nothing indexed, the 90 re-read events existing", s)
	}
	compare(t, w.indexed(), want) // fails on an event listed twice
}

// securityDefaultIndex is the default of Kibana 8's advanced setting
// securitySolution:defaultIndex: the index patterns the Security app and its prebuilt rules
// (External Alerts among them) search unless an administrator changes them.
var securityDefaultIndex = []string{"apm-*-transaction*", "auditbeat-*", "endgame-*", "filebeat-*", "logs-*",
	"packetbeat-*", "traces-apm*", "winlogbeat-*", "-*elastic-endpoint-security*"}

// After a pass, Elastic Security's prebuilt External Alerts rule (query event.kind:alert over
// the default index patterns) finds exactly our alerts, with severity and risk score: none of
// the archive's documents, which share the cluster (a message document of this installation
// is written here to prove it). The test's namespace, which isolates it from other tests on
// the cluster, is the only filter added to the default patterns.
func TestEndToEndExternalAlertsRuleFindsOurAlerts(t *testing.T) {
	w := newWorld(t, seeded())
	ctx := context.Background()
	// An archive document of the same installation, dated now; it must not be found.
	w.do(http.MethodPut, "/"+w.cluster.IndexName(index.Messages)+"/_doc/archived?refresh=true",
		fmt.Sprintf(`{"@timestamp":%q,"event":{"kind":"event","category":["email"]},"email":{"subject":"archived"}}`, time.Now().UTC().Format(time.RFC3339)))
	sum := w.pass(ctx)
	for _, s := range sum.Sources {
		if s.Error != "" {
			t.Errorf("%s: %s", s.Source, s.Error)
		}
	}
	want := w.expected()
	events := 0
	for id, v := range want {
		if strings.HasPrefix(v, "event ") {
			delete(want, id) // events (audit, archive access, ...) are not alerts: the rule must not find them
			events++
		}
	}
	// Some event sources' records are alerts by ECS (a flagged message released, a CI
	// detection): written to their own data stream with event.kind alert, the rule finds them.
	eventAlerts := map[string]string{} // id → dataset
	for _, ta := range w.sim.AlertTruth("") {
		sp, ok := alerts.Spec(alerts.Source(ta.Source))
		if !ok || sp.Records != alerts.RecordEvents {
			continue
		}
		if ev, err := alerts.Decode(sp.Name, ta.Record); err == nil {
			if e, _ := ev.Body["event"].(map[string]any); e != nil && e["kind"] == "alert" {
				want[ev.ID] = "event alert"
				eventAlerts[ev.ID] = sp.Dataset
			}
		}
	}
	if len(want) == 0 || events == 0 || len(eventAlerts) == 0 {
		t.Fatalf("the simulator's truth has %d alerts (%d of event sources) and %d events; want all three", len(want), len(eventAlerts), events)
	}
	w.indexed() // refreshes
	var res struct {
		Hits struct {
			Hits []struct {
				ID     string `json:"_id"`
				Index  string `json:"_index"`
				Source struct {
					Event struct {
						Kind      string  `json:"kind"`
						Severity  int     `json:"severity"`
						RiskScore float64 `json:"risk_score"`
						Dataset   string  `json:"dataset"`
					} `json:"event"`
					Rule struct {
						Name string `json:"name"`
					} `json:"rule"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	query := fmt.Sprintf(`{"size":10000,"query":{"bool":{"must":[{"query_string":{"query":"event.kind:alert"}}],`+
		`"filter":[{"term":{"data_stream.namespace":%q}}]}}}`, w.cluster.Namespace())
	w.search(strings.Join(securityDefaultIndex, ","), query, &res)
	got := map[string]bool{}
	for _, h := range res.Hits.Hits {
		if got[h.ID] {
			t.Errorf("alert %s found twice", h.ID)
		}
		got[h.ID] = true
		if _, ok := want[h.ID]; !ok {
			t.Errorf("the External Alerts query found %s in %s, which is not one of our alerts", h.ID, h.Index)
		}
		e := h.Source.Event
		if ds, ok := eventAlerts[h.ID]; ok {
			if e.Kind != "alert" || e.Severity == 0 || e.RiskScore == 0 || e.Dataset != ds {
				t.Errorf("event source alert %s: event = %+v; want kind alert, severity and risk score set, dataset %s", h.ID, e, ds)
			}
			continue
		}
		if e.Kind != "alert" || e.Severity == 0 || e.RiskScore == 0 || e.Dataset != alerts.Dataset || h.Source.Rule.Name == "" {
			t.Errorf("alert %s: event = %+v, rule.name %q; want kind alert, severity and risk score set, dataset %s", h.ID, e, h.Source.Rule.Name, alerts.Dataset)
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("alert %s is not found by the External Alerts query", id)
		}
	}
}

// search posts a search body to Elasticsearch.
func (w *world) search(indices, body string, out any) {
	w.t.Helper()
	res, err := http.Post(w.esURL+"/"+indices+"/_search?ignore_unavailable=true&allow_no_indices=true", "application/json", strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		w.t.Fatalf("search %s: %d %s", indices, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		w.t.Fatal(err)
	}
}

// An installation upgraded from the release that wrote {prefix}-alerts: that index stays,
// readable, and what it holds is not written to the data stream again when the first passes
// after the upgrade re-read it (here every alert: the old index holds them all).
func TestEndToEndUpgradeKeepsOldAlertsOnce(t *testing.T) {
	w := newWorld(t, simulator.AlertOptions{Enabled: true}, alerts.AttachmentProtection)
	now := time.Now().UTC().Truncate(time.Second)
	var recs []json.RawMessage
	for i := range 30 {
		recs = append(recs, attachment(fmt.Sprintf("u%d@corp.example", i), fmt.Sprintf("%064x", i+100), fmt.Sprintf("f%d.pdf", i), "malicious"))
	}
	if _, err := w.sim.AddAlerts(simulator.SourceAttachment, recs, now.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := w.expected()
	legacy := w.cluster.LegacyName(alerts.AlertsKind)
	var bulk strings.Builder
	for id := range want {
		fmt.Fprintf(&bulk, "{\"create\":{\"_index\":%q,\"_id\":%q}}\n{\"event\":{\"kind\":\"alert\"}}\n", legacy, id)
	}
	w.do(http.MethodPost, "/_bulk?refresh=true", bulk.String())

	sum := w.pass(context.Background())
	if s := sum.Sources[0]; s.Error != "" || s.Indexed != 0 || s.Existing != int64(len(want)) {
		t.Errorf("pass = %+v; want the %d alerts of the old index existing, none indexed", s, len(want))
	}
	var count struct {
		Count int `json:"count"`
	}
	w.get("/"+legacy+"/_count", &count)
	if count.Count != len(want) {
		t.Errorf("old index holds %d alerts; want %d", count.Count, len(want))
	}
	// One more alert after the upgrade goes to the stream.
	if _, err := w.sim.AddAlerts(simulator.SourceAttachment, []json.RawMessage{attachment("new@corp.example", strings.Repeat("0f", 32), "n.pdf", "malicious")}, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if s := w.pass(context.Background()).Sources[0]; s.Indexed != 1 {
		t.Errorf("pass after the upgrade = %+v; want the new alert indexed", s)
	}
}
