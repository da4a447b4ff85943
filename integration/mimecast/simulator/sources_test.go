package simulator

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// TestSourceTableMatchesAlerts checks that every source of the poller's table has its
// simulator counterpart and the other way round, that every endpoint the poller's spec names
// is served by the simulator, and that the client declares the permission of every endpoint
// the simulator serves for a source (so a 403 names it).
func TestSourceTableMatchesAlerts(t *testing.T) {
	var sim []string
	served := map[string]bool{threatDetailsTemplate: true}
	for _, src := range simSources {
		if slices.Contains(sim, src.name) {
			t.Errorf("source %q is in the simulator's table twice", src.name)
		}
		sim = append(sim, src.name)
		if src.timeField == "" || src.format == nil || src.gen == nil {
			t.Errorf("source %q: a spec needs timeField, format and gen", src.name)
		}
		for path := range src.api {
			served[path] = true
		}
		for path := range src.rest {
			served[path] = true
		}
	}
	want := alerts.SourceNames()
	slices.Sort(sim)
	slices.Sort(want)
	if !slices.Equal(sim, want) {
		t.Errorf("simulator sources %v, alerts sources %v: want the same names", sim, want)
	}
	for path := range served {
		if mimecast.PermissionOf(path) == "" {
			t.Errorf("the simulator serves %s, but the client declares no permission for it", path)
		}
	}
	paths := regexp.MustCompile(`/[A-Za-z0-9/{}_.-]+`)
	for _, spec := range alerts.Specs() {
		found := paths.FindAllString(spec.Endpoint, -1)
		if len(found) == 0 {
			t.Errorf("alerts source %s: endpoint %q names no path", spec.Name, spec.Endpoint)
		}
		for _, p := range found {
			if !served[p] {
				t.Errorf("alerts source %s reads %s, which no simulator source serves", spec.Name, p)
			}
		}
		if len(found) > 0 && mimecast.PermissionOf(found[0]) != spec.Permission {
			t.Errorf("alerts source %s: permission %q, the client declares %q for %s", spec.Name, spec.Permission, mimecast.PermissionOf(found[0]), found[0])
		}
	}
}

// TestAlertOptionsCountsByName checks that a count given by source name seeds exactly what the
// named field seeds (same records, same recording order), for every source that has one.
func TestAlertOptionsCountsByName(t *testing.T) {
	end := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	named := AlertOptions{Attachment: 5, URL: 4, Impersonation: 3, DLP: 3, Threats: 4, SIEM: 23, Audit: 6, End: end,
		Logs: LogOptions{ArchiveSearch: 2, Search: 3, View: 4, HeldRelease: 2, ThreatIntelCustomer: 3, ThreatIntelGrid: 2, SIEMCI: 7}}
	// Written out, not derived from the table: the test must see a field wired to the wrong name.
	counts := map[string]int{SourceAttachment: 5, SourceURL: 4, SourceImpersonation: 3, SourceDLP: 3, SourceThreats: 4,
		SourceSIEM: 23, SourceAudit: 6, SourceArchiveSearchLogs: 2, SourceSearchLogs: 3, SourceViewLogs: 4, SourceHeldRelease: 2,
		SourceThreatIntelCustomer: 3, SourceThreatIntelGrid: 2, SourceSIEMCI: 7}
	withField := 0
	for _, src := range simSources {
		if src.count != nil {
			withField++
		}
	}
	if len(counts) != withField {
		t.Fatalf("the test knows %d sources with a named count field, the table has %d", len(counts), withField)
	}
	byName := AlertOptions{End: end, Counts: counts}
	truth := func(a AlertOptions) []TruthAlert {
		t.Helper()
		s, err := New(Options{Seed: 7, Mailboxes: 3, Messages: 5, Now: func() time.Time { return end }, Alerts: a})
		if err != nil {
			t.Fatal(err)
		}
		return s.AlertTruth("")
	}
	a, b := truth(named), truth(byName)
	if len(a) == 0 {
		t.Fatal("no records seeded")
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("Counts by name seeded other records than the named fields:\n%s\n%s", ja, jb)
	}
	for _, src := range simSources {
		n := 0
		for _, r := range b {
			if r.Source == src.name {
				n++
			}
		}
		if want := counts[src.name]; n < want {
			t.Errorf("source %s: %d records, want at least %d", src.name, n, want)
		}
	}
}

func TestAlertOptionsCountsCheckedAndWin(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    AlertOptions
		want string
	}{
		{"unknown", AlertOptions{Counts: map[string]int{"bogus": 1}}, `unknown source "bogus"`},
		{"negative", AlertOptions{Counts: map[string]int{SourceViewLogs: -1}}, "archive_view_logs: count -1"},
		{"too many", AlertOptions{Logs: LogOptions{SIEMCI: maxSeededAlerts + 1}}, "siem_ci: count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Seed: 1, Alerts: tc.a})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// A name in Counts wins over its field (mimecast-sim's --count over --alerts), also with 0.
	for _, n := range []int{0, 2} {
		s, err := New(Options{Seed: 1, Alerts: AlertOptions{Audit: 5, Counts: map[string]int{SourceAudit: n}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(s.AlertTruth(SourceAudit)); got != n {
			t.Errorf("Audit 5, Counts[audit] %d: %d records, want %d", n, got, n)
		}
	}
}
