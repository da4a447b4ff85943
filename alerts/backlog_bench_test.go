package alerts_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
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
// alert and the peak heap the pass added (the simulator runs in a process of its own), for
// a tenth of the backlog and for all of it: the two heap figures should be close (memory
// flat with the backlog), and afterMB, the heap the pass left once it ended. How the heap
// is sampled: see benchPass and forcedLive (ALERTS_BENCH_GC_EVERY, ALERTS_BENCH_MARKED,
// ALERTS_BENCH_PROFILED, ALERTS_BENCH_MIN_OF, ALERTS_BENCH_PEAK_PROFILE).
// ALERTS_BENCH_BACKLOG sets the backlog (default 5,000; make bench's full mode uses
// 100,000); ALERTS_BENCH_NO_GROUPS=1 leaves the alert groups out, to see their cost.
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
	src := alerts.AttachmentProtection
	if siem {
		src = alerts.SIEM
	}
	simURL, stopSim := backlogSimulator(b, n, siem)
	defer stopSim()
	log := zerolog.Nop()
	// The client's SIEM batch budget is lifted too: at 100,000 events the published 50 calls per 15
	// minutes would make the pass a quarter of an hour of waiting.
	client, err := mimecast.New(mimecast.Config{BaseURL: simURL, ClientID: "demo-client", ClientSecret: "demo-secret", Logger: log,
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

	// The figure is the live heap (what the last collection marked) above what was live
	// before the pass. The simulator runs in a process of its own (backlogSimulator), so
	// the heap is the poller's: in this process it held the whole backlog (about 1.5 KB per
	// event), which made every collection's marking longer in proportion to the backlog,
	// and what the pass allocated while a collection marked counted as live. It is sampled
	// from runtime/metrics, not by forcing collections.
	// ALERTS_BENCH_GC_EVERY (a duration) samples by forced collections at that period
	// instead (forcedLive), which does not depend on when the runtime last collected but
	// costs CPU.
	if os.Getenv("ALERTS_BENCH_PROFILED") != "" && runtime.MemProfileRate > 4096 {
		runtime.MemProfileRate = 4096
	}
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
	// What the pass left behind once it ended (the poller, its client and writer still
	// open): anything kept per event would show here first.
	after := forcedLive()
	s := sum.Sources[0]
	if s.Error != "" || s.Indexed == 0 {
		b.Fatalf("pass: %+v", s)
	}
	alertsN := float64(s.Indexed + s.Existing)
	b.ReportMetric(alertsN/took.Seconds(), "alerts/s")
	b.ReportMetric(float64(client.Stats().Calls-calls0)/alertsN, "calls/alert")
	b.ReportMetric(float64(peak-base)/(1<<20), "heapMB")
	b.ReportMetric((float64(after)-float64(base))/(1<<20), "afterMB")
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
	// sample measured, not garbage the pass made since. With ALERTS_BENCH_PROFILED the
	// sample was the profile: it is written as it stands.
	if os.Getenv("ALERTS_BENCH_PROFILED") == "" {
		runtime.GC()
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Error(err)
	}
}

// forcedLive returns the live heap right after a forced collection: HeapAlloc, which also
// counts what the pass allocated between the collection's end and the read; with
// ALERTS_BENCH_MARKED set, what the collection marked (/gc/heap/live:bytes) instead.
//
// Both count what the pass allocated while the collection marked (it is marked live, dead
// or not): on a loaded machine, where marking takes long, single samples came out up to
// 8 MB above what a heap profile taken right after held, and the more samples a pass takes,
// the likelier its peak is such an outlier. ALERTS_BENCH_PROFILED samples instead the
// in-use total of the heap profile after a second forced collection (the profile samples
// one allocation per runtime.MemProfileRate bytes, 4096 unless set lower, scaled as pprof
// scales it); it too counted garbage at times.
//
// ALERTS_BENCH_MIN_OF=n takes the smallest of n readings back to back: what a collection
// marked beyond the live heap differs from one collection to the next, while the documents
// in flight change over a bulk round trip, more slowly than n collections take.
func forcedLive() uint64 {
	n, _ := strconv.Atoi(os.Getenv("ALERTS_BENCH_MIN_OF"))
	least := uint64(math.MaxUint64)
	for range max(n, 1) {
		least = min(least, forcedLive1())
	}
	return least
}

func forcedLive1() uint64 {
	runtime.GC()
	if os.Getenv("ALERTS_BENCH_PROFILED") != "" {
		runtime.GC()
		return profiledInUse()
	}
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

// backlogSimulator starts the simulator serving the backlog and returns its URL. It runs in
// a child process (this test binary again, running TestBacklogSimulatorProcess), so that
// the heap the benchmark measures holds the poller and not the simulator's backlog;
// ALERTS_BENCH_SIM_INPROCESS=1 runs it in this process, as the benchmark did before
// 2026-12-07, to compare. The child ends when its stdin closes, at the end of b.
func backlogSimulator(b *testing.B, n int, siem bool) (url string, stop func()) {
	if os.Getenv("ALERTS_BENCH_SIM_INPROCESS") != "" {
		sim, err := simulator.New(simulator.Options{Alerts: backlogOptions(n, siem)})
		if err != nil {
			b.Fatal(err)
		}
		// The simulator keeps each file's gzip body once served: built now, they are part
		// of the baseline, not of the heap the pass added.
		sim.WarmSIEMFiles()
		srv := httptest.NewServer(sim.Handler())
		return srv.URL, srv.Close
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBacklogSimulatorProcess$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%t", simChildEnv, n, siem))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() {
		_ = stdin.Close() // the child's signal to stop
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		stop()
		b.Fatalf("simulator process: %q, %v", line, err)
	}
	return url, stop
}

// backlogOptions is the simulator's backlog: n attachment-protection events, or with siem
// n SIEM events in batch files, the batch endpoint's call budget lifted (the benchmark
// measures the poller, not the published budget).
func backlogOptions(n int, siem bool) simulator.AlertOptions {
	if siem {
		return simulator.AlertOptions{SIEM: n, Span: 6 * time.Hour, SIEMBatchLimit: simulator.RateWindow{Calls: -1}}
	}
	return simulator.AlertOptions{Attachment: n, Span: 6 * time.Hour}
}

const simChildEnv = "ALERTS_BENCH_SIM_CHILD"

// TestBacklogSimulatorProcess is the simulator process of BenchmarkPollBacklog; it is
// skipped unless run by backlogSimulator.
func TestBacklogSimulatorProcess(t *testing.T) {
	spec := os.Getenv(simChildEnv)
	if spec == "" {
		t.Skip("runs only as BenchmarkPollBacklog's simulator process")
	}
	var (
		n    int
		siem bool
	)
	if _, err := fmt.Sscanf(spec, "%d,%t", &n, &siem); err != nil {
		t.Fatalf("%s=%q: %v", simChildEnv, spec, err)
	}
	sim, err := simulator.New(simulator.Options{Alerts: backlogOptions(n, siem)})
	if err != nil {
		t.Fatal(err)
	}
	sim.WarmSIEMFiles()
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	fmt.Printf("listening %s\n", srv.URL)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes stdin (or ends)
}

// profiledInUse returns the bytes in use by the heap profile, each record scaled for the
// sampling rate as pprof scales heap samples.
func profiledInUse() uint64 {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	var sum float64
	for _, r := range recs {
		count, size := float64(r.InUseObjects()), float64(r.InUseBytes())
		if count == 0 || size == 0 {
			continue
		}
		if rate <= 1 {
			sum += size
			continue
		}
		sum += size / (1 - math.Exp(-size/count/rate))
	}
	return uint64(sum)
}
