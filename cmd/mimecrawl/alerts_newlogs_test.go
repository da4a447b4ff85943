package main

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// The event sources of the archive access audit, held-message releases, the threat-intel
// feeds and Cloud Integrated SIEM, through the command.

// newLogSources are their names in alerts.sources.
var newLogSources = []alerts.Source{alerts.ArchiveSearchLogs, alerts.ArchiveSearches, alerts.ArchiveViewLogs,
	alerts.HeldRelease, alerts.ThreatIntelCustomer, alerts.ThreatIntelGrid, alerts.SIEMCI}

// withSources rewrites the world's alerts.sources.
func withSources(t *testing.T, w *world, sources ...alerts.Source) {
	t.Helper()
	b, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(sources))
	for i, s := range sources {
		names[i] = string(s)
	}
	re := regexp.MustCompile(`(?m)^  sources: \[.*\]$`)
	if !re.Match(b) {
		t.Fatal("the world's config has no alerts.sources line")
	}
	b = re.ReplaceAll(b, []byte("  sources: ["+strings.Join(names, ", ")+"]"))
	if err := os.WriteFile(w.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// eventIDs returns the ids of the documents of one data stream (alerts or events).
func eventIDs(t *testing.T, w *world, dataset string) []string {
	t.Helper()
	esURL := os.Getenv("ELASTICSEARCH_URL")
	name := "logs-" + dataset + "-" + indextest.Namespace(w.prefix)
	res, err := http.Post(esURL+"/"+name+"/_refresh?ignore_unavailable=true&allow_no_indices=true", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	res, err = http.Get(esURL + "/" + name + "/_search?size=10000&_source=false&ignore_unavailable=true&allow_no_indices=true")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(body.Hits.Hits))
	for _, h := range body.Hits.Hits {
		ids = append(ids, h.ID)
	}
	return ids
}

// compareEvents checks that each data stream of the new sources holds the decoded ids of
// the simulator's truth, each once.
func compareEvents(t *testing.T, w *world) {
	t.Helper()
	want := map[string]map[string]bool{} // dataset → ids
	for _, ta := range w.sim.AlertTruth("") {
		src := alerts.Source(ta.Source)
		if !slices.Contains(newLogSources, src) {
			continue
		}
		sp, _ := alerts.Spec(src)
		ev, err := alerts.Decode(src, ta.Record)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if want[sp.Dataset] == nil {
			want[sp.Dataset] = map[string]bool{}
		}
		want[sp.Dataset][ev.ID] = true
	}
	if len(want) != 6 { // six streams: the two feeds share one
		t.Fatalf("the truth fills %d data streams, want 6", len(want))
	}
	for dataset, ids := range want {
		got := map[string]bool{}
		for _, id := range eventIDs(t, w, dataset) {
			if got[id] || !ids[id] {
				t.Errorf("%s: event %s indexed twice or not in the truth", dataset, id)
			}
			got[id] = true
		}
		if len(got) != len(ids) {
			t.Errorf("%s: %d events in the truth, %d indexed", dataset, len(ids), len(got))
		}
	}
}

// SIGKILL the long-running poller at random points, then one pass to the end: each new
// source's data stream holds exactly the simulator's truth, each event once. Empty pages
// with tokens are on (legacy logs and the threat-intel feed).
func TestAlertsNewLogsKillAndResume(t *testing.T) {
	w := alertsWorldWith(t, simulator.AlertOptions{Span: 6 * time.Hour, SIEMFileEvents: 7,
		Paging: simulator.AlertPaging{EmptyPages: true},
		Logs: simulator.LogOptions{ArchiveSearch: 700, Search: 300, View: 400, HeldRelease: 600,
			ThreatIntelCustomer: 600, ThreatIntelGrid: 300, SIEMCI: 900, ThreatIntelPageSize: 10}})
	withSources(t, w, newLogSources...)
	// Every call takes a while, so that a pass lasts seconds and the kills land inside it.
	w.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/", LatencyMS: 40}, {PathPrefix: "/siem/", LatencyMS: 40}})
	bin := mimecrawlBinary(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("KILL_TEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("KILL_TEST_SEED %q: %v", v, err)
		}
		seed = n
	}
	t.Logf("kill schedule seed %d (set KILL_TEST_SEED=%d to repeat it)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 11))
	for i := range 3 {
		cmd := exec.Command(bin, "alerts", "--config", w.config, "--log-format", "json")
		cmd.Env = childEnv()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The binary takes a second or two to start (templates, data streams); the kills
		// land while it reads and writes (the log shows how many events each left behind).
		time.Sleep(time.Duration(1500+r.IntN(3000)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		n := 0
		for _, ds := range []string{alerts.ArchiveSearchLogsDataset, alerts.ArchiveSearchesDataset, alerts.ArchiveViewLogsDataset,
			alerts.HeldReleaseDataset, alerts.ThreatIntelDataset, alerts.SIEMCIDataset} {
			n += len(eventIDs(t, w, ds))
		}
		t.Logf("killed run %d; %d events indexed so far", i, n)
	}
	w.sim.SetFaults(nil)
	if code, out, logs := w.run("alerts", "--once"); code != 0 {
		t.Fatalf("alerts --once after kills: exit %d\n%s\n%s", code, out, logs)
	}
	compareEvents(t, w)
}

// A 403 on the view log, the release log and the threat-intel feed, and an account without
// Cloud Integrated, are reported per source with the permission each lacks; the other new
// sources are indexed; check names the permissions too.
func TestAlertsNewLogsForbiddenIsolated(t *testing.T) {
	w := alertsWorldWith(t, simulator.AlertOptions{Span: 2 * time.Hour,
		Logs: simulator.LogOptions{ArchiveSearch: 10, Search: 5, View: 6, HeldRelease: 8, ThreatIntelCustomer: 9,
			ThreatIntelGrid: 4, SIEMCI: 12, CINotLicensed: "bad_request"}})
	withSources(t, w, newLogSources...)
	w.sim.SetForbidden([]string{"/api/gateway/get-held-release-logs", "/api/ttp/threat-intel/get-feed", "/api/archive/get-view-logs"})
	code, out, logs := w.runText("alerts", "--once")
	if code != 0 {
		t.Fatalf("alerts --once exit %d, want 0 (refused sources are reported, not a failure)\n%s\n%s", code, out, logs)
	}
	for _, want := range []string{
		"not permitted for this API application (needs Gateway | Held Messages | Read)",
		"not permitted for this API application (needs Archive | View Logs | Read)",
		"not permitted for this API application (needs Services | Threat Intelligence | Read)",
		"not permitted for this API application (needs Security Events and Data Retrieval | Threat and Security Events (SIEM) for Cloud Integrated | Read)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, ds := range []string{alerts.ArchiveSearchLogsDataset, alerts.ArchiveSearchesDataset} {
		if n := len(eventIDs(t, w, ds)); n == 0 {
			t.Errorf("%s: nothing indexed beside the refused sources", ds)
		}
	}
	for _, ds := range []string{alerts.ArchiveViewLogsDataset, alerts.HeldReleaseDataset, alerts.ThreatIntelDataset, alerts.SIEMCIDataset} {
		if n := len(eventIDs(t, w, ds)); n != 0 {
			t.Errorf("%s: %d events from a refused source", ds, n)
		}
	}
	code, out, _ = w.run("check")
	for _, want := range []string{"ok    alerts source archive_search_logs", "warn  alerts source held_release_logs",
		`"Gateway | Held Messages | Read"`, "warn  alerts source threat_intel_malware_customer",
		`"Services | Threat Intelligence | Read"`, "warn  alerts source siem_ci", "for Cloud Integrated | Read",
		"warn  alerts source archive_view_logs", `"Archive | View Logs | Read"`} {
		if !strings.Contains(out, want) {
			t.Errorf("check (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
}
