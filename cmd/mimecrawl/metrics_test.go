package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/internal/job"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// pushgatewayBinary returns the Pushgateway to push to: $MIMECRAWL_PUSHGATEWAY, else what
// scripts/pushgateway.sh builds into .cache/bin, else one on PATH. When there is none the test
// is skipped, except under CI=true, where CI builds it, so its absence is a failure.
func pushgatewayBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("MIMECRAWL_PUSHGATEWAY"), filepath.Join("..", "..", ".cache", "bin", "pushgateway")} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	if p, err := exec.LookPath("pushgateway"); err == nil {
		return p
	}
	const msg = "no pushgateway binary; scripts/pushgateway.sh builds it (or set MIMECRAWL_PUSHGATEWAY)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
	}
	t.Skip(msg)
	return ""
}

// startPushgateway runs a real Pushgateway on a free port of 127.0.0.1 until the test ends and
// returns its URL.
func startPushgateway(t *testing.T) string {
	t.Helper()
	bin := pushgatewayBinary(t)
	var lastErr error
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, "--web.listen-address="+addr, "--log.level=warn")
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		url := "http://" + addr
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			select {
			case <-exited:
				lastErr = fmt.Errorf("pushgateway exited: %s", stderr.String())
			default:
			}
			if lastErr != nil {
				break
			}
			if res, err := http.Get(url + "/-/ready"); err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					t.Cleanup(func() {
						cmd.Process.Kill()
						<-exited
					})
					return url
				}
			}
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("pushgateway on %s not ready after 10s: %s", addr, stderr.String())
		}
		cmd.Process.Kill()
		<-exited
	}
	t.Fatalf("start pushgateway: %v", lastErr)
	return ""
}

// scrape reads the Prometheus text exposition at url.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// sample returns the value of the one series of name whose labels include want.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		case m.Summary != nil:
			return float64(m.Summary.GetSampleCount()), true
		}
	}
	return 0, false
}

// runEnd returns the summary of the "run end" line among decoded log lines.
func runEnd(t *testing.T, lines []map[string]any) map[string]any {
	t.Helper()
	for _, l := range lines {
		if l["message"] == "run end" {
			s, _ := l["summary"].(map[string]any)
			return s
		}
	}
	t.Fatal("no run end line in the log")
	return nil
}

// A crawl pushes its metrics to a real Pushgateway; what the Pushgateway holds afterwards
// equals the crawl's own totals. A failed run pushes too: its exit code replaces the last
// one and the last success timestamp of the run before stays. Every log line of both runs
// parses with a decoder that rejects duplicate keys.
func TestCrawlPushesMetricsToPushgateway(t *testing.T) {
	w := newWorld(t)
	pg := startPushgateway(t)
	f, err := os.OpenFile(w.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "  stats_interval: 1ms\nmetrics:\n  pushgateway_url: %s\n  worst_mailboxes: 1\n", pg)
	f.Close()

	// At trace level with every API call traced: every line the crawl can write.
	code, out, logs := w.run("crawl", "--log-level", "trace")
	if code != 0 {
		t.Fatalf("crawl exit %d\n%s\n%s", code, out, logs)
	}
	lines := checkLogLines(t, logs)
	sum := runEnd(t, lines)
	levels := map[any]int{}
	for _, l := range lines {
		levels[l["level"]]++
	}
	if levels["debug"] == 0 || levels["info"] == 0 {
		t.Errorf("log levels %v: want debug lines too", levels)
	}
	group := map[string]string{"job": "mimecrawl", "command": "crawl"}
	fams := scrape(t, pg+"/metrics")
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mimecrawl_documents_indexed_total", merge(group, "kind", "messages"), sum["messages_indexed"].(float64)},
		{"mimecrawl_documents_indexed_total", merge(group, "kind", "attachments"), sum["attachments_indexed"].(float64)},
		{"mimecrawl_bulk_requests_total", group, sum["bulk_requests"].(float64)},
		{"mimecrawl_run_exit_code", group, 0},
		{"mimecrawl_mailbox_lag_seconds", group, sum["mailboxes_kept"].(float64)}, // the summary's count
		{"mimecrawl_mailboxes_without_checkpoint", group, 0},
		{"mimecrawl_api_concurrency_limit", group, sum["api_concurrency_limit"].(float64)},
		{"mimecrawl_api_inflight_max", group, sum["api_inflight_max"].(float64)},
	}
	for _, c := range checks {
		got, ok := sample(fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("pushgateway %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if sum["messages_indexed"].(float64) == 0 {
		t.Errorf("the crawl indexed nothing; the test proves nothing")
	}
	// The default performance.concurrency, bounded by the default parallelism 8 × 8.
	limit, avg, inflight := sum["api_concurrency_limit"].(float64), sum["api_concurrency_limit_avg"].(float64), sum["api_inflight_max"].(float64)
	if sum["api_concurrency"] != "adaptive" || limit < 2 || limit > 64 || avg < 2 || avg > 64 || inflight < 1 || inflight > sum["api_concurrency_limit_max"].(float64) {
		t.Errorf("summary concurrency %v: limit %v, avg %v, in flight max %v, highest limit %v; want adaptive within [2, 64], in flight at least 1 and within the highest limit",
			sum["api_concurrency"], limit, avg, inflight, sum["api_concurrency_limit_max"])
	}
	var calls float64
	for _, m := range fams["mimecrawl_api_calls_total"].GetMetric() {
		calls += m.GetCounter().GetValue()
	}
	if calls != sum["api_calls"].(float64) {
		t.Errorf("api calls pushed %v, the summary says %v", calls, sum["api_calls"])
	}
	if v, ok := sample(fams, "mimecrawl_api_calls_total", merge(group, "endpoint", "POST /api/archive/get-message-list", "status", "200")); !ok || v == 0 {
		t.Errorf("no message-list calls by endpoint and status in the push")
	}
	if n := len(fams["mimecrawl_mailbox_lag_worst_seconds"].GetMetric()); n != 1 {
		t.Errorf("%d worst-lag series, want metrics.worst_mailboxes = 1", n)
	}
	success, ok := sample(fams, "mimecrawl_run_last_success_timestamp_seconds", group)
	if !ok || time.Since(time.Unix(int64(success), 0)) > time.Minute {
		t.Errorf("last success timestamp %v (present %v), want about now", success, ok)
	}
	if _, ok := sample(fams, "go_goroutines", group); ok {
		t.Errorf("a push carries the Go runtime series; they describe a process that is gone")
	}

	// A run that fails: the listing is forbidden for every view.
	w.sim.SetForbidden([]string{"/api/archive/get-message-list"})
	code, out, logs = w.run("crawl", "--log-level", "trace")
	if code == 0 {
		t.Fatalf("crawl with the listing forbidden: exit 0\n%s", out)
	}
	checkLogLines(t, logs)
	fams = scrape(t, pg+"/metrics")
	if v, _ := sample(fams, "mimecrawl_run_exit_code", group); int(v) != code {
		t.Errorf("pushed exit code %v, the run's %d", v, code)
	}
	if v, ok := sample(fams, "mimecrawl_run_last_success_timestamp_seconds", group); !ok || v != success {
		t.Errorf("after a failed run the last success is %v (present %v), want the earlier run's %v", v, ok, success)
	}
	if v, ok := sample(fams, "mimecrawl_api_calls_total", merge(group, "endpoint", "POST /api/archive/get-message-list", "status", "403")); !ok || v == 0 {
		t.Errorf("the 403s of the failed run are not in the push")
	}
}

// A crawl that logs in ECS writes nothing but ECS lines, checked field by field.
func TestCrawlLogsECS(t *testing.T) {
	w := newWorld(t)
	var outb, errb strings.Builder
	code := run([]string{"crawl", "--config", w.config, "--log-format", "ecs", "--log-level", "debug"}, &outb, &errb)
	if code != 0 {
		t.Fatalf("crawl exit %d\n%s\n%s", code, outb.String(), errb.String())
	}
	levels := map[any]int{}
	runEnd := false
	for _, line := range strings.Split(strings.TrimRight(errb.String(), "\n"), "\n") {
		m := checkECSLine(t, line)
		levels[m["log.level"]]++
		if m["message"] == "run end" {
			runEnd = true
			if mc, _ := m["mimecrawl"].(map[string]any); mc["exit_code"] != 0.0 || mc["summary"] == nil {
				t.Errorf("run end keeps its fields under mimecrawl: %s", line)
			}
		}
	}
	if !runEnd || levels["debug"] == 0 || levels["info"] == 0 {
		t.Errorf("want debug and info lines and a run end; levels %v", levels)
	}
}

// A long-running alerts poller serves /metrics and /healthz on --listen: the documents and
// sources it polled, a forbidden source flagged, the Go runtime, and 200 on /healthz; SIGTERM
// stops it and the server with it. Every line it logs parses strictly.
func TestAlertsServesMetricsAndHealth(t *testing.T) {
	w := alertsWorld(t)
	w.sim.SetForbidden([]string{"/api/dlp/get-logs", "/api/audit/get-audit-events"})
	bin := mimecrawlBinary(t)
	cmd := exec.Command(bin, "alerts", "--config", w.config, "--log-format", "json", "--listen", "127.0.0.1:0")
	cmd.Env = childEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	addrc := make(chan string, 1)
	logsDone := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			var l struct{ Message, Listen string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "serving /metrics and /healthz" {
				addrc <- l.Listen
			}
		}
		logsDone <- all.String()
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("no serving line within 30s")
	}

	// Wait for the first pass of each source checked below to be reported (each source
	// polls on its own schedule and reports its own passes).
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		fams = scrape(t, base+"/metrics")
		polled := true
		for _, src := range []string{"threats", "attachment_protection", "dlp", "audit"} {
			if _, ok := sample(fams, "mimecrawl_alerts_last_poll_timestamp_seconds", map[string]string{"source": src}); !ok {
				polled = false
			}
		}
		if polled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no poll reported on /metrics within 60s")
		}
	}
	if v, _ := sample(fams, "mimecrawl_documents_indexed_total", map[string]string{"kind": alerts.AlertsKind.String()}); v == 0 {
		t.Errorf("no alerts counted as indexed after a pass")
	}
	if v, _ := sample(fams, "mimecrawl_documents_indexed_total", map[string]string{"kind": alerts.GroupsKind.String()}); v == 0 {
		t.Errorf("no alert groups counted as indexed after a pass")
	}
	// The bound on archive requests in flight is the crawl's; the poller has none to export.
	for _, crawlOnly := range []string{"mimecrawl_api_concurrency_limit", "mimecrawl_api_inflight_max", "mimecrawl_api_concurrency_changes_total"} {
		if _, ok := fams[crawlOnly]; ok {
			t.Errorf("the poller exports %s, a series of the crawl", crawlOnly)
		}
	}
	if v, ok := sample(fams, "mimecrawl_alerts_source_forbidden", map[string]string{"source": "dlp"}); !ok || v != 1 {
		t.Errorf("dlp forbidden = %v (present %v), want 1", v, ok)
	}
	if v, ok := sample(fams, "mimecrawl_alerts_source_forbidden", map[string]string{"source": "audit"}); !ok || v != 1 {
		t.Errorf("audit forbidden = %v (present %v), want 1: a 403 on an event source is reported like any other", v, ok)
	}
	if v, ok := sample(fams, "mimecrawl_alerts_source_forbidden", map[string]string{"source": "threats"}); !ok || v != 0 {
		t.Errorf("threats forbidden = %v (present %v), want 0", v, ok)
	}
	if v, ok := sample(fams, "mimecrawl_alerts_lag_seconds", map[string]string{"source": "attachment_protection"}); !ok || v <= 0 {
		t.Errorf("attachment_protection lag = %v (present %v), want the age of its newest event", v, ok)
	}
	if v, ok := sample(fams, "mimecrawl_api_calls_total", map[string]string{"endpoint": "POST /api/dlp/get-logs", "status": "403"}); !ok || v == 0 {
		t.Errorf("the 403 of the dlp source is not counted by endpoint")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Errorf("a scraped process exports no Go runtime series")
	}
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz = %d %q, want 200 ok", res.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	select {
	case logs := <-logsDone:
		checkLogLines(t, logs)
	case <-ctx.Done():
		t.Fatal("alerts did not stop within 45s of SIGTERM")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("alerts after SIGTERM: %v\n%s", err, out.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("the metrics server still answers after the process ended")
	}
}

// alerts --once pushes too, grouped as command="alerts": the alerts it indexed, as its pass
// summary counts them, and the forbidden source.
func TestAlertsOncePushesMetrics(t *testing.T) {
	w := alertsWorld(t)
	pg := startPushgateway(t)
	w.sim.SetForbidden([]string{"/api/dlp/get-logs"})
	f, err := os.OpenFile(w.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "metrics:\n  pushgateway_url: %s\n", pg)
	f.Close()
	code, out, logs := w.run("alerts", "--once")
	if code != 0 {
		t.Fatalf("alerts --once exit %d\n%s\n%s", code, out, logs)
	}
	// Each source's documents are counted under the kind of the data stream it writes: the
	// alert sources under the alerts' kind, each event source (the audit log) under its own.
	indexed := map[string]float64{}
	for _, l := range checkLogLines(t, logs) {
		if l["message"] != "pass end" {
			continue
		}
		s, _ := l["summary"].(map[string]any)
		srcs, _ := s["sources"].([]any)
		for _, src := range srcs {
			m := src.(map[string]any)
			name, _ := m["source"].(string)
			spec, ok := alerts.Spec(alerts.Source(name))
			if !ok {
				t.Fatalf("the pass summary names source %q, which the source table lacks", name)
			}
			n, _ := m["indexed"].(float64)
			indexed[spec.Kind.String()] += n
		}
	}
	if indexed[alerts.AlertsKind.String()] == 0 {
		t.Fatal("the pass indexed no alerts; the test proves nothing")
	}
	fams := scrape(t, pg+"/metrics")
	group := map[string]string{"job": "mimecrawl", "command": "alerts"}
	for kind, want := range indexed {
		if v, _ := sample(fams, "mimecrawl_documents_indexed_total", merge(group, "kind", kind)); v != want {
			t.Errorf("pushed %s indexed %v, the pass summary says %v", kind, v, want)
		}
	}
	if v, ok := sample(fams, "mimecrawl_alerts_source_forbidden", merge(group, "source", "dlp")); !ok || v != 1 {
		t.Errorf("dlp forbidden pushed as %v (present %v), want 1", v, ok)
	}
	if v, ok := sample(fams, "mimecrawl_run_exit_code", group); !ok || v != 0 {
		t.Errorf("exit code pushed as %v (present %v), want 0", v, ok)
	}
}

func merge(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// A Pushgateway that does not answer costs an error line, not the run's exit code.
func TestCrawlPushFailureKeepsExitCode(t *testing.T) {
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	f, err := os.OpenFile(w.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "metrics:\n  pushgateway_url: %s\n  push_timeout: 2s\n", dead)
	f.Close()
	code, out, logs := w.run("crawl")
	if code != 0 {
		t.Fatalf("crawl exit %d with the pushgateway down, want 0\n%s\n%s", code, out, logs)
	}
	found := false
	for _, l := range checkLogLines(t, logs) {
		if l["message"] == "push metrics" && l["level"] == "error" && l["pushgateway"] == dead {
			found = true
		}
	}
	if !found {
		t.Errorf("no error line for the failed push:\n%s", logs)
	}
}

// A source with several cursors (SIEM batch types) is as recent as its oldest poll, as late
// as its newest event, and forbidden or failing if one cursor is; a 403 is not a failure.
func TestAlertSourceStatuses(t *testing.T) {
	at := func(m int) *time.Time { v := time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC); return &v }
	got := job.AlertSourceStatuses([]alerts.CursorStatus{
		{Name: "alerts/dlp", Forbidden: true, LastError: "403 forbidden", LastPoll: at(9)},
		{Name: "alerts/siem/delivery", Latest: at(1), LastPoll: at(8), FilesPending: 1},
		{Name: "alerts/siem/receipt", Latest: at(3), LastPoll: at(6), LastError: "timeout", Pending: 2},
		{Name: "alerts/threats", Pending: 4},
	})
	want := []metrics.SourceStatus{
		{Source: "dlp", LastPoll: *at(9), Forbidden: true},
		{Source: "siem", LatestEvent: *at(3), LastPoll: *at(6), Failing: true, Pending: 3},
		{Source: "threats", Pending: 4},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("source %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// fixedGroups answers every group write with the next of its errors.
type fixedGroups struct {
	nopGroups
	errs []error
}

func (g fixedGroups) PutGroups(context.Context, []alerts.GroupWrite) ([]error, error) {
	return g.errs, nil
}

// TestAlertGroupsAreCounted: documents_indexed_total{kind="alert-groups"} counts the group
// writes Elasticsearch acknowledged; a lost race or a refusal for load is tried again and
// counts when it lands; any other refusal is a failed document.
func TestAlertGroupsAreCounted(t *testing.T) {
	m := metrics.New(metrics.Options{})
	g := job.CountedGroups(fixedGroups{errs: []error{nil, nil, alerts.ErrGroupConflict, alerts.ErrGroupBusy, errors.New("mapper_parsing_exception")}}, m)
	if _, err := g.PutGroups(t.Context(), make([]alerts.GroupWrite, 5)); err != nil {
		t.Fatal(err)
	}
	got, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range got {
		fams[f.GetName()] = f
	}
	kind := map[string]string{"kind": "alert-groups"}
	if v, _ := sample(fams, "mimecrawl_documents_indexed_total", kind); v != 2 {
		t.Errorf("alert groups indexed %v, want 2", v)
	}
	if v, _ := sample(fams, "mimecrawl_documents_failed_total", kind); v != 1 {
		t.Errorf("alert groups failed %v, want 1", v)
	}
}
