package alerts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A page of many small batch files reaches the group store as one batch, not one per file:
// a group read and write per file of twenty events held the batch reader to a third of its
// throughput. Records of a file that breaks mid-way still count, and the file is parked.
func TestSIEMBatchGroupsPerPageNotPerFile(t *testing.T) {
	f := newFixture(false)
	var page []fakeFile
	for i := range 10 {
		rs := recs(fmt.Sprintf("f%d-", i), 3, at(-50+i), time.Second)
		for j := range rs {
			rs[j].H = fmt.Sprintf("%064d", i) // one group per file
		}
		page = append(page, fakeFile{name: fmt.Sprintf("f%d", i), recs: rs, corrupt: i == 4})
	}
	f.siem.pages["av"] = [][]fakeFile{page}
	p := f.poller(t, Options{Sources: []Source{SIEM}, SIEMTypes: []string{"av"}})
	s := one(t, p.Once(context.Background()))
	if s.Indexed != 30 || s.FilesPending != 1 || s.Groups != 10 {
		t.Fatalf("pass = %+v; want 30 alerts, 10 groups, the broken file parked", s)
	}
	if f.groups.reads != 1 {
		t.Errorf("group store read %d times for one page of 10 files; want once", f.groups.reads)
	}
}

// flushSink acknowledges documents only when flushed, as a bulk writer holding a partial
// request until its flush interval would.
type flushSink struct {
	*fakeSink
	flushes int
}

func (s *flushSink) Flush(ctx context.Context) error {
	s.mu.Lock()
	s.flushes++
	s.mu.Unlock()
	s.ackAll()
	return nil
}

// A pass that has read everything asks a sink that can flush to send what it holds, rather
// than waiting for the writer's flush interval once per SIEM event type.
func TestFinishFlushesSink(t *testing.T) {
	f := newFixture(true)
	for _, typ := range []string{"av", "spam"} {
		f.siem.pages[typ] = [][]fakeFile{{{name: typ, recs: recs(typ, 3, at(-30), time.Second)}}}
	}
	sink := &flushSink{fakeSink: f.sink}
	o := Options{Sources: []Source{SIEM}, SIEMTypes: []string{"av", "spam"}, Now: f.clock.now, Normalize: fakeNormalize, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	p, err := New(Deps{SIEM: f.siem, Sink: sink, Cursors: f.cursors, Rules: keepAll{}, Groups: f.groups}, o)
	if err != nil {
		t.Fatal(err)
	}
	// Without a flush nothing is ever acknowledged; the deadline only ends a broken run.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := one(t, p.Once(ctx))
	if s.Error != "" || s.Indexed != 6 {
		t.Fatalf("pass = %+v; want 6 alerts acknowledged after flushes", s)
	}
	if sink.flushes != 2 {
		t.Errorf("%d flushes; want one per event type", sink.flushes)
	}
	for _, typ := range []string{"av", "spam"} {
		if c := f.cursors.get(t, CursorName(SIEM, "batch/"+typ)); c.Token != "1" {
			t.Errorf("cursor of %s = %+v; want past its page", typ, c)
		}
	}
}
