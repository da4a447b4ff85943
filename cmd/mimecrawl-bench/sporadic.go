package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// The sporadic-429 crawl: an archive of 10 mailboxes × 300 messages behind 20 ms of latency
// on every request, crawled once as it is and once with 3% of /api calls answered 429 with a
// hint of 100 ms that has nothing to do with a quota (no quota is set). The goal: sporadic 429s
// cost what they ask, the crawl with them keeps at least 90% of the throughput without them.
// Each crawl is stopped after sporadicCap at the latest, so that a crawler whose pace
// collapses still gives a number (messages indexed over the time it ran).
const (
	sporadicMailboxes = 10
	sporadicMessages  = 3000
	sporadicLatencyMS = 20
	sporadicShare     = 0.03
	sporadicResetMS   = 100
	sporadicCap       = 120 * time.Second
	sporadicGoal      = 0.90
)

// SporadicResult is the sporadic-429 crawl: the same archive without and with the 429s.
type SporadicResult struct {
	Messages  int         `json:"messages"`
	Mailboxes int         `json:"mailboxes"`
	LatencyMS int         `json:"latency_ms"`
	Share     float64     `json:"share_429"`
	ResetMS   int         `json:"reset_ms"`
	CapSecond float64     `json:"cap_seconds"`
	Without   SporadicRun `json:"without"`
	With      SporadicRun `json:"with"`
	Ratio     float64     `json:"throughput_ratio"`
	Note      string      `json:"note,omitempty"`
	Settings  string      `json:"settings,omitempty"`
}

// SporadicRun is one crawl of the sporadic measurement.
type SporadicRun struct {
	Seconds        float64 `json:"seconds"`
	Messages       int64   `json:"messages_indexed"`
	MessagesPerSec float64 `json:"messages_per_second"`
	APIRequests    int64   `json:"api_requests"` // /api requests the simulator answered
	RateLimited    int64   `json:"rate_limited"`
	QuotaWait      float64 `json:"crawler_quota_wait_seconds"`
	Stopped        bool    `json:"stopped_at_cap"`
	ExitCode       int     `json:"exit_code"`
}

// runSporadic crawls the archive without, then with the sporadic 429s, each against a fresh
// simulator.
func (b *bench) runSporadic(ctx context.Context) error {
	res := &SporadicResult{Messages: sporadicMessages, Mailboxes: sporadicMailboxes, LatencyMS: sporadicLatencyMS,
		Share: sporadicShare, ResetMS: sporadicResetMS, CapSecond: sporadicCap.Seconds(), Settings: strings.Join(b.p.Set, " ")}
	b.res.Sporadic = res
	var err error
	if res.Without, err = b.sporadicRun(ctx, false); err != nil {
		return err
	}
	b.logf("without 429s: %d messages in %.1fs (%.0f/s)", res.Without.Messages, res.Without.Seconds, res.Without.MessagesPerSec)
	if res.With, err = b.sporadicRun(ctx, true); err != nil {
		return err
	}
	b.logf("with %.0f%% 429s of %d ms: %d messages in %.1fs (%.0f/s), %d answered 429", 100*sporadicShare, sporadicResetMS,
		res.With.Messages, res.With.Seconds, res.With.MessagesPerSec, res.With.RateLimited)
	if res.Without.MessagesPerSec > 0 {
		res.Ratio = res.With.MessagesPerSec / res.Without.MessagesPerSec
	}
	return nil
}

func (b *bench) sporadicRun(ctx context.Context, with bool) (SporadicRun, error) {
	a := archiveFor(b.p.Seed, sporadicMailboxes, sporadicMessages)
	s, err := startSim(ctx, b.p.BinDir, a, b.work)
	if err != nil {
		return SporadicRun{}, err
	}
	defer s.stop()
	faults := []simulator.Fault{{PathPrefix: "/", LatencyMS: sporadicLatencyMS}}
	if with {
		faults = append(faults, simulator.Fault{PathPrefix: "/api/", Status: http.StatusTooManyRequests, Probability: sporadicShare, ResetMS: sporadicResetMS})
	}
	if err := s.setFaults(ctx, faults); err != nil {
		return SporadicRun{}, err
	}
	prefix := b.prefix("s")
	defer b.cleanup(ctx, prefix)
	if err := s.resetStats(ctx); err != nil {
		return SporadicRun{}, err
	}
	r, err := b.startCrawl(crawlSpec{Name: prefix, SimURL: s.url, Prefix: prefix,
		StatePath: filepath.Join(b.work, prefix+".db"), Set: b.p.Set})
	if err != nil {
		return SporadicRun{}, err
	}
	var run SporadicRun
	select {
	case err := <-r.done:
		r.done <- err // put the exit back for wait, which reads it
	case <-time.After(time.Until(r.started.Add(sporadicCap))):
		run.Stopped = true
		r.stop()
	case <-ctx.Done():
		r.stop()
	}
	res, err := r.wait(ctx)
	if err != nil {
		return SporadicRun{}, err
	}
	st, err := s.stats(ctx)
	if err != nil {
		return SporadicRun{}, err
	}
	api := countAPI(st)
	run.Seconds, run.Messages, run.ExitCode = res.Seconds, res.Summary.Messages, res.ExitCode
	run.APIRequests, run.RateLimited = api.Admitted+api.Limited, st.RateLimited
	run.QuotaWait = res.Summary.APIQuotaWaitSeconds
	if run.Seconds > 0 {
		run.MessagesPerSec = float64(run.Messages) / run.Seconds
	}
	if !run.Stopped && run.ExitCode != 0 {
		return run, fmt.Errorf("sporadic crawl %s exited with %d; see %s", prefix, run.ExitCode, r.logPath)
	}
	return run, nil
}

// setFaults replaces the simulator's faults.
func (s *sim) setFaults(ctx context.Context, faults []simulator.Fault) error {
	body, err := json.Marshal(faults)
	if err != nil {
		return fmt.Errorf("encode simulator faults: %w", err)
	}
	return s.faults(ctx, http.MethodPut, body, "set simulator faults")
}

// sporadicGoalRow is the headline row of the sporadic-429 crawl.
func (r *Results) sporadicGoal() Goal {
	const name, want = "sporadic 429s (3% of calls, 100 ms hints): throughput against none", "≥ 90%"
	sp := r.Sporadic
	if sp == nil || sp.Without.MessagesPerSec == 0 {
		return missing(name, want, "the sporadic measurement did not run")
	}
	v := sp.Ratio
	return Goal{Name: name, Value: &v, Measure: fmt.Sprintf("%.1f%%", 100*v), Runs: 1, Want: want, Limit: "—",
		Verdict: judge(&v, func(x float64) bool { return x >= sporadicGoal }),
		Note:    fmt.Sprintf("%.0f vs %.0f messages/s; %d answered 429", sp.With.MessagesPerSec, sp.Without.MessagesPerSec, sp.With.RateLimited)}
}

// sporadicMarkdown renders the section.
func (sp *SporadicResult) markdown(w func(string, ...any)) {
	w("## 4b. Sporadic 429s (not a quota)\n\n")
	w("%d messages in %d mailboxes, %d ms added to every simulator request; once as is, once with %.0f%% of `/api` requests answered 429 with a %d ms hint (no quota set). Each crawl is stopped after %.0f s at the latest. ",
		sp.Messages, sp.Mailboxes, sp.LatencyMS, 100*sp.Share, sp.ResetMS, sp.CapSecond)
	if sp.Settings != "" {
		w("Settings: `%s`. ", sp.Settings)
	}
	w("Goal: the crawl with the 429s keeps at least 90%% of the throughput.\n\n")
	w("| crawl | seconds | messages indexed | messages/s | /api requests | answered 429 | crawler's quota wait s | stopped at the cap |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range []struct {
		name string
		r    SporadicRun
	}{{"without 429s", sp.Without}, {"with 429s", sp.With}} {
		w("| %s | %.1f | %d | %.0f | %d | %d | %.1f | %v |\n", x.name, x.r.Seconds, x.r.Messages, x.r.MessagesPerSec, x.r.APIRequests, x.r.RateLimited, x.r.QuotaWait, x.r.Stopped)
	}
	w("| **ratio** | | | **%.1f%%** | | | | |\n\n", 100*sp.Ratio)
}
