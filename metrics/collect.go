package metrics

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// The series read from snapshots. docs/operations.md lists them all; keep it in step.
var (
	apiCalls       = desc("api_calls_total", "Mimecast HTTP attempts by endpoint (method and path template, token or download) and status (none: no answer).", "endpoint", "status")
	apiRateLimited = desc("api_rate_limited_total", "Mimecast answers 429 (quota exhausted).")
	apiRetries     = desc("api_retries_total", "Mimecast attempts repeated after a retryable error.")
	apiQuotaWait   = desc("api_quota_wait_seconds_total", "Seconds calls spent waiting for Mimecast's quota (after 429s, or to stay within a published budget), summed over calls.")
	apiGroupCalls  = desc("api_quota_calls_total", "Mimecast API calls counted by a quota (no downloads, no token requests), by quota group (account: every archive and directory endpoint; threats; siem-batch; siem-stream).", "group")
	apiGroupLimit  = desc("api_quota_rate_limited_total", "Mimecast answers 429 by quota group.", "group")
	apiGroupWait   = desc("api_quota_group_wait_seconds_total", "Seconds calls spent waiting for Mimecast's quota, by quota group, summed over calls.", "group")
	apiDownload    = desc("api_download_bytes_total", "Bytes of files downloaded from Mimecast.")
	apiConcLimit   = desc("api_concurrency_limit", "Bound on Mimecast archive requests in flight (performance.concurrency) now.")
	apiInflightMax = desc("api_inflight_max", "Most Mimecast archive requests that were in flight at once.")
	apiConcChanges = desc("api_concurrency_changes_total", "Times the adaptive bound on archive requests in flight moved, by direction (increase, decrease).", "direction")

	bulkRequests = desc("bulk_requests_total", "Bulk requests sent to Elasticsearch.")
	bulkRetries  = desc("bulk_item_retries_total", "Bulk items re-queued after Elasticsearch answered 429 for them.")
	bulkBytes    = desc("bulk_bytes_total", "Bytes of bulk request bodies sent to Elasticsearch.")

	mailboxLag        = desc("mailbox_lag_seconds", "Lag of the kept mailboxes (now minus the delta token of the mailbox's oldest view) when the run ended.")
	mailboxLagWorst   = desc("mailbox_lag_worst_seconds", "Lag of the most lagging mailboxes (metrics.worst_mailboxes of them).", "mailbox")
	mailboxesNoCheckp = desc("mailboxes_without_checkpoint", "Kept mailboxes with a view that never completed a pass (no lag yet).")

	runDuration    = desc("run_duration_seconds", "Wall time of the run.")
	runExitCode    = desc("run_exit_code", "Exit code of the run (0 ok, 1 fatal, 3 partial, 4 removal refused).")
	runFinished    = desc("run_finished_timestamp_seconds", "When the run ended (Unix time).")
	runLastSuccess = desc("run_last_success_timestamp_seconds", "When a run last ended with exit code 0 (Unix time); pushed only by successful runs.")
	runTextMisses  = desc("run_attachments_without_text", "Attachments the run indexed without text, by format and reason (as in mimecast.attachment_error).", "format", "reason")

	alertsLag       = desc("alerts_lag_seconds", "Now minus the newest alert event acknowledged by Elasticsearch, by source (grows while a source is quiet).", "source")
	alertsSourceLag = desc("alerts_source_lag_seconds", "Freshness: now minus the newest alert event of the source acknowledged by Elasticsearch (updated after each pass of that source; sources poll independently).", "source")
	alertsPending   = desc("alerts_pending", "Alerts (refused by Elasticsearch, or threat events without details) and SIEM files parked in the source's cursors, tried again every pass; not 0 means something is not written yet.", "source")
	alertsLastPoll  = desc("alerts_last_poll_timestamp_seconds", "When the source's last poll ended (Unix time).", "source")
	alertsForbidden = desc("alerts_source_forbidden", "1 when Mimecast answered 403: the API application lacks the source's permission.", "source")
	alertsFailing   = desc("alerts_source_failing", "1 when the source's last poll ended with an error.", "source")
	filterLimited   = desc("alerts_filter_limited_total", "Alert filter evaluations stopped at their bound (CEL cost limit or the per-alert deadline); each kept its alert.")
)

// lagQuantiles are the quantiles of mailbox_lag_seconds.
var lagQuantiles = []float64{0.5, 0.9, 0.99}

// snapshots is the collector of every series read from a snapshot.
type snapshots struct {
	m      *Metrics
	worstN int
}

func (s *snapshots) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{apiCalls, apiRateLimited, apiRetries, apiQuotaWait, apiDownload,
		apiGroupCalls, apiGroupLimit, apiGroupWait,
		apiConcLimit, apiInflightMax, apiConcChanges,
		bulkRequests, bulkRetries, bulkBytes, mailboxLag, mailboxLagWorst, mailboxesNoCheckp,
		runDuration, runExitCode, runFinished, runLastSuccess, runTextMisses,
		alertsLag, alertsSourceLag, alertsPending, alertsLastPoll, alertsForbidden, alertsFailing, filterLimited} {
		ch <- d
	}
}

func (s *snapshots) Collect(ch chan<- prometheus.Metric) {
	m := s.m
	m.mu.Lock()
	api, writer, filters, lag, run, sources := m.api, m.writer, m.filters, m.lag, m.run, m.sources
	m.mu.Unlock()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	if api != nil {
		st := api.Stats()
		for k, n := range st.ByEndpoint {
			counter(apiCalls, float64(n), k.Endpoint, statusLabel(k.Status))
		}
		counter(apiRateLimited, float64(st.RateLimited))
		counter(apiRetries, float64(st.Retries))
		counter(apiQuotaWait, st.QuotaWait.Seconds())
		counter(apiDownload, float64(st.DownloadBytes))
		for g, gs := range st.Groups {
			counter(apiGroupCalls, float64(gs.Calls), g)
			counter(apiGroupLimit, float64(gs.RateLimited), g)
			counter(apiGroupWait, gs.QuotaWait.Seconds(), g)
		}
		if c := st.Concurrency; c.Limit > 0 {
			gauge(apiConcLimit, float64(c.Limit))
			gauge(apiInflightMax, float64(c.InFlightMax))
			counter(apiConcChanges, float64(c.Increases), "increase")
			counter(apiConcChanges, float64(c.Decreases), "decrease")
		}
	}
	if writer != nil {
		st := writer.Stats()
		counter(bulkRequests, float64(st.Requests))
		counter(bulkRetries, float64(st.Retried))
		counter(bulkBytes, float64(st.Bytes))
	}
	if filters != nil {
		counter(filterLimited, float64(filters.FilterLimited()))
	}
	if lag != nil {
		ch <- prometheus.MustNewConstSummary(mailboxLag, uint64(len(lag.lags)), lagSum(lag.lags), lagQuantileValues(lag.lags))
		for _, l := range lag.lags[:min(s.worstN, len(lag.lags))] {
			gauge(mailboxLagWorst, l.seconds, l.mailbox)
		}
		gauge(mailboxesNoCheckp, float64(lag.without))
	}
	if run != nil {
		gauge(runDuration, run.Finished.Sub(run.Started).Seconds())
		gauge(runExitCode, float64(run.ExitCode))
		gauge(runFinished, unix(run.Finished))
		if run.ExitCode == 0 {
			gauge(runLastSuccess, unix(run.Finished))
		}
		for _, t := range run.TextMisses {
			gauge(runTextMisses, float64(t.Count), t.Format, t.Reason)
		}
	}
	now := m.now()
	for _, src := range sources {
		if !src.LatestEvent.IsZero() {
			lag := max(now.Sub(src.LatestEvent).Seconds(), 0)
			gauge(alertsLag, lag, src.Source)
			gauge(alertsSourceLag, lag, src.Source)
		}
		if !src.LastPoll.IsZero() {
			gauge(alertsLastPoll, unix(src.LastPoll), src.Source)
		}
		gauge(alertsPending, float64(src.Pending), src.Source)
		gauge(alertsForbidden, flag(src.Forbidden), src.Source)
		gauge(alertsFailing, flag(src.Failing), src.Source)
	}
}

func lagSum(ls []lagEntry) float64 {
	var sum float64
	for _, l := range ls {
		sum += l.seconds
	}
	return sum
}

// lagQuantileValues returns the nearest-rank quantiles of ls (sorted, largest first): exact
// values of the snapshot, not estimates.
func lagQuantileValues(ls []lagEntry) map[float64]float64 {
	q := make(map[float64]float64, len(lagQuantiles))
	if len(ls) == 0 {
		for _, p := range lagQuantiles {
			q[p] = math.NaN()
		}
		return q
	}
	asc := make([]float64, len(ls))
	for i, l := range ls {
		asc[len(ls)-1-i] = l.seconds
	}
	for _, p := range lagQuantiles {
		rank := int(math.Ceil(p*float64(len(asc)))) - 1
		q[p] = asc[max(rank, 0)]
	}
	return q
}

// unix is t in Unix seconds, to the millisecond.
func unix(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
