package alerts

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Nothing passed in silence (cursor.go, "Parked alerts"), at the poller's own interfaces.

// detailsNormalize is fakeNormalize that puts the details' subject in Alert.Subject.
func detailsNormalize(src Source, b json.RawMessage) (Alert, error) {
	a, err := fakeNormalize(src, b)
	var m struct {
		D struct {
			Subject string `json:"subject"`
		} `json:"_details"`
	}
	_ = json.Unmarshal(b, &m)
	a.Subject = m.D.Subject
	return a, err
}

func subjectOf(t *testing.T, f *fixture, id string) string {
	t.Helper()
	f.sink.mu.Lock()
	defer f.sink.mu.Unlock()
	d, ok := f.sink.docs[AlertsKind.String()+"/"+id]
	if !ok {
		return "<missing>"
	}
	b, _ := json.Marshal(d.Body)
	var doc struct {
		Email struct {
			Subject string `json:"subject"`
		} `json:"email"`
	}
	_ = json.Unmarshal(b, &doc)
	return doc.Email.Subject
}

// Finding 5: threat details that fail after retries. The event is indexed without them at
// once, parked, counted and the pass fails; the next pass fetches them and writes the alert
// over, never "already there" forever.
func TestThreatDetailsFailureParkedAndRetried(t *testing.T) {
	f := newFixture(false)
	th := &fakeThreats{recs: recs("t", 3, at(-10), time.Minute), failDetail: map[string]bool{"t001": true}}
	p, err := New(Deps{Threats: th, Sink: f.sink, Cursors: f.cursors, Rules: keepAll{}},
		Options{Sources: []Source{Threats}, Now: f.clock.now, Normalize: detailsNormalize, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	sum := p.Once(context.Background())
	s := one(t, sum)
	if s.Indexed != 3 || s.Pending != 1 || !sum.Failed() {
		t.Fatalf("summary = %+v; want 3 indexed, 1 pending, a failed pass", s)
	}
	if got := subjectOf(t, f, "t001"); got != "" {
		t.Errorf("alert without details has subject %q", got)
	}
	c := f.cursors.get(t, CursorName(Threats, ""))
	if !c.Since.Equal(t0) || len(c.Pending) != 1 || c.Pending[0].ID != "t001" || c.Pending[0].Reason != parkedDetails {
		t.Fatalf("cursor = %+v; want the window passed with t001 parked", c)
	}
	st, _ := Statuses(f.cursors)
	if len(st) != 1 || st[0].Pending != 1 {
		t.Errorf("status = %+v; want 1 pending", st)
	}

	// Still failing: parked again, one attempt more, not written again.
	f.clock.set(at(5))
	s = one(t, p.Once(context.Background()))
	if c := f.cursors.get(t, CursorName(Threats, "")); s.Pending != 1 || len(c.Pending) != 1 || c.Pending[0].Attempts != 2 {
		t.Fatalf("second pass %+v, cursor %+v; want t001 still parked after 2 attempts", s, c)
	}

	// The details endpoint recovers: the alert is written over with its details.
	th.mu.Lock()
	th.failDetail = nil
	th.mu.Unlock()
	f.clock.set(at(10))
	sum = p.Once(context.Background())
	if s := one(t, sum); s.Pending != 0 || sum.Failed() {
		t.Fatalf("third pass = %+v; want nothing pending", s)
	}
	if got := subjectOf(t, f, "t001"); got != "details of t001" {
		t.Errorf("after recovery the alert's subject is %q; want the details' subject", got)
	}
	if c := f.cursors.get(t, CursorName(Threats, "")); len(c.Pending) != 0 {
		t.Errorf("cursor still holds %+v", c.Pending)
	}
}

// Finding 6: an alert Elasticsearch refuses for good does not vanish: it is parked, counted,
// the pass fails (exit 3), and once the mapping is fixed the next pass writes it.
func TestRefusedAlertParkedAndRetried(t *testing.T) {
	f := newFixture(false)
	all := recs("a", 12, at(-30), time.Second)
	f.logs.add(mimecast.DLPLogs, all...)
	f.sink.refuse["a003"], f.sink.refuse["a009"] = true, true
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 5})
	sum := p.Once(context.Background())
	s := one(t, sum)
	if s.Rejected != 2 || s.Pending != 2 || !sum.Failed() {
		t.Fatalf("summary = %+v; want 2 rejected and pending, a failed pass", s)
	}
	c := f.cursors.get(t, CursorName(DLP, ""))
	if !c.Since.Equal(t0) || len(c.Pending) != 2 || !strings.HasPrefix(c.Pending[0].Reason, parkedRefused) {
		t.Fatalf("cursor = %+v; want the window passed with both parked", c)
	}
	f.sink.mu.Lock()
	f.sink.refuse = map[string]bool{}
	f.sink.mu.Unlock()
	f.clock.set(at(5))
	sum = p.Once(context.Background())
	if s := one(t, sum); s.Pending != 0 || s.Rejected != 0 || sum.Failed() {
		t.Fatalf("after the fix = %+v", s)
	}
	if got := f.sink.alertIDs(); len(got) != 12 {
		t.Errorf("%d alerts, want 12", len(got))
	}
}

// Cursors makes fakeCursors a CursorLister.
func (f *fakeCursors) Cursors() (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.m))
	for k, v := range f.m {
		out[k] = v
	}
	return out, nil
}

// A cursor parks at most maxPending alerts: the next one holds the cursor instead, so that
// the state file cannot grow without bound; the alerts already parked stay parked.
func TestParkingIsBounded(t *testing.T) {
	f := newFixture(false)
	all := recs("a", maxPending+5, at(-120), 100*time.Millisecond)
	f.logs.add(mimecast.DLPLogs, all...)
	for _, r := range all {
		f.sink.refuse[r.ID] = true
	}
	p := f.poller(t, Options{Sources: []Source{DLP}, PageSize: 500})
	s := one(t, p.Once(context.Background()))
	if s.Pending != maxPending || !strings.Contains(s.Error, "parked already") {
		t.Fatalf("summary: pending %d, error %q; want %d parked and the cursor held", s.Pending, s.Error, maxPending)
	}
	c := f.cursors.get(t, CursorName(DLP, ""))
	if !c.Since.IsZero() || c.Token != "10000" || len(c.Pending) != maxPending {
		t.Errorf("cursor token %q since %s with %d parked; want held at the page past the bound", c.Token, c.Since, len(c.Pending))
	}
}

// A cursor with parked alerts is written as version 2 (an older mimecrawl refuses it rather
// than dropping what is parked); one without stays version 1.
func TestCursorVersionFollowsParking(t *testing.T) {
	plain := cursor{Since: t0}.encode()
	withParked := cursor{Since: t0, Pending: []parked{{ID: "a", Record: json.RawMessage(`{}`), Reason: parkedRefused, Attempts: 1}}}.encode()
	if !strings.Contains(plain, `"v":1`) || !strings.Contains(withParked, `"v":2`) {
		t.Errorf("versions: %s / %s", plain, withParked)
	}
	for _, s := range []string{plain, withParked} {
		if _, err := decodeCursor("alerts/x", s); err != nil {
			t.Errorf("decode %s: %v", s, err)
		}
	}
	if _, err := decodeCursor("alerts/x", `{"v":3}`); err == nil {
		t.Error("version 3 accepted")
	}
}
