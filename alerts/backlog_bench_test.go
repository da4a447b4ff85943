package alerts_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// BenchmarkPollBacklog measures the poller end to end (simulator over a socket, real client,
// real bulk writer and Elasticsearch): one pass over a backlog of attachment-protection
// events, every alert kept (alerts.keep_low). It reports alerts per second, API calls per
// alert and the heap the pass added above what the simulator holds, for a tenth of the
// backlog and for all of it: the two heap figures should be close (memory flat with the
// backlog). ALERTS_BENCH_BACKLOG sets the backlog (default 5,000; make bench's full mode
// uses 100,000); ALERTS_BENCH_NO_GROUPS=1 leaves the alert groups out, to see their cost.
// ALERTS_BENCH_SOURCE=siem reads SIEM batch files instead (every event type, the batch
// endpoint's call budget lifted); ALERTS_BENCH_SIZES (e.g. 10000,100000,1000000) replaces
// the two sizes with a list.
func BenchmarkPollBacklog(b *testing.B) {
	esURL := os.Getenv("ELASTICSEARCH_URL")
	if esURL == "" {
		b.Skip("ELASTICSEARCH_URL is not set")
	}
	n := 5000
	if s := os.Getenv("ALERTS_BENCH_BACKLOG"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 10 {
			b.Fatalf("ALERTS_BENCH_BACKLOG=%q: want a number >= 10", s)
		}
		n = v
	}
	sizes := []int{n / 10, n}
	if s := os.Getenv("ALERTS_BENCH_SIZES"); s != "" {
		sizes = nil
		for f := range strings.SplitSeq(s, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || v < 10 {
				b.Fatalf("ALERTS_BENCH_SIZES=%q: want numbers >= 10, comma-separated", s)
			}
			sizes = append(sizes, v)
		}
	}
	siem := false
	switch src := os.Getenv("ALERTS_BENCH_SOURCE"); src {
	case "", "attachment_protection":
	case "siem":
		siem = true
	default:
		b.Fatalf("ALERTS_BENCH_SOURCE=%q: want attachment_protection or siem", src)
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("backlog=%d", size), func(b *testing.B) {
			for b.Loop() {
				benchPass(b, esURL, size, siem)
			}
		})
	}
}

func benchPass(b *testing.B, esURL string, n int, siem bool) {
	b.StopTimer()
	ao := simulator.AlertOptions{Attachment: n, Span: 6 * time.Hour}
	src := alerts.AttachmentProtection
	if siem {
		// Unlimited batch calls: the benchmark measures the poller, not the published budget.
		ao = simulator.AlertOptions{SIEM: n, Span: 6 * time.Hour, SIEMBatchLimit: simulator.RateWindow{Calls: -1}}
		src = alerts.SIEM
	}
	sim, err := simulator.New(simulator.Options{Alerts: ao})
	if err != nil {
		b.Fatal(err)
	}
	// The simulator keeps each file's gzip body once served: built now, they are part of
	// the baseline, not of the heap the pass added.
	sim.WarmSIEMFiles()
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	log := zerolog.Nop()
	// Nor the client's own budget of it: at 100,000 events the published 50 calls per 15
	// minutes would make the pass a quarter of an hour of waiting.
	client, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "demo-client", ClientSecret: "demo-secret", Logger: log,
		SIEMBatchBudget: mimecast.Budget{Calls: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	prefix := fmt.Sprintf("mcbench-%d-%d", os.Getpid(), prefixSeq.Add(1))
	defer indextest.Remove(b, esURL, prefix)
	zero := 0
	ctx := context.Background()
	cluster, err := index.Open(ctx, index.Config{Addresses: []string{esURL}, IndexPrefix: prefix, Namespace: indextest.Namespace(prefix), Replicas: &zero, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	if err := cluster.Ensure(ctx, alerts.AlertsKind, alerts.GroupsKind); err != nil {
		b.Fatal(err)
	}
	store, err := state.Open(filepath.Join(b.TempDir(), "alerts.db"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cfg := config.Default().Alerts
	cfg.KeepLow = true
	rules, err := alerts.NewRules(cfg)
	if err != nil {
		b.Fatal(err)
	}
	writer, err := cluster.NewWriter()
	if err != nil {
		b.Fatal(err)
	}
	var groups alerts.GroupStore = alerts.NewGroupStore(cluster)
	if os.Getenv("ALERTS_BENCH_NO_GROUPS") != "" {
		groups = nil
	}
	p, err := alerts.New(alerts.Deps{Logs: client, SIEM: client, Sink: writer, Cursors: store, Rules: rules,
		Groups: groups, Archive: cluster, Directory: client},
		alerts.Options{Sources: []alerts.Source{src}, SIEMTypes: simulator.SIEMTypes, Lookback: 24 * time.Hour, Overlap: alerts.DefaultOptions().Overlap, PageSize: 500, Logger: log})
	if err != nil {
		b.Fatal(err)
	}

	// The simulator shares this process and holds the whole backlog, and the collector lets
	// garbage grow in proportion to what is live; so the figure is the live heap (what the
	// last collection marked) above what was live before the pass. It is sampled from
	// runtime/metrics, not by forcing collections: with the simulator holding a 100,000-event
	// backlog a forced collection every 250 ms took most of the CPU and the pass never
	// ended.
	// ALERTS_BENCH_GC_EVERY (a duration) samples by forced collections at that period
	// instead: exact (what the last collection marked also counts what was allocated while
	// it marked, more so the larger the simulator's heap), but costly at large backlogs.
	sample, every := lastLive, 50*time.Millisecond
	if s := os.Getenv("ALERTS_BENCH_GC_EVERY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Millisecond {
			b.Fatalf("ALERTS_BENCH_GC_EVERY=%q: want a duration >= 10ms", s)
		}
		sample, every = forcedLive, d
	}
	base := forcedLive()
	peak := base
	writePeakProfile(b, ".base")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if h := sample(); h > peak {
					peak = h
					writePeakProfile(b, "")
				}
			}
		}
	})
	calls0 := client.Stats().Calls
	start := time.Now()
	b.StartTimer()
	sum := p.Once(ctx)
	if err := writer.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if h := sample(); h > peak {
		peak = h
		writePeakProfile(b, ".end")
	}
	s := sum.Sources[0]
	if s.Error != "" || s.Indexed == 0 {
		b.Fatalf("pass: %+v", s)
	}
	alertsN := float64(s.Indexed + s.Existing)
	b.ReportMetric(alertsN/took.Seconds(), "alerts/s")
	b.ReportMetric(float64(client.Stats().Calls-calls0)/alertsN, "calls/alert")
	b.ReportMetric(float64(peak-base)/(1<<20), "heapMB")
	b.ReportMetric(float64(s.Groups), "groups")
	// Items answered 429 wait to be sent again while the reader goes on: a cause of
	// documents in flight beyond what the bulk workers hold.
	b.ReportMetric(float64(writer.Stats().Retried), "retried")
	b.StartTimer()
}

// writePeakProfile writes the heap profile at a new peak to ALERTS_BENCH_PEAK_PROFILE, if
// set: the profile -memprofile writes is taken after the pass, when its heap is gone.
// The baseline's profile goes next to it, its name ending in suffix ".base", for
// pprof -diff_base.
func writePeakProfile(b *testing.B, suffix string) {
	path := os.Getenv("ALERTS_BENCH_PEAK_PROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	// The profile is as of the collection before the last: one more makes it the heap the
	// sample measured, not garbage the pass made since.
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Error(err)
	}
}

// forcedLive returns the live heap right after a forced collection: HeapAlloc, which also
// counts what the pass allocated between the collection's end and the read; with
// ALERTS_BENCH_MARKED set, what the collection marked (/gc/heap/live:bytes) instead.
func forcedLive() uint64 {
	runtime.GC()
	if os.Getenv("ALERTS_BENCH_MARKED") != "" {
		return lastLive()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// lastLive returns the heap the last collection marked live.
func lastLive() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
