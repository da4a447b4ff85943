package main

import (
	"fmt"
	"sort"
	"strings"
)

// verdict is how a headline measure compares with its goal.
type verdict string

const (
	pass verdict = "pass"
	fail verdict = "fail"
	// notAvailable: the measure could not be taken (its measurement did not run, or the
	// crawler does not report what it needs).
	notAvailable verdict = "n/a"
	// info: a measure shown for context, with no goal of its own.
	info verdict = "info"
)

// Goal is one row of the headline table: a goal of the performance issue, the median of
// the runs that measured it, and whether it is met.
type Goal struct {
	Name string `json:"name"`
	// Value is the median the verdict is taken on; nil when not available.
	Value   *float64 `json:"value"`
	Measure string   `json:"measure"` // Value with its context, as shown
	Runs    int      `json:"runs"`
	Want    string   `json:"goal"`
	Limit   string   `json:"limit"` // the physical limit or bound next to it
	Verdict verdict  `json:"verdict"`
	Note    string   `json:"note,omitempty"`
}

// Goals of the issue.
const (
	goalCallsPerMessage = 1.05
	goalLittleRatio     = 0.9
	goalLittleLatencyMS = 100
	goalCPURatio        = 0.5
	goalRSSGrowth       = 0.10
	goalRSSPeakMB       = 150
	goalQuotaShare      = 0.90
	goal429Share        = 0.01
)

func ptr(v float64) *float64 { return &v }

// quotient is a/b, or nil when b is not positive.
func quotient(a, b float64) *float64 {
	if b <= 0 {
		return nil
	}
	return ptr(a / b)
}

// quotientOf is a/b, or nil when either is missing or b is not positive.
func quotientOf(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	return quotient(*a, *b)
}

// littleBound is Little's law for a pipeline of concurrency slots, each carrying one message
// through requestsPerMessage requests one after the other, every request taking latency
// seconds: at most concurrency / (latency × requestsPerMessage) messages per second. nil when
// any input is missing or not positive.
func littleBound(concurrency *float64, latency float64, requestsPerMessage *float64) *float64 {
	if concurrency == nil || requestsPerMessage == nil || *concurrency <= 0 || latency <= 0 || *requestsPerMessage <= 0 {
		return nil
	}
	return ptr(*concurrency / (latency * *requestsPerMessage))
}

// medianOf is the median of the values present, nil when none is.
func medianOf(xs []*float64) *float64 {
	var vs []float64
	for _, x := range xs {
		if x != nil {
			vs = append(vs, *x)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	return ptr(median(vs))
}

// judge compares a value with its goal; a missing value is n/a, never a pass.
func judge(v *float64, met func(float64) bool) verdict {
	switch {
	case v == nil:
		return notAvailable
	case met(*v):
		return pass
	default:
		return fail
	}
}

// fmtOpt formats v, or "n/a" when it is missing.
func fmtOpt(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

// headline computes the goals from the measurements; a goal whose measurement did not run is
// n/a with a note saying which.
func (r *Results) headline() []Goal {
	var out []Goal
	out = append(out, r.callsGoal())
	out = append(out, r.latencyGoals()...)
	out = append(out, r.cpuGoal(), r.rssGoal())
	out = append(out, r.quotaGoals()...)
	if r.Sporadic != nil {
		out = append(out, r.sporadicGoal())
	}
	return out
}

func missing(name, want, why string) Goal {
	return Goal{Name: name, Measure: "n/a", Want: want, Limit: "—", Verdict: notAvailable, Note: why}
}

// runs returns the first crawls of a scaling row (results written before repeated runs hold
// only Run).
func (s ScaleRow) runs() []runStats {
	if len(s.Runs) == 0 && s.Run.Seconds > 0 {
		return []runStats{s.Run}
	}
	return s.Runs
}

// firstCrawls are the first crawls the per-message goals are read from: the runs of the
// largest scaling archive, or else the crawler runs of the ceiling comparison.
func (r *Results) firstCrawls() ([]runStats, string) {
	if n := len(r.Scaling); n > 0 {
		s := r.Scaling[n-1]
		if runs := s.runs(); len(runs) > 0 {
			return runs, fmt.Sprintf("first crawls of %s messages in %d mailboxes", thousands(s.Messages), s.Mailboxes)
		}
	}
	if c := r.Ceiling; c != nil && len(c.Pairs) > 0 {
		runs := make([]runStats, 0, len(c.Pairs))
		for _, p := range c.Pairs {
			runs = append(runs, p.Crawler)
		}
		return runs, fmt.Sprintf("crawler runs of the ceiling comparison, %s messages in %d mailboxes", thousands(c.Messages), c.Mailboxes)
	}
	return nil, ""
}

func settingsNote(runs []runStats) string {
	for _, r := range runs {
		if r.Settings != "" {
			return "settings overridden: " + r.Settings
		}
	}
	return ""
}

func joinNotes(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// callsGoal: quota-counted calls (every /api/ call the simulator admitted; the token
// endpoint and pre-signed downloads are not counted) per message fetched.
func (r *Results) callsGoal() Goal {
	const name, want = "quota-counted `/api/` calls per message (first crawl, shipped defaults)", "≤ 1.05"
	runs, what := r.firstCrawls()
	var calls, floor []*float64
	for _, run := range runs {
		if run.Requests.Admitted == 0 {
			continue // not counted (results of an older benchmark)
		}
		m := float64(run.Messages)
		calls = append(calls, quotient(float64(run.Requests.Admitted), m))
		floor = append(floor, quotient(m+float64(run.Requests.Lists+run.Requests.Enumeration), m))
	}
	if len(calls) == 0 {
		return missing(name, want, "no first crawl with the simulator's request counts in this run (scaling or ceiling)")
	}
	v, lim := medianOf(calls), medianOf(floor)
	return Goal{Name: name, Value: v, Runs: len(calls), Want: want,
		Measure: fmt.Sprintf("%s (%s)", fmtOpt(v, "%.3f"), pathsPerMessage(runs[0])),
		Limit:   fmt.Sprintf("%s = 1 + (list pages + enumeration calls) / messages", fmtOpt(lim, "%.3f")),
		Verdict: judge(v, func(x float64) bool { return x <= goalCallsPerMessage }),
		Note:    joinNotes(what, settingsNote(runs))}
}

// pathsPerMessage breaks a run's /api/ calls down by endpoint, per message.
func pathsPerMessage(run runStats) string {
	var parts []string
	for path, n := range run.Requests.ByPath {
		if !strings.HasPrefix(path, "/api/") || run.Messages == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.3f", strings.TrimPrefix(path[strings.LastIndexByte(path, '/'):], "/"), float64(n)/float64(run.Messages)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// latencyGoals: per latency, the fixed configuration against Little's bound for its
// concurrency (the goal at 100 ms), and where the shipped defaults' limit settled (above the
// fixed concurrency at 100 ms).
func (r *Results) latencyGoals() []Goal {
	if r.Latency == nil || len(r.Latency.Groups) == 0 {
		return []Goal{
			missing(fmt.Sprintf("messages/s at %d ms per request ÷ Little's bound, fixed %d × %d", goalLittleLatencyMS, fixedMailboxes, fixedMessages), "≥ 0.9", "the latency measurement did not run"),
			missing(fmt.Sprintf("shipped defaults at %d ms: concurrency limit settled at", goalLittleLatencyMS), fmt.Sprintf("> %d", fixedMailboxes*fixedMessages), "the latency measurement did not run"),
		}
	}
	var out []Goal
	for _, g := range r.Latency.Groups {
		goal := g.LatencyMS == goalLittleLatencyMS
		for _, c := range g.Configs {
			row := Goal{Runs: len(c.Runs), Note: joinNotes(c.Note, fmt.Sprintf("%s messages in %d mailboxes", thousands(g.Messages), g.Mailboxes))}
			bound := fmt.Sprintf("bound %s msg/s = %s / (%.1f s × %s requests per message)", fmtOpt(c.Bound, "%.1f"),
				fmtOpt(c.Concurrency, "%.1f"), float64(g.LatencyMS)/1000, fmtOpt(c.RequestsPerMessage, "%.2f"))
			switch c.Key {
			case configFixed:
				row.Name = fmt.Sprintf("messages/s at %d ms per request ÷ Little's bound, %s", g.LatencyMS, c.Name)
				row.Value = c.Ratio
				row.Measure = fmt.Sprintf("%s (%s msg/s steady; whole run %.1f msg/s, %s of the bound)", fmtOpt(c.Ratio, "%.2f"),
					fmtOpt(c.SteadyMessagesPerSec, "%.1f"), c.MessagesPerSec, fmtOpt(c.WallRatio, "%.2f"))
				row.Limit = bound
				row.Want, row.Verdict = "—", info
				if goal {
					row.Want, row.Verdict = "≥ 0.9", judge(c.Ratio, func(x float64) bool { return x >= goalLittleRatio })
				}
			default:
				fixedConc := float64(fixedMailboxes * fixedMessages)
				row.Name = fmt.Sprintf("%s at %d ms: concurrency limit settled at", c.Name, g.LatencyMS)
				row.Value = c.Limit
				row.Measure = fmt.Sprintf("%s (mean %s, most in flight %s; %s msg/s steady, whole run %.1f msg/s, %s of its bound)",
					fmtOpt(c.Limit, "%.0f"), fmtOpt(c.LimitAvg, "%.1f"), fmtOpt(c.InflightMax, "%.0f"),
					fmtOpt(c.SteadyMessagesPerSec, "%.1f"), c.MessagesPerSec, fmtOpt(c.Ratio, "%.2f"))
				row.Limit = bound
				row.Want, row.Verdict = "—", info
				if goal {
					row.Want = fmt.Sprintf("> %.0f (fixed %d × %d)", fixedConc, fixedMailboxes, fixedMessages)
					row.Verdict = judge(c.Limit, func(x float64) bool { return x > fixedConc })
				}
				if c.Limit == nil && c.Note == "" {
					row.Note = joinNotes("the crawler reports no api_concurrency_limit", row.Note)
				}
			}
			out = append(out, row)
		}
	}
	return out
}

// cpuGoal: the crawler's CPU per document over Elasticsearch's, both from the same crawl.
// The documents are the same, so per run it is the crawler's CPU over Elasticsearch's.
func (r *Results) cpuGoal() Goal {
	const name, want = "crawler CPU-s per document ÷ Elasticsearch CPU-s per document, same crawl", "≤ 0.5"
	runs, what := r.firstCrawls()
	var ratios, crawler, es []*float64
	for _, run := range runs {
		if q := quotient(run.CrawlerCPU, run.ESCPU); q != nil && run.Docs > 0 {
			ratios = append(ratios, q)
			crawler = append(crawler, ptr(1000*run.CrawlerCPU/float64(run.Docs)))
			es = append(es, ptr(1000*run.ESCPU/float64(run.Docs)))
		}
	}
	if len(ratios) == 0 {
		return missing(name, want, "no first crawl with Elasticsearch CPU measured (scaling or ceiling)")
	}
	v := medianOf(ratios)
	return Goal{Name: name, Value: v, Runs: len(ratios), Want: want, Limit: "—",
		Measure: fmt.Sprintf("%s (crawler %s, Elasticsearch %s CPU-s per 1,000 documents)", fmtOpt(v, "%.2f"),
			fmtOpt(medianOf(crawler), "%.3f"), fmtOpt(medianOf(es), "%.3f")),
		Verdict: judge(v, func(x float64) bool { return x <= goalCPURatio }),
		Note:    joinNotes(what, settingsNote(runs))}
}

// rssGoal: the growth of the median peak RSS from the smallest to the largest scaling
// archive; met when within 10% and the larger peak within 150 MB.
func (r *Results) rssGoal() Goal {
	const name, want = "peak RSS growth, smallest → largest archive", "≤ +10% and ≤ 150 MB"
	if len(r.Scaling) < 2 {
		return missing(name, want, "needs two scaling sizes")
	}
	lo, hi := r.Scaling[0], r.Scaling[len(r.Scaling)-1]
	loRSS, hiRSS := medianRSS(lo), medianRSS(hi)
	g := Goal{Name: fmt.Sprintf("peak RSS growth %s → %s messages (%d mailboxes)", thousands(lo.Messages), thousands(hi.Messages), hi.Mailboxes),
		Runs: min(len(lo.runs()), len(hi.runs())), Want: want, Limit: "—"}
	if loRSS <= 0 || hiRSS <= 0 {
		g.Measure, g.Verdict, g.Note = "n/a", notAvailable, "the crawler reported no peak_rss_bytes"
		return g
	}
	growth := float64(hiRSS)/float64(loRSS) - 1
	g.Value = &growth
	g.Measure = fmt.Sprintf("%+.1f%% (%.1f → %.1f MB, medians)", 100*growth, mb(loRSS), mb(hiRSS))
	g.Verdict = judge(g.Value, func(x float64) bool { return x <= goalRSSGrowth && mb(hiRSS) <= goalRSSPeakMB })
	g.Note = settingsNote(append(lo.runs(), hi.runs()...))
	return g
}

func medianRSS(s ScaleRow) int64 {
	var xs []float64
	for _, r := range s.runs() {
		if r.PeakRSSBytes > 0 {
			xs = append(xs, float64(r.PeakRSSBytes))
		}
	}
	return int64(median(xs))
}

// quotaGoals: the rate-limited crawl with the shipped defaults: quota used, 429s, and the
// concurrency limit the crawler settled at.
func (r *Results) quotaGoals() []Goal {
	rl := r.RateLimited
	if rl == nil || len(rl.Runs) == 0 {
		return []Goal{missing("quota used under a 600/min quota (burst + refill)", "≥ 90%", "the rate-limited measurement did not run"),
			missing("calls answered 429 under the quota", "≤ 1%", "the rate-limited measurement did not run")}
	}
	first := rl.Runs[0]
	note := joinNotes(fmt.Sprintf("%.0f s crawls", first.Seconds), rl.Settings)
	quota, share := ptr(rl.QuotaShare), ptr(rl.Share429)
	limited := Goal{Name: "calls answered 429 under the quota", Value: share, Runs: len(rl.Runs), Want: "≤ 1%", Limit: "—",
		Measure: fmt.Sprintf("%.2f%% (steady state %.2f%%)", 100*rl.Share429, 100*rl.SteadyShare429),
		Verdict: judge(share, func(x float64) bool { return x <= goal429Share }), Note: note}
	used := Goal{Name: fmt.Sprintf("quota used at %d/min (burst + refill)", first.LimitPerMinute), Value: quota, Runs: len(rl.Runs), Want: "≥ 90%",
		Measure: fmt.Sprintf("%.1f%% (steady state %.1f%%)", 100*rl.QuotaShare, 100*rl.SteadyQuotaShare),
		Limit:   fmt.Sprintf("%.0f calls = %d burst + %d/min × %.0f s", first.MaxAdmissible, first.LimitPerMinute, first.LimitPerMinute, first.Seconds),
		Verdict: judge(quota, func(x float64) bool { return x >= goalQuotaShare }), Note: note}
	settled := Goal{Name: "concurrency limit settled at under the quota", Value: rl.Limit, Runs: len(rl.Runs), Want: "—", Limit: "—",
		Measure: fmt.Sprintf("%s (mean %s)", fmtOpt(rl.Limit, "%.0f"), fmtOpt(rl.LimitAvg, "%.1f")), Verdict: info}
	if rl.Limit == nil {
		settled.Note = "the crawler reports no api_concurrency_limit"
	}
	return []Goal{used, limited, settled}
}

// thousands renders n with commas: 300000 → 300,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
