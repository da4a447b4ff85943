package alerts

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// eventCase is one row of an event decoder's ECS table: a record, the flattened document
// fields it must give (exact values), the fields it must not have, and for a bad record the
// RecordError reason.
type eventCase struct {
	name   string
	raw    string
	want   map[string]any
	absent []string
	reason string
}

// runEventTable decodes every case with dec and compares the documents with the table.
func runEventTable(t *testing.T, dec func(json.RawMessage) (Event, error), cases []eventCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := dec(json.RawMessage(c.raw))
			if c.reason != "" {
				var re *RecordError
				if !errors.As(err, &re) || re.Reason != c.reason {
					t.Fatalf("error %v; want a RecordError with reason %q", err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if ev.ID == "" || ev.Time.IsZero() {
				t.Fatalf("event without id or time: %+v", ev)
			}
			got := flatEvent(t, ev)
			for k, w := range c.want {
				if !reflect.DeepEqual(got[k], w) {
					t.Errorf("%s = %#v, want %#v", k, got[k], w)
				}
			}
			for _, k := range c.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s = %#v, want it absent", k, v)
				}
			}
			// The same record decodes to the same id (replays and overlaps are harmless).
			again, err := dec(json.RawMessage(c.raw))
			if err != nil || again.ID != ev.ID {
				t.Errorf("id not deterministic: %q then %q (%v)", ev.ID, again.ID, err)
			}
		})
	}
}

// flatEvent renders an event's body as JSON and flattens it to dotted keys.
func flatEvent(t *testing.T, ev Event) map[string]any {
	t.Helper()
	b, err := json.Marshal(ev.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	flatten("", m, out)
	return out
}

// distinctIDs decodes records and fails when two give the same id.
func distinctIDs(t *testing.T, dec func(json.RawMessage) (Event, error), raws ...string) {
	t.Helper()
	seen := map[string]int{}
	for i, r := range raws {
		ev, err := dec(json.RawMessage(r))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if j, ok := seen[ev.ID]; ok {
			t.Errorf("records %d and %d share the id %s", j, i, ev.ID)
		}
		seen[ev.ID] = i
	}
}

// Every record the simulator seeds for the new event sources decodes, and no two share an
// id: otherwise an index could never equal the simulator's truth.
func TestNewLogDecodersReadEverySeededRecord(t *testing.T) {
	for _, layout := range []string{"", "rfc3339", "offset"} {
		sim, err := simulator.New(simulator.Options{Seed: 11, Mailboxes: 3, Messages: 2, Alerts: simulator.AlertOptions{
			Span: 6 * time.Hour, Logs: simulator.LogOptions{ArchiveSearch: 60, Search: 20, View: 40, HeldRelease: 50,
				ThreatIntelCustomer: 60, ThreatIntelGrid: 30, SIEMCI: 90, TimeLayout: layout}}})
		if err != nil {
			t.Fatal(err)
		}
		for source, dec := range map[string]func(json.RawMessage) (Event, error){
			simulator.SourceArchiveSearchLogs: decodeArchiveSearchLog, simulator.SourceSearchLogs: decodeArchiveSearches,
			simulator.SourceViewLogs: decodeArchiveViewLog, simulator.SourceHeldRelease: decodeHeldRelease,
			simulator.SourceThreatIntelCustomer: decodeThreatIntelCustomer, simulator.SourceThreatIntelGrid: decodeThreatIntelGrid,
			simulator.SourceSIEMCI: decodeSIEMCI,
		} {
			truth := sim.AlertTruth(source)
			if len(truth) == 0 {
				t.Fatalf("%s: nothing seeded", source)
			}
			ids := map[string]bool{}
			for _, a := range truth {
				ev, err := dec(a.Record)
				if err != nil {
					t.Fatalf("%s (%q): %v: %s", source, layout, err, a.Record)
				}
				if ids[ev.ID] {
					t.Errorf("%s: two seeded records share id %s", source, ev.ID)
				}
				ids[ev.ID] = true
			}
		}
	}
}

// mapped reports whether a dotted field path is covered by mapping: every step a property,
// or inside an object kept in _source only (enabled false) or nested.
func mapped(mapping map[string]any, path string) bool {
	props, _ := mapping["properties"].(map[string]any)
	parts := strings.Split(path, ".")
	for i, p := range parts {
		f, ok := props[p].(map[string]any)
		if !ok {
			return false
		}
		if f["enabled"] == false {
			return true
		}
		if i == len(parts)-1 {
			return f["type"] != nil || f["properties"] != nil
		}
		props, _ = f["properties"].(map[string]any)
	}
	return false
}

// Every field a new event decoder writes for the simulator's seeded records is in its data
// stream's explicit mapping (dynamic false would silently leave it unsearchable).
func TestNewLogMappingsCoverTheirDocuments(t *testing.T) {
	sim, err := simulator.New(simulator.Options{Seed: 5, Mailboxes: 3, Messages: 2, Alerts: simulator.AlertOptions{
		Logs: simulator.LogOptions{ArchiveSearch: 40, Search: 10, View: 20, HeldRelease: 40,
			ThreatIntelCustomer: 40, ThreatIntelGrid: 10, SIEMCI: 60}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		source  string
		dec     func(json.RawMessage) (Event, error)
		mapping map[string]any
	}{
		{simulator.SourceArchiveSearchLogs, decodeArchiveSearchLog, ArchiveLogsMapping()},
		{simulator.SourceSearchLogs, decodeArchiveSearches, ArchiveLogsMapping()},
		{simulator.SourceViewLogs, decodeArchiveViewLog, ArchiveLogsMapping()},
		{simulator.SourceHeldRelease, decodeHeldRelease, HeldReleaseMapping()},
		{simulator.SourceThreatIntelCustomer, decodeThreatIntelCustomer, ThreatIntelMapping()},
		{simulator.SourceThreatIntelGrid, decodeThreatIntelGrid, ThreatIntelMapping()},
		{simulator.SourceSIEMCI, decodeSIEMCI, SIEMCIMapping()},
	} {
		missing := map[string]bool{}
		for _, a := range sim.AlertTruth(c.source) {
			ev, err := c.dec(a.Record)
			if err != nil {
				t.Fatal(err)
			}
			for k := range flatEvent(t, ev) {
				if !mapped(c.mapping, k) {
					missing[k] = true
				}
			}
		}
		for _, k := range []string{"data_stream.dataset", "data_stream.type", "data_stream.namespace", "event.dataset",
			"event.ingested", "event.created", "event.id"} {
			if !mapped(c.mapping, k) {
				missing[k] = true
			}
		}
		for k := range missing {
			t.Errorf("%s: field %s is not mapped", c.source, k)
		}
	}
}
