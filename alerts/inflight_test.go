package alerts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
)

// holdingSink acknowledges documents only when flushed (flushSink) and records the most it
// held unacknowledged at once.
type holdingSink struct {
	*flushSink
	most int
}

func (s *holdingSink) Add(ctx context.Context, d index.Doc, done func(index.Result)) error {
	err := s.flushSink.Add(ctx, d, done)
	s.mu.Lock()
	s.most = max(s.most, len(s.waiting))
	s.mu.Unlock()
	return err
}

// siemBacklog puts n records of one SIEM type in pages of files of 50 records.
func siemBacklog(f *fixture, typ string, n int) {
	var pages [][]fakeFile
	for i := 0; i < n; i += 50 {
		if len(pages) == 0 || len(pages[len(pages)-1]) == 20 {
			pages = append(pages, nil)
		}
		rs := recs(fmt.Sprintf("%s%05d-", typ, i), min(50, n-i), at(-100).Add(time.Duration(i)*time.Second), time.Second)
		last := len(pages) - 1
		pages[last] = append(pages[last], fakeFile{name: fmt.Sprintf("%s%d", typ, i), recs: rs})
	}
	f.siem.pages[typ] = pages
}

// A pass holds at most maxInFlight documents unacknowledged, whatever the backlog, even
// when the sink would take them all: before, a sink that acknowledged only when flushed held
// the whole backlog (the bulk writer bounds it only by its buffers, which a long backlog
// fills and a short one does not). Every record is still written and the cursor passes
// every page.
func TestPassHoldsAtMostMaxInFlight(t *testing.T) {
	const n = 5 * maxInFlight
	f := newFixture(true)
	siemBacklog(f, "av", n)
	sink := &holdingSink{flushSink: &flushSink{fakeSink: f.sink}}
	o := Options{Sources: []Source{SIEM}, SIEMTypes: []string{"av"}, Now: f.clock.now, Normalize: fakeNormalize, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	p, err := New(Deps{SIEM: f.siem, Sink: sink, Cursors: f.cursors, Rules: keepAll{}, Groups: f.groups}, o)
	if err != nil {
		t.Fatal(err)
	}
	// Without flushes nothing is ever acknowledged; the deadline only ends a broken run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := one(t, p.Once(ctx))
	if s.Error != "" || s.Indexed != n {
		t.Fatalf("pass = %+v; want %d alerts", s, n)
	}
	if sink.most > maxInFlight {
		t.Errorf("the sink held %d documents unacknowledged at once; want at most %d", sink.most, maxInFlight)
	}
	if c, want := f.cursors.get(t, CursorName(SIEM, "batch/av")), fmt.Sprint(len(f.siem.pages["av"])); c.Token != want {
		t.Errorf("cursor = %+v; want token %s, past every page", c, want)
	}
}

// A sink that cannot be flushed acknowledges in its own time: a pass at the bound waits for
// those acknowledgements and goes on.
func TestPassAtMaxInFlightWaitsForSink(t *testing.T) {
	const n = 3*maxInFlight + 7
	f := newFixture(false) // acknowledges each document from another goroutine
	siemBacklog(f, "av", n)
	p := f.poller(t, Options{Sources: []Source{SIEM}, SIEMTypes: []string{"av"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s := one(t, p.Once(ctx)); s.Error != "" || s.Indexed != n {
		t.Fatalf("pass = %+v; want %d alerts", s, n)
	}
}
