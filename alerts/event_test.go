package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// fakeAudit serves audit records (newest first, as the endpoint does) within the window,
// with offset tokens; forbidden answers 403 as the API does for a missing permission.
type fakeAudit struct {
	mu        sync.Mutex
	recs      []json.RawMessage
	times     []time.Time
	forbidden bool
	calls     int
}

func (f *fakeAudit) add(id string, t time.Time, typ, category string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"id": id, "auditType": typ, "user": "admin@example.com",
		"eventTime": t.UTC().Format("2006-01-02T15:04:05-0700"), "eventInfo": "IP: 198.51.100.7, Application: Administration Console", "category": category})
	f.recs, f.times = append(f.recs, b), append(f.times, t)
}

func (f *fakeAudit) AuditEvents(_ context.Context, q mimecast.AuditQuery) (mimecast.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.forbidden {
		return mimecast.Page{}, &mimecast.Error{Op: "POST /api/audit/get-audit-events", Status: 403, Code: "app_forbidden", Permission: "Account | Logs | Read"}
	}
	var in []json.RawMessage
	for i := len(f.recs) - 1; i >= 0; i-- {
		if !f.times[i].Before(q.From) && !f.times[i].After(q.To) {
			in = append(in, f.recs[i])
		}
	}
	off := 0
	if q.PageToken != "" {
		off, _ = strconv.Atoi(q.PageToken)
	}
	end := min(off+q.PageSize, len(in))
	p := mimecast.Page{Records: in[off:end], Total: len(in)}
	if end < len(in) {
		p.Next = strconv.Itoa(end)
	}
	return p, nil
}

// countingRules keeps everything and counts what it was asked about.
type countingRules struct{ n atomic.Int64 }

func (r *countingRules) Decide(*Alert) Decision { r.n.Add(1); return Decision{Keep: true} }

// An event source goes through the same machinery as the alerts (cursor, paging, the data
// stream lookup, the summary) but writes its own data stream, with the data stream fields
// the poller adds, and skips rules and groups: no record of it reaches Decide.
func TestEventSourceWritesItsOwnStream(t *testing.T) {
	f := newFixture(false)
	dlp := recs("d", 5, at(-50), time.Minute)
	f.logs.add(mimecast.DLPLogs, dlp...)
	au := &fakeAudit{}
	for i := range 25 {
		au.add(fmt.Sprintf("au%02d", i), at(-60+2*i), "User Logged On", "authentication_logs")
	}
	f.clock.set(at(0))
	st := &fakeStream{present: map[string]bool{}}
	rules := &countingRules{}
	p, err := New(Deps{Logs: f.logs, API: au, Sink: f.sink, Cursors: f.cursors, Rules: rules, Groups: f.groups, Stream: st},
		Options{Sources: []Source{DLP, Audit}, PageSize: 10, Overlap: 20 * time.Minute, Now: f.clock.now, Normalize: fakeNormalize,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	sum := p.Once(context.Background())
	f.sink.wg.Wait()
	var audit SourceSummary
	for _, s := range sum.Sources {
		if s.Error != "" {
			t.Fatalf("%s: %s", s.Source, s.Error)
		}
		if s.Source == Audit {
			audit = s
		}
	}
	if audit.Records != 25 || audit.Indexed != 25 {
		t.Errorf("audit: %d records, %d indexed; want 25 and 25", audit.Records, audit.Indexed)
	}
	if n := rules.n.Load(); n != 5 {
		t.Errorf("Decide was asked %d times; want 5 (the DLP alerts only)", n)
	}
	if !slices.Contains(st.kinds, AuditKind) || !slices.Contains(st.kinds, AlertsKind) {
		t.Errorf("ids opened for kinds %v; want the alerts' and the audit stream", st.kinds)
	}
	n := 0
	f.sink.mu.Lock()
	for _, d := range f.sink.docs {
		if d.Kind != AuditKind {
			continue
		}
		n++
		body := d.Body.(map[string]any)
		ds := body["data_stream"].(map[string]any)
		ev := body["event"].(map[string]any)
		if ds["dataset"] != AuditDataset || ds["namespace"] != "ns1" || ds["type"] != "logs" || ev["dataset"] != AuditDataset ||
			ev["kind"] != "event" || ev["ingested"] != at(0).Format(time.RFC3339Nano) || d.Op != index.OpCreate {
			t.Errorf("audit document %s: data_stream %v, event %v, op %v", d.ID, ds, ev, d.Op)
		}
	}
	f.sink.mu.Unlock()
	if n != 25 {
		t.Errorf("%d audit documents; want 25", n)
	}
	if c := f.cursors.get(t, CursorName(Audit, "")); !c.Since.Equal(at(0)) {
		t.Errorf("audit cursor %v; want the window's end %v", c.Since, at(0))
	}

	// The next pass re-reads the overlap: what the stream holds is not written again.
	f.sink.mu.Lock()
	for _, d := range f.sink.docs {
		if d.Kind == AuditKind {
			st.present[d.ID] = true
		}
	}
	f.sink.mu.Unlock()
	au.add("au99", at(5), "Policy Definition Changed", "policy_logs")
	f.clock.set(at(10))
	sum = p.Once(context.Background())
	f.sink.wg.Wait()
	for _, s := range sum.Sources {
		if s.Source == Audit && (s.Indexed != 1 || s.Existing != 5) {
			t.Errorf("second pass: %d indexed, %d existing; want 1 new and the 5 of the overlap", s.Indexed, s.Existing)
		}
	}
	f.sink.mu.Lock()
	defer f.sink.mu.Unlock()
	for k, w := range f.sink.writes {
		if w != 1 {
			t.Errorf("%s written %d times", k, w)
		}
	}
}

// A 403 on the audit log is that source's alone: the alert sources carry on, and the
// summary names the permission.
func TestEventSourceForbiddenIsolated(t *testing.T) {
	f := newFixture(false)
	f.logs.add(mimecast.DLPLogs, recs("d", 3, at(-30), time.Minute)...)
	au := &fakeAudit{forbidden: true}
	f.clock.set(at(0))
	p, err := New(Deps{Logs: f.logs, API: au, Sink: f.sink, Cursors: f.cursors, Rules: keepAll{}, Groups: f.groups},
		Options{Sources: []Source{DLP, Audit}, Now: f.clock.now, Normalize: fakeNormalize,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)})
	if err != nil {
		t.Fatal(err)
	}
	sum := p.Once(context.Background())
	f.sink.wg.Wait()
	for _, s := range sum.Sources {
		switch s.Source {
		case DLP:
			if s.Error != "" || s.Indexed != 3 {
				t.Errorf("dlp: %d indexed, error %q; want 3 and none", s.Indexed, s.Error)
			}
		case Audit:
			if !s.Forbidden || s.Permission != auditSpec.Permission {
				t.Errorf("audit: forbidden %v, permission %q; want true and %q", s.Forbidden, s.Permission, auditSpec.Permission)
			}
		}
	}
	if sum.Failed() {
		t.Error("a pass whose only problem is a 403 failed")
	}
}

// New refuses an event source whose reader the client lacks, naming the endpoint.
func TestEventSourceNeedsItsReader(t *testing.T) {
	f := newFixture(false)
	_, err := New(Deps{Sink: f.sink, Cursors: f.cursors, Rules: keepAll{}, API: struct{}{}}, Options{Sources: []Source{Audit}})
	if err == nil {
		t.Fatal("New accepted the audit source without an audit reader")
	}
}

// Probe reads one record of the last hour of a pages source through Deps.API; a 403 comes
// back as such, for check to name the permission; without the reader it says which is missing.
func TestProbeEventSource(t *testing.T) {
	au := &fakeAudit{}
	if err := Probe(context.Background(), Deps{API: au}, Audit, t0); err != nil || au.calls != 1 {
		t.Errorf("probe: %v after %d calls; want nil after 1", err, au.calls)
	}
	au.forbidden = true
	if err := Probe(context.Background(), Deps{API: au}, Audit, t0); !mimecast.IsForbidden(err) {
		t.Errorf("probe of a forbidden source: %v; want a 403", err)
	}
	if err := Probe(context.Background(), Deps{}, Audit, t0); err == nil || !strings.Contains(err.Error(), "get-audit-events") {
		t.Errorf("probe without a reader: %v; want an error naming the endpoint", err)
	}
	if err := Probe(context.Background(), Deps{}, Source("bogus"), t0); err == nil {
		t.Error("probe of an unknown source succeeded")
	}
}
