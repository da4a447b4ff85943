package alerts

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Finding 8: one source that never answers holds back no other. With DLP's calls blocked,
// URL protection keeps being polled on its own schedule; stopping ends both.
func TestRunSourcesPollIndependently(t *testing.T) {
	f := newFixture(false)
	f.logs.blockKind = map[mimecast.LogKind]bool{mimecast.DLPLogs: true}
	f.logs.add(mimecast.URLLogs, recs("u", 3, at(-10), time.Minute)...)
	p := f.poller(t, Options{Sources: []Source{DLP, URLProtection}, PollInterval: time.Millisecond})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		bySrc   = map[Source][]SourceSummary{}
		urlPass = make(chan struct{}, 100)
	)
	done := make(chan error)
	go func() {
		done <- p.Run(ctx, func(s PassSummary) {
			if len(s.Sources) != 1 {
				t.Errorf("a report of %d sources; want one per source pass", len(s.Sources))
			}
			mu.Lock()
			defer mu.Unlock()
			for _, src := range s.Sources {
				bySrc[src.Source] = append(bySrc[src.Source], src)
				if src.Source == URLProtection {
					select {
					case urlPass <- struct{}{}:
					default:
					}
				}
			}
		})
	}()
	for i := range 3 {
		select {
		case <-urlPass:
		case <-time.After(30 * time.Second):
			t.Fatalf("url protection polled %d times while dlp blocked; it is held back", i)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(bySrc[DLP]); n != 1 || !bySrc[DLP][0].Interrupted {
		t.Errorf("dlp reported %d passes %+v; want one, interrupted", n, bySrc[DLP])
	}
	if s := bySrc[URLProtection][0]; s.Indexed != 3 || s.Error != "" {
		t.Errorf("first url pass = %+v", s)
	}
}

// Finding 13: a pass that resumes a window saved by an earlier pass goes on to now, so the
// records since the old window's end do not wait a whole interval.
func TestResumedWindowGoesOnToNow(t *testing.T) {
	f := newFixture(false)
	old := recs("o", 3, at(-50), time.Minute)
	fresh := recs("n", 2, at(-10), time.Minute)
	f.logs.add(mimecast.DLPLogs, append(old, fresh...)...)
	saved := cursor{Since: at(-70), From: at(-80), To: at(-30)}
	_ = f.cursors.SetCursors(map[string]string{CursorName(DLP, ""): saved.encode()})
	p := f.poller(t, Options{Sources: []Source{DLP}, Overlap: 5 * time.Minute})
	s := one(t, p.Once(context.Background()))
	if s.Error != "" || s.Indexed != 5 {
		t.Fatalf("summary = %+v; want the old window's 3 alerts and the 2 since", s)
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.Equal(t0) || !c.From.IsZero() {
		t.Errorf("cursor = %+v; want since now (%s)", c, t0)
	}
	if q := f.logs.queries[len(f.logs.queries)-1]; !q.From.Equal(at(-35)) || !q.To.Equal(t0) {
		t.Errorf("second window %s..%s, want %s..%s", q.From, q.To, at(-35), t0)
	}
}

// Finding 10: with MaxWait (alerts.max_wait, for --once), a source whose call waits longer
// gives up: its pass fails with ErrMaxWait and its cursor is intact; the others finish.
func TestMaxWaitGivesUpOnOneSource(t *testing.T) {
	f := newFixture(false)
	f.logs.blockKind = map[mimecast.LogKind]bool{mimecast.DLPLogs: true}
	f.logs.add(mimecast.URLLogs, recs("u", 3, at(-10), time.Minute)...)
	saved := cursor{Since: at(-60)}
	_ = f.cursors.SetCursors(map[string]string{CursorName(DLP, ""): saved.encode()})
	p := f.poller(t, Options{Sources: []Source{DLP, URLProtection}, MaxWait: 20 * time.Millisecond})
	sum := p.Once(context.Background())
	dlp, url := sum.Sources[0], sum.Sources[1]
	if dlp.Interrupted || !strings.Contains(dlp.Error, ErrMaxWait.Error()) {
		t.Errorf("dlp = %+v; want it given up with ErrMaxWait", dlp)
	}
	if !sum.Failed() {
		t.Error("a source given up does not fail the pass")
	}
	if c := f.cursors.get(t, CursorName(DLP, "")); !c.Since.Equal(at(-60)) || !c.From.IsZero() {
		t.Errorf("dlp cursor = %+v; want it where it was", c)
	}
	if url.Error != "" || url.Indexed != 3 {
		t.Errorf("url = %+v", url)
	}
}

// Finding 10: a call that waited long (here the fake clock moves 3 minutes during it) is
// logged at warn with its source and its length.
func TestSlowCallWarned(t *testing.T) {
	f := newFixture(false)
	f.logs.add(mimecast.DLPLogs, recs("d", 2, at(-10), time.Minute)...)
	f.logs.onCall = func() { f.clock.set(f.clock.now().Add(3 * time.Minute)) }
	var logs lockedBuffer
	p, err := New(Deps{Logs: f.logs, Sink: f.sink, Cursors: f.cursors, Rules: keepAll{}},
		Options{Sources: []Source{DLP}, Now: f.clock.now, Normalize: fakeNormalize, Logger: zerolog.New(&logs).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	if s := one(t, p.Once(context.Background())); s.Error != "" {
		t.Fatal(s.Error)
	}
	out := logs.String()
	if !strings.Contains(out, "api call waited long") || !strings.Contains(out, `"source":"dlp"`) || !strings.Contains(out, `"took":180000`) {
		t.Errorf("want a warning naming the source and the 3 minutes:\n%s", out)
	}
}
