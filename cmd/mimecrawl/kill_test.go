package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// Crash-safe resume, tested on the real process: mimecrawl runs as a child process against the
// simulator (with 429s and 503s injected) and the real Elasticsearch, and is killed with
// SIGKILL again and again at swept, randomly jittered moments. After each kill the state file
// must show no delta token gone back, no resume point moved up within a pass and every
// interrupted pass resumed; no checkpoint may cover a message the index lacks. After a last
// uninterrupted run the index must equal the simulator's truth, id by id, each document once.

// killArchive is big enough that an uninterrupted run with faults takes several seconds, so
// kills land before any progress, in the middle of passes and after some views completed.
var killArchive = simulator.Options{Seed: 11, Domains: 2, Mailboxes: 6, Messages: 60}

// killFaults slow the run down and make it retry: rate limits, server errors, some latency.
func killFaults() []simulator.Fault {
	return []simulator.Fault{
		{PathPrefix: "/api/archive/", Status: 429, Probability: 0.05, ResetMS: 10},
		{PathPrefix: "/api/archive/", Status: 503, Probability: 0.05},
		{PathPrefix: "/api/archive/", LatencyMS: 3},
	}
}

const minKills = 12

// killSchedule returns the delays after which each run is killed: a sweep from 50 ms to 1.5 s,
// each delay jittered by ±30% with a seeded generator. KILL_TEST_SEED repeats a schedule.
func killSchedule(t *testing.T, n int) []time.Duration {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("KILL_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KILL_TEST_SEED %q: %v", s, err)
		}
		seed = v
	}
	t.Logf("kill schedule seed %d (set KILL_TEST_SEED=%d to repeat it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x4B111))
	lo, hi := 50*time.Millisecond, 1500*time.Millisecond
	out := make([]time.Duration, n)
	for i := range out {
		base := float64(lo) * math.Pow(float64(hi)/float64(lo), float64(i)/float64(n-1))
		out[i] = time.Duration(base * (0.7 + 0.6*rng.Float64()))
	}
	return out
}

// killStats tells where the kills landed and what resuming cost.
type killStats struct {
	kills          int // runs killed while still going
	finishedFirst  int // runs that ended by themselves before their kill
	beforeProgress int // kills after which the state held no resume point and no new token
	midPass        int // kills after which some pass had a resume point
	afterComplete  int // kills after which some view had completed a pass in a killed run
	passStarts     int // passes the runs started or resumed, from their logs
	resumedPasses  int // pending passes with a resume point that a run took up there
}

func (k killStats) String() string {
	return fmt.Sprintf("%d kills (%d landed before any progress, %d left a pass with a resume point, %d came after views completed), %d runs ended before their kill; "+
		"%d passes started, %d of them resumed from a resume point",
		k.kills, k.beforeProgress, k.midPass, k.afterComplete, k.finishedFirst, k.passStarts, k.resumedPasses)
}

// killLoop starts `mimecrawl <args(i)>` and kills it after each delay of the schedule until at
// least minKills runs were killed while still going, checking the state and the index after
// each one. observe, if set, sees the state before and after each run and the index after it.
// onFinished is called when a run ended before its kill, so that the caller can give the next
// run work to do.
func killLoop(t *testing.T, w *procWorld, args func(i int) []string, gone map[string]bool, observe func(prev, cur snapshot, got indexed), onFinished func(snapshot)) killStats {
	t.Helper()
	delays := killSchedule(t, minKills)
	var ks killStats
	prev := w.snapshot()
	baseline := prev
	prevIdx := w.indexed()
	for i := 0; ks.kills < minKills; i++ {
		if i >= 3*minKills {
			t.Fatalf("only %d of %d runs could be killed while going: %s", ks.kills, i, ks)
		}
		a := args(i)
		delay := delays[min(ks.kills, len(delays)-1)]
		p := w.start(a...)
		killed := false
		select {
		case <-p.done:
		case <-time.After(delay):
			p.kill(t)
			killed = true
		}
		code := p.wait(t)
		runFull := len(a) > 1 && a[1] == "--full"
		cur := w.snapshot()
		name := fmt.Sprintf("%s, kill after %v", p.name, delay.Round(time.Millisecond))
		switch {
		case killed && code == -1:
			ks.kills++
			t.Logf("%s: %s", name, cur)
		case code == -1:
			t.Fatalf("%s: killed by a signal the test did not send\n%s", name, p.tail(20))
		default:
			ks.finishedFirst++
			t.Logf("%s: ended by itself with exit code %d before the kill: %s", name, code, cur)
			if code != exitOK && code != exitPartial {
				t.Errorf("%s: exit code %d, want 0 or 3\n%s", name, code, p.tail(20))
			}
		}
		checkProgress(t, name, prev, cur, runFull, gone)
		ks.resumedPasses += checkResumedListing(t, name, p, prev, runFull)
		ks.passStarts += len(p.passStarts(t))
		ex := w.expect()
		got := w.indexed()
		w.assertCovered(name, cur, ex, got)
		assertKept(t, name, ex, prevIdx, got)
		if killed && code == -1 {
			ks.classify(baseline, prev, cur)
		}
		if observe != nil {
			observe(prev, cur, got)
		}
		if t.Failed() {
			t.Logf("state before the run: %v\nafter: %v\n%s", prev, cur, p.tail(30))
			t.FailNow() // later runs would only repeat the report
		}
		prev, prevIdx = cur, got
		if !killed && onFinished != nil {
			onFinished(cur)
			prev = w.snapshot()
		}
	}
	return ks
}

func (k *killStats) classify(baseline, prev, cur snapshot) {
	progressed, resumable, completed := false, false, false
	for key, c := range cur.pos {
		p, had := prev.pos[key]
		if !had || !c.Token.Equal(p.Token) || (c.Pass != nil && (p.Pass == nil || !c.Pass.Low.Equal(p.Pass.Low))) {
			progressed = true
		}
		if c.Pass != nil && !c.Pass.Low.IsZero() {
			resumable = true
		}
		if b, ok := baseline.pos[key]; c.Pass == nil && !c.Token.IsZero() && (!ok || c.Token.After(b.Token)) {
			completed = true
		}
	}
	if !progressed {
		k.beforeProgress++
	}
	if resumable {
		k.midPass++
	}
	if completed {
		k.afterComplete++
	}
}

// TestKillAndResume kills an incremental crawl many times; the final uninterrupted crawl
// completes the index exactly.
func TestKillAndResume(t *testing.T) {
	w := newProcWorld(t, procOptions{sim: killArchive})
	w.sim.SetFaults(killFaults())
	start := time.Now()
	mailboxes := keptMailboxes(w)
	added := 0
	ks := killLoop(t, w, func(int) []string { return []string{"crawl"} }, nil, nil, func(s snapshot) {
		// The killed runs finished the work: new mail keeps the next runs busy.
		waitPastTokens(s)
		for _, mb := range mailboxes {
			if _, err := w.sim.AddMessages(mb, 20); err != nil {
				t.Fatal(err)
			}
			added += 20
		}
	})

	w.sim.SetFaults(nil)
	before := w.snapshot()
	code, p := w.runToEnd("crawl")
	if code != exitOK {
		t.Fatalf("final crawl: exit code %d, want 0\n%s", code, p.tail(30))
	}
	after := w.snapshot()
	checkProgress(t, "final crawl", before, after, false, nil)
	checkResumedListing(t, "final crawl", p, before, false)
	for k, pos := range after.pos {
		if pos.Pass != nil || pos.Token.IsZero() {
			t.Errorf("after the final crawl %s still has a pending pass or no token: %s", k, showPos(pos))
		}
	}
	ex := w.expect()
	w.assertIndexEquals(ex)
	w.assertCovered("final crawl", after, ex, w.indexed())

	fetched := w.fetchCalls()
	refetched := fetched - int64(len(ex.messages))
	t.Logf("%s; %d messages (%d added during the test), %d attachments", ks, len(ex.messages), added, len(ex.attachments))
	t.Logf("resume cost: %d message fetches for %d messages: %d re-fetched over %d kills (%.1f per kill); %v in all",
		fetched, len(ex.messages), refetched, ks.kills, float64(refetched)/float64(ks.kills), time.Since(start).Round(time.Millisecond))
	if refetched < 0 {
		t.Errorf("fewer message fetches (%d) than messages indexed (%d)", fetched, len(ex.messages))
	}
	// A kill loses at most the messages in flight, at most performance.messages_in_flight in
	// the run and never more than a view has: what was
	// acknowledged is skipped by the next run, and a resumed pass lists only what is left.
	views := map[state.Key]int{}
	for _, m := range ex.messages {
		views[m.key]++
	}
	perKill := 0
	for _, n := range views {
		perKill += min(n, max(10*procPageSize, 1000))
	}
	if bound := int64(ks.kills * perKill); refetched > bound {
		t.Errorf("%d messages re-fetched over %d kills, more than the %d that can be in flight", refetched, ks.kills, bound)
	}
	ideal := 0
	for _, n := range views {
		ideal += (n + procPageSize - 1) / procPageSize
	}
	lists := w.sim.Stats().Requests["/api/archive/get-message-list"][200]
	t.Logf("list pages: %d fetched over all runs; one uninterrupted crawl of the final archive needs about %d (the difference is re-listed pages plus each run's look-back window)",
		lists, ideal)
	if ks.midPass == 0 || ks.resumedPasses == 0 {
		t.Errorf("no run resumed a pass from a resume point, so resuming inside a mailbox was not exercised: %s", ks)
	}
}

// TestKillAndResumeFull kills `crawl --full` many times after upstream deletions and additions
// (restarting it as --full, and every third time as a plain crawl, which must resume the
// interrupted full passes as full passes); the final uninterrupted `crawl --full` leaves exactly
// the truth: deleted messages and the deleted mailbox's documents gone, added ones in.
func TestKillAndResumeFull(t *testing.T) {
	w := newProcWorld(t, procOptions{sim: killArchive})
	start := time.Now()
	if code, p := w.runToEnd("crawl"); code != exitOK {
		t.Fatalf("first crawl: exit code %d, want 0\n%s", code, p.tail(30))
	}
	w.assertIndexEquals(w.expect())

	// Upstream changes: one mailbox deleted, messages (some with attachments) deleted from the
	// others, messages added.
	mailboxes := keptMailboxes(w)
	goneBox := mailboxes[1]
	if err := w.sim.DeleteMailbox(goneBox); err != nil {
		t.Fatal(err)
	}
	deleted := map[state.Key][]string{} // message document ids by view
	nDeleted := 0
	truth := w.sim.Truth()
	for _, mb := range truth.Mailboxes {
		if mb.Type != simulator.TypeMailbox || mb.Alias || mb.Local || nDeleted >= 9 {
			continue
		}
		n := 0
		for _, m := range mb.Messages {
			if n == 3 {
				break
			}
			if n < 2 && len(m.Attachments) == 0 {
				continue // the first two deleted from each mailbox have attachments
			}
			if err := w.sim.DeleteMessage(m.ID); err != nil {
				t.Fatal(err)
			}
			k := state.Key{Mailbox: strings.ToLower(mb.Address), View: m.View}
			deleted[k] = append(deleted[k], crawler.MessageDocID(k.Mailbox, m.View, m.ID))
			n++
			nDeleted++
		}
	}
	waitPastTokens(w.snapshot())
	for _, mb := range []string{mailboxes[0], mailboxes[2]} {
		if _, err := w.sim.AddMessages(mb, 6); err != nil {
			t.Fatal(err)
		}
	}
	gone := map[string]bool{goneBox: true}

	w.sim.SetFaults(killFaults())
	w.sim.ResetStats()
	// A full pass completed by a killed run is started again by the next `crawl --full`: count
	// how often, as part of the cost of a kill.
	completedFull := map[state.Key]int64{} // generation of a full pass completed in the loop
	redone := 0
	base := w.snapshot()
	observe := func(prev, cur snapshot, got indexed) {
		for k, c := range cur.pos {
			p := prev.pos[k]
			if c.Pass == nil && p.Pass != nil && p.Pass.Full && c.Generation == p.Pass.Generation {
				completedFull[k] = c.Generation
			}
			// A full pass completed since the deletions swept them from its view.
			if c.Pass == nil && c.Generation > base.pos[k].Generation {
				for _, id := range deleted[k] {
					if got.messages[id] > 0 {
						t.Errorf("%s completed a full pass (generation %d), yet message %s deleted upstream is still indexed", k, c.Generation, id)
					}
				}
			}
			if g := completedFull[k]; g > 0 && c.Pass != nil && c.Pass.Full && c.Pass.Generation > g {
				redone++
				delete(completedFull, k)
			}
		}
	}
	ks := killLoop(t, w, func(i int) []string {
		if i%3 == 2 {
			return []string{"crawl"}
		}
		return []string{"crawl", "--full"}
	}, gone, observe, nil)

	w.sim.SetFaults(nil)
	before := w.snapshot()
	code, p := w.runToEnd("crawl", "--full")
	if code != exitOK {
		t.Fatalf("final crawl --full: exit code %d, want 0\n%s", code, p.tail(30))
	}
	after := w.snapshot()
	checkProgress(t, "final crawl --full", before, after, true, gone)
	checkResumedListing(t, "final crawl --full", p, before, true)
	for k, pos := range after.pos {
		switch {
		case k.Mailbox == goneBox:
			t.Errorf("the deleted mailbox %s still has state: %s", k, showPos(pos))
		case pos.Pass != nil || pos.Token.IsZero():
			t.Errorf("after the final crawl %s still has a pending pass or no token: %s", k, showPos(pos))
		}
	}
	ex := w.expect()
	w.assertIndexEquals(ex)
	got := w.indexed()
	for k, ids := range deleted {
		for _, id := range ids {
			if got.messages[id] > 0 {
				t.Errorf("%s: message %s deleted upstream is still indexed", k, id)
			}
		}
	}
	var goneDocs struct {
		Count int `json:"count"`
	}
	w.es("POST", "/"+w.prefix+"-*/_count", fmt.Sprintf(`{"query":{"term":{%q:%q}}}`, index.FieldMailbox, goneBox), &goneDocs)
	if goneDocs.Count != 0 {
		t.Errorf("%d documents of the mailbox %s deleted upstream remain", goneDocs.Count, goneBox)
	}
	t.Logf("%s; %d messages deleted upstream and mailbox %s with its messages; %d messages, %d attachments expected",
		ks, nDeleted, goneBox, len(ex.messages), len(ex.attachments))
	t.Logf("full passes re-fetch by design: %d message fetches over the killed runs and the final run for %d messages; "+
		"%d view full passes completed by a killed run were started over by the next crawl --full; %v in all",
		w.fetchCalls(), len(ex.messages), redone, time.Since(start).Round(time.Millisecond))
	if ks.midPass == 0 || ks.resumedPasses == 0 {
		t.Errorf("no run resumed a pass from a resume point, so resuming inside a mailbox was not exercised: %s", ks)
	}
}

// TestElasticsearchDownMidCrawl makes Elasticsearch unavailable for a while in the middle of a
// crawl. The run ends (done, partial, or stopped by the breaker as "Elasticsearch unreachable")
// without a checkpoint passing what was not indexed, and the next run completes the index.
func TestElasticsearchDownMidCrawl(t *testing.T) {
	esURL := indextest.URL(t)
	proxy := indextest.NewProxy(t, esURL)
	w := newProcWorld(t, procOptions{sim: simulator.Options{Seed: 12, Domains: 2, Mailboxes: 4, Messages: 60}, esAddr: proxy.URL})
	w.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/archive/", LatencyMS: 3}})
	p := w.start("crawl")
	// Away once indexing is under way (waiting for that is not timed: a slow start is no
	// failure): 1.5 s answering 503, then 1.5 s refusing connections, then back.
	for deadline := time.Now().Add(processTimeout); proxy.BulkRequests() == 0 && !p.exited() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	proxy.SetDown(true)
	t.Logf("Elasticsearch down after %d bulk requests", proxy.BulkRequests())
	select {
	case <-p.done:
	case <-time.After(1500 * time.Millisecond):
	}
	proxy.SetDown(false)
	proxy.SetRefuse(true)
	select {
	case <-p.done:
	case <-time.After(1500 * time.Millisecond):
	}
	proxy.SetRefuse(false)
	code := p.wait(t)
	switch {
	case code == exitOK, code == exitPartial:
		// The bulk client's own retries outlasted the outage.
	case code == exitFatal && strings.Contains(p.tail(30), "Elasticsearch unreachable"):
		// The breaker stopped the run: no more fetching for documents that cannot be indexed.
		if !strings.Contains(p.tail(30), `"documents_failed":0`) {
			t.Errorf("documents that never reached Elasticsearch were counted as rejected\n%s", p.tail(30))
		}
	default:
		t.Errorf("crawl with Elasticsearch down for a while: exit code %d, want 0, 3, or 1 saying Elasticsearch unreachable\n%s", code, p.tail(30))
	}
	first := w.snapshot()
	ex := w.expect()
	firstIdx := w.indexed()
	w.assertCovered("crawl with Elasticsearch down", first, ex, firstIdx)
	t.Logf("first run: exit code %d; %s", code, first)

	w.sim.SetFaults(nil)
	code, p = w.runToEnd("crawl")
	if code != exitOK {
		t.Fatalf("second crawl: exit code %d, want 0\n%s", code, p.tail(30))
	}
	second := w.snapshot()
	checkProgress(t, "second crawl", first, second, false, nil)
	if n := checkResumedListing(t, "second crawl", p, first, false); n == 0 && len(p.passStarts(t)) == 0 {
		t.Errorf("the second crawl logged no pass start; the test reads them from its debug log")
	}
	w.assertIndexEquals(ex)
	secondIdx := w.indexed()
	w.assertCovered("second crawl", second, ex, secondIdx)
	assertKept(t, "second crawl", ex, firstIdx, secondIdx)
}

// keptMailboxes lists the addresses of the mailboxes the default rules keep.
func keptMailboxes(w *procWorld) []string {
	w.t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, m := range w.expect().messages {
		if !seen[m.key.Mailbox] {
			seen[m.key.Mailbox] = true
			out = append(out, m.key.Mailbox)
		}
	}
	if len(out) < 3 {
		w.t.Fatalf("the archive keeps %d mailboxes, the test needs 3", len(out))
	}
	sort.Strings(out)
	return out
}

// assertKept checks that no expected document the index held before a run is gone after it:
// nothing but a sweep of a completed full pass or a mailbox removal deletes, and neither may
// touch what the archive still holds.
func assertKept(t *testing.T, run string, ex expectation, before, after indexed) {
	t.Helper()
	lost := 0
	for id := range ex.messages {
		if before.messages[id] > 0 && after.messages[id] == 0 {
			if lost++; lost <= 5 {
				t.Errorf("%s: message document %s was indexed before the run and is gone after it", run, id)
			}
		}
	}
	for id := range ex.attachments {
		if before.attachments[id] > 0 && after.attachments[id] == 0 {
			if lost++; lost <= 5 {
				t.Errorf("%s: attachment document %s was indexed before the run and is gone after it", run, id)
			}
		}
	}
}
