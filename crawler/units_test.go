package crawler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/internal/rule"
	"github.com/mimecrawl/mimecrawl/state"
)

func TestTracker(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	min := func(n int) time.Time { return base.Add(-time.Duration(n) * time.Minute) }
	type fin struct {
		seq int
		ok  bool
	}
	for _, tc := range []struct {
		name     string
		received []time.Time // listing order
		finishes []fin       // in this order
		wantLow  time.Time   // zero: no resume point
		wantFail int
	}{
		{name: "in order", received: []time.Time{min(0), min(1), min(2)},
			finishes: []fin{{0, true}, {1, true}, {2, true}}, wantLow: min(2)},
		{name: "out of order stops at the first unfinished", received: []time.Time{min(0), min(1), min(2), min(3)},
			finishes: []fin{{2, true}, {0, true}, {3, true}}, wantLow: min(0)},
		{name: "out of order completes", received: []time.Time{min(0), min(1), min(2)},
			finishes: []fin{{2, true}, {1, true}, {0, true}}, wantLow: min(2)},
		{name: "nothing finished first", received: []time.Time{min(0), min(1)},
			finishes: []fin{{1, true}}},
		{name: "failure blocks the prefix", received: []time.Time{min(0), min(1), min(2)},
			finishes: []fin{{0, true}, {1, false}, {2, true}}, wantLow: min(0), wantFail: 1},
		{name: "failure first blocks everything", received: []time.Time{min(0), min(1)},
			finishes: []fin{{0, false}, {1, true}}, wantFail: 1},
		{name: "not newest first gives no resume point", received: []time.Time{min(2), min(0), min(1)},
			finishes: []fin{{0, true}, {1, true}, {2, true}}},
		{name: "equal times are in order", received: []time.Time{min(1), min(1), min(2)},
			finishes: []fin{{0, true}, {1, true}, {2, true}}, wantLow: min(2)},
		{name: "unknown time says nothing about order", received: []time.Time{min(1), {}, min(2)},
			finishes: []fin{{0, true}, {1, false}, {2, true}}, wantLow: min(1), wantFail: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(100, nil, nil)
			ctx := context.Background()
			for i, r := range tc.received {
				seq, err := tr.add(ctx, r)
				if err != nil || seq != int64(i) {
					t.Fatalf("add %d: seq %d, %v", i, seq, err)
				}
			}
			for _, f := range tc.finishes {
				tr.finish(int64(f.seq), f.ok)
			}
			low, ok := tr.resumePoint()
			if ok != !tc.wantLow.IsZero() || !low.Equal(tc.wantLow) {
				t.Errorf("resume point %v %v, want %v", low, ok, tc.wantLow)
			}
			if tr.pending() != len(tc.received)-len(tc.finishes) {
				t.Errorf("pending %d", tr.pending())
			}
			if len(tc.finishes) == len(tc.received) {
				failed, err := tr.wait(ctx)
				if err != nil || failed != tc.wantFail {
					t.Errorf("wait: %d failed, %v; want %d", failed, err, tc.wantFail)
				}
			}
		})
	}
}

func TestTrackerBlocksAndHonoursCancellation(t *testing.T) {
	tr := newTracker(2, nil, nil)
	ctx := context.Background()
	a, _ := tr.add(ctx, time.Time{})
	if _, err := tr.add(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Full: add waits, and gives up with its context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tr.add(cctx, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("add on a full tracker with a cancelled context: %v", err)
	}
	if _, err := tr.wait(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with messages in flight and a cancelled context: %v", err)
	}
	// A finish frees a slot for a waiting add.
	added := make(chan error, 1)
	go func() {
		_, err := tr.add(ctx, time.Time{})
		added <- err
	}()
	tr.finish(a, true)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if tr.pending() != 2 {
		t.Errorf("pending %d, want 2", tr.pending())
	}
}

// countingStore records the batches a committer writes.
type countingStore struct {
	*fakeStore
	mu      sync.Mutex
	batches []int
	fail    error
}

func (s *countingStore) Commit(u map[state.Key]state.Position) error {
	s.mu.Lock()
	s.batches = append(s.batches, len(u))
	s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	return s.fakeStore.Commit(u)
}

func TestCommitter(t *testing.T) {
	st := &countingStore{fakeStore: newFakeStore()}
	c := newCommitter(st)
	done := make(chan struct{})
	go func() { c.run(); close(done) }()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			k := state.Key{Mailbox: fmt.Sprintf("m%d@example.com", i), View: "INBOX"}
			if err := c.commit(k, state.Position{Indexed: int64(i)}); err != nil {
				t.Errorf("commit %v: %v", k, err)
			}
		})
	}
	wg.Wait()
	st.fail = errors.New("disk full")
	if err := c.commit(state.Key{Mailbox: "x@example.com", View: "INBOX"}, state.Position{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failed commit answered %v", err)
	}
	c.close()
	<-done
	total := 0
	for _, b := range st.batches[:len(st.batches)-1] {
		total += b
	}
	if total != 50 {
		t.Errorf("batches %v hold %d positions, want 50", st.batches, total)
	}
	for i := range 50 {
		k := state.Key{Mailbox: fmt.Sprintf("m%d@example.com", i), View: "INBOX"}
		if p, ok, _ := st.Position(k); !ok || p.Indexed != int64(i) {
			t.Errorf("%v: %+v %v", k, p, ok)
		}
	}
}

func TestPlanRemoval(t *testing.T) {
	mbs := func(names ...string) []Mailbox {
		var out []Mailbox
		for _, n := range names {
			out = append(out, Mailbox{Address: n})
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		known     []string
		kept      []Mailbox
		ratio     float64
		allowMass bool
		wantGone  []string
		refused   bool
	}{
		{name: "nothing gone", known: []string{"a", "b"}, kept: mbs("a", "b", "c"), ratio: 0.5},
		{name: "one gone", known: []string{"a", "b", "c"}, kept: mbs("a", "c"), ratio: 0.5, wantGone: []string{"b"}},
		{name: "too many", known: []string{"a", "b", "c"}, kept: mbs("a"), ratio: 0.5, wantGone: []string{"b", "c"}, refused: true},
		{name: "too many allowed", known: []string{"a", "b", "c"}, kept: mbs("a"), ratio: 0.5, allowMass: true, wantGone: []string{"b", "c"}},
		{name: "enumeration kept nothing", known: []string{"a"}, kept: nil, ratio: 1, wantGone: []string{"a"}, refused: true},
		{name: "empty state", known: nil, kept: nil, ratio: 0.1},
		{name: "at the ratio", known: []string{"a", "b"}, kept: mbs("a"), ratio: 0.5, wantGone: []string{"b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newFakeStore()
			for _, m := range tc.known {
				st.pos[state.Key{Mailbox: m, View: "INBOX"}] = state.Position{}
			}
			r, err := PlanRemoval(st, tc.kept, Shard{}, tc.ratio, tc.allowMass)
			if errors.Is(err, ErrRemovalRefused) != tc.refused || (err != nil && !tc.refused) {
				t.Fatalf("err %v, refused want %v", err, tc.refused)
			}
			if !slices.Equal(r.Gone, tc.wantGone) {
				t.Errorf("gone %v, want %v", r.Gone, tc.wantGone)
			}
		})
	}
}

type fakeDirectory struct {
	domains []api.Domain
	users   map[string][]api.User
	fail    string // a domain whose users cannot be listed
}

func (d fakeDirectory) InternalDomains(context.Context) ([]api.Domain, error) { return d.domains, nil }

func (d fakeDirectory) InternalUsers(_ context.Context, domain string, _ int) ([]api.User, error) {
	if domain == d.fail {
		return nil, errors.New("boom")
	}
	return d.users[domain], nil
}

func TestEnumerate(t *testing.T) {
	dir := fakeDirectory{
		domains: []api.Domain{{Domain: "Example.com"}, {Domain: "local.example.com", Local: true}, {Domain: "other.org"}},
		users: map[string][]api.User{
			"example.com":       {{EmailAddress: "Alice@Example.com"}, {EmailAddress: "bob@example.com"}, {EmailAddress: "alice@example.com"}, {EmailAddress: ""}},
			"local.example.com": {{EmailAddress: "x@local.example.com"}},
			"other.org":         {{EmailAddress: "carol@other.org"}},
		},
	}
	rules := Rules{IncludeDomains: []rule.Regexp{rule.MustRegexp(`(.*\.)?example\.com`)},
		ExcludeMailboxes: []rule.Regexp{rule.MustRegexp(`bob@.*`)}}
	e, err := Enumerate(context.Background(), dir, rules, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, m := range e.Kept {
		kept = append(kept, m.Address)
	}
	if !slices.Equal(kept, []string{"alice@example.com"}) {
		t.Errorf("kept %v, want alice only (lower-cased, once; bob excluded; local domain not included)", kept)
	}
	kd, km, excluded := e.Counts()
	if kd != 1 || km != 1 || excluded["domain local domain (domains.include_local is false)"] != 1 ||
		excluded["domain matches no domains.include rule"] != 1 || len(e.Mailboxes) != 2 {
		t.Errorf("counts %d %d %v, decisions %+v", kd, km, excluded, e.Mailboxes)
	}
	rules.IncludeLocal = true
	e, err = Enumerate(context.Background(), dir, rules, 10, 2)
	if err != nil || len(e.Kept) != 2 || !e.Kept[1].Local {
		t.Errorf("with include_local: %v, %+v", err, e.Kept)
	}
	dir.fail = "example.com"
	if _, err := Enumerate(context.Background(), dir, rules, 10, 2); err == nil || !strings.Contains(err.Error(), "example.com") {
		t.Errorf("a failing domain must fail the enumeration: %v", err)
	}
}

func TestPlanPass(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	hour := time.Hour
	o := WindowOptions{StartDate: start, DeltaTokenOffset: -15 * time.Minute}
	future := time.Date(2096, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		pos      state.Position
		failed   bool
		opts     func(*WindowOptions)
		from, to time.Time
		full     bool
		resumed  bool
		blocked  bool
		newGen   bool
		damaged  int
	}{
		{name: "first run", from: start, to: now, newGen: true},
		{name: "incremental", pos: state.Position{Token: now.Add(-hour), Generation: 3},
			from: now.Add(-hour - 15*time.Minute), to: now},
		{name: "token before start date", pos: state.Position{Token: start.Add(-hour), Generation: 3}, from: start, to: now},
		{name: "resume", pos: state.Position{Token: now.Add(-5 * hour), Generation: 3,
			Pass: &state.Pass{End: now.Add(-hour), Low: now.Add(-2 * hour), Generation: 3}},
			from: now.Add(-5*hour - 15*time.Minute), to: now.Add(-2 * hour), resumed: true},
		{name: "blocked by failures", failed: true, pos: state.Position{Token: now.Add(-5 * hour), Generation: 3,
			Pass: &state.Pass{End: now.Add(-hour), Low: now.Add(-2 * hour), Generation: 3}},
			from: now.Add(-5*hour - 15*time.Minute), to: now, blocked: true},
		{name: "full", opts: func(o *WindowOptions) { o.Full = true }, pos: state.Position{Token: now.Add(-hour), Generation: 3},
			from: start, to: now, full: true, newGen: true},
		{name: "unfinished full re-crawl: view already done", opts: func(o *WindowOptions) { o.Full, o.FullSince = true, now.Add(-2*hour) },
			pos:  state.Position{Token: now.Add(-hour), Generation: 3, FullDone: now.Add(-hour)},
			from: now.Add(-hour - 15*time.Minute), to: now},
		{name: "unfinished full re-crawl: view not done", opts: func(o *WindowOptions) { o.Full, o.FullSince = true, now.Add(-2*hour) },
			pos:  state.Position{Token: now.Add(-hour), Generation: 3, FullDone: now.Add(-48 * hour)},
			from: start, to: now, full: true, newGen: true},
		{name: "interrupted full pass resumes as full", opts: func(o *WindowOptions) { o.Full = true },
			pos:  state.Position{Token: now.Add(-hour), Generation: 3, Pass: &state.Pass{End: now.Add(-hour), Low: now.Add(-3 * hour), Full: true, Generation: 4}},
			from: start, to: now.Add(-3 * hour), full: true, resumed: true},
		{name: "future token falls back to the last run", pos: state.Position{Token: future, LastRun: now.Add(-hour), Generation: 3},
			from: now.Add(-hour - 15*time.Minute), to: now, damaged: 1},
		{name: "future token without a sane last run lists from the start", pos: state.Position{Token: future, LastRun: future, Generation: 3},
			from: start, to: now, damaged: 1},
		{name: "token within the skew is trusted", pos: state.Position{Token: now.Add(time.Minute), Generation: 3},
			from: now.Add(time.Minute - 15*time.Minute), to: now},
		{name: "future pass is dropped", pos: state.Position{Token: now.Add(-hour), Generation: 3, Pass: &state.Pass{End: future, Low: future, Generation: 3}},
			from: now.Add(-hour - 15*time.Minute), to: now, damaged: 1},
		{name: "future full pass stays owed", pos: state.Position{Token: now.Add(-hour), Generation: 3, Pass: &state.Pass{End: future, Full: true, Generation: 4}},
			from: start, to: now, full: true, newGen: true, damaged: 1},
		{name: "future full-done does not skip a full re-crawl", opts: func(o *WindowOptions) { o.Full, o.FullSince = true, now.Add(-2*hour) },
			pos:  state.Position{Token: now.Add(-hour), Generation: 3, FullDone: future},
			from: start, to: now, full: true, newGen: true, damaged: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wo := o
			if tc.opts != nil {
				tc.opts(&wo)
			}
			p := PlanPass(tc.pos, tc.failed, wo, now)
			if !p.From.Equal(tc.from) || !p.To.Equal(tc.to) {
				t.Errorf("window %v..%v, want %v..%v", p.From, p.To, tc.from, tc.to)
			}
			if p.Pass.Full != tc.full || p.Resumed != tc.resumed || p.Blocked != tc.blocked || p.NewGeneration != tc.newGen || len(p.Damaged) != tc.damaged {
				t.Errorf("full %v resumed %v blocked %v newGen %v damaged %v; want %v %v %v %v %d",
					p.Pass.Full, p.Resumed, p.Blocked, p.NewGeneration, p.Damaged, tc.full, tc.resumed, tc.blocked, tc.newGen, tc.damaged)
			}
			if p.Pass.End.After(now.Add(MaxClockSkew)) || p.Pass.Low.After(p.Pass.End) {
				t.Errorf("planned pass %+v is itself damaged", p.Pass)
			}
			if lim := now.Add(MaxClockSkew); p.Position.Token.After(lim) || p.Position.FullDone.After(lim) ||
				(p.Position.Pass != nil && p.Position.Pass.End.After(lim)) {
				t.Errorf("repaired position %+v still lies in the future", p.Position)
			}
		})
	}
}
