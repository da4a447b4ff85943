package alerts_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// Nothing passed in silence, end to end: the simulator over HTTP, real Elasticsearch.

// do sends one request to Elasticsearch and fails the test on an error status.
func (w *world) do(method, path, body string) {
	w.t.Helper()
	w.doStatus(method, path, body, 0)
}

// doStatus sends a request to Elasticsearch and fails the test unless the answer is a
// success or the status allowed.
func (w *world) doStatus(method, path, body string, allowed int) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.esURL+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 && res.StatusCode != allowed {
		w.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
}

// Finding 6: a mapping conflict from an operator's @custom template (mimecast.source mapped
// as a number) makes Elasticsearch refuse every alert for good. They are parked and
// counted and the pass fails (exit 3); once the conflict is gone (template removed, the
// stream rolled over to a backing index with the fixed mapping) the next pass writes them:
// index = truth.
func TestEndToEndRefusedAlertsParkedUntilFixed(t *testing.T) {
	w := newWorld(t, seeded(), alerts.AttachmentProtection, alerts.URLProtection)
	ctx := context.Background()
	custom := "/_component_template/" + w.cluster.CustomTemplate(alerts.AlertsKind)
	remake := func() {
		// A new backing index takes the templates as they are now (the stream may not
		// exist before its first write).
		w.doStatus(http.MethodPost, "/"+w.cluster.IndexName(alerts.AlertsKind)+"/_rollover", "", http.StatusNotFound)
		if err := w.cluster.Ensure(ctx, alerts.AlertsKind); err != nil {
			t.Fatal(err)
		}
	}
	w.do(http.MethodPut, custom, `{"template":{"mappings":{"properties":{"mimecast":{"properties":{"source":{"type":"long"}}}}}}}`)
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, w.esURL+custom, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	})
	remake()

	sum := w.pass(ctx)
	for _, s := range sum.Sources {
		if s.Rejected == 0 || s.Pending != s.Rejected || s.Indexed != 0 {
			t.Errorf("%s = %+v; want every kept alert refused and parked", s.Source, s)
		}
	}
	if !sum.Failed() {
		t.Error("a pass with refused alerts did not fail")
	}
	st, err := alerts.Statuses(w.store)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st {
		if c.Pending == 0 {
			t.Errorf("status of %s shows nothing pending", c.Name)
		}
	}

	w.do(http.MethodDelete, custom, "")
	remake()
	sum = w.pass(ctx)
	for _, s := range sum.Sources {
		if s.Pending != 0 || s.Rejected != 0 {
			t.Errorf("after the fix %s = %+v", s.Source, s)
		}
	}
	if sum.Failed() {
		t.Error("the pass after the fix failed")
	}
	compare(t, w.indexed(), w.expected())
}

// Finding 5: the details endpoint answers 503 to every try (the client's retries
// included). The threat alerts are indexed at once without details, parked and counted;
// when the endpoint recovers, the next pass writes each of them over with its details.
func TestEndToEndThreatDetailsRecovered(t *testing.T) {
	w := newWorld(t, simulator.AlertOptions{Threats: 30, Span: seeded().Span}, alerts.Threats)
	w.sim.SetFaults([]simulator.Fault{{PathPrefix: "/threats/v1/events/", Status: 503}})
	sum := w.pass(context.Background())
	s := sum.Sources[0]
	want := w.expected()
	if s.Pending != int64(len(want)) || !sum.Failed() {
		t.Fatalf("summary = %+v; want all %d alerts pending, the pass failed", s, len(want))
	}
	compare(t, w.indexed(), want) // searchable at once, without details

	w.sim.SetFaults(nil)
	sum = w.pass(context.Background())
	if s := sum.Sources[0]; s.Pending != 0 || sum.Failed() {
		t.Fatalf("after recovery = %+v", s)
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Source struct {
					Event struct {
						Original string `json:"original"`
					} `json:"event"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	w.indexed() // refresh
	w.get("/"+w.cluster.IndexName(alerts.AlertsKind)+"/_search?size=1000", &res)
	if len(res.Hits.Hits) != len(want) {
		t.Fatalf("%d alerts, want %d", len(res.Hits.Hits), len(want))
	}
	for _, h := range res.Hits.Hits {
		if !bytes.Contains([]byte(h.Source.Event.Original), []byte(`"_details"`)) {
			t.Errorf("alert still without details: %.120s", h.Source.Event.Original)
		}
	}
}

// Finding 4: SIEM batch files served as plain NDJSON (no gzip, no newline after the last
// line) are read; the one malformed file is parked and read again on the next passes, and
// skipped for good, counted, at its third failed read. The index equals the truth from the
// first pass on.
func TestEndToEndSIEMPlainFilesAndUnreadableFile(t *testing.T) {
	o := seeded()
	o.SIEMPlainFiles = true
	w := newWorld(t, o, alerts.SIEM)
	// The simulator's malformed file holds receipt events; keep_low keeps them.
	w.siemTypes = []string{"receipt", "av"}
	w.cfg.KeepLow = true
	rules, err := alerts.NewRules(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.rules = rules
	w.opts = func(o *alerts.Options) { o.SIEMTypes = w.siemTypes }
	want := w.expected()
	for pass := 1; pass <= 4; pass++ {
		sum := w.pass(context.Background())
		s := sum.Sources[0]
		if s.Error != "" {
			t.Fatalf("pass %d: %+v", pass, s)
		}
		switch {
		case pass < 3 && (s.FilesPending != 1 || s.FilesSkipped != 0 || !sum.Failed()):
			t.Errorf("pass %d = %+v; want the malformed file parked, the pass failed", pass, s)
		case pass == 3 && (s.FilesPending != 0 || s.FilesSkipped != 1 || sum.Failed()):
			t.Errorf("pass 3 = %+v; want the malformed file skipped for good", s)
		case pass == 4 && (s.FilesPending != 0 || s.FilesSkipped != 0):
			t.Errorf("pass 4 = %+v; want nothing left", s)
		}
		compare(t, w.indexed(), want)
	}
}
