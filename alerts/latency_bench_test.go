package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
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

// BenchmarkEventToSearchable measures freshness end to end: the long-running poller (Run)
// against the simulator over a socket, real Elasticsearch, while events are recorded
// continuously (one attachment-protection event every 50 ms). One source (dlp) answers 503
// to every call, and 5% of every other legacy call answers 429. It reports the p50 and p99
// of the time from an event's creation to its alert being searchable (a plain _search, no
// refresh), in seconds, and p99 minus the poll interval. ALERTS_BENCH_SECONDS sets how long
// events are recorded (default 6), ALERTS_BENCH_INTERVAL the poll interval (default 2s).
func BenchmarkEventToSearchable(b *testing.B) {
	esURL := os.Getenv("ELASTICSEARCH_URL")
	if esURL == "" {
		b.Skip("ELASTICSEARCH_URL is not set")
	}
	secs, interval := 6, 2*time.Second
	if s := os.Getenv("ALERTS_BENCH_SECONDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("ALERTS_BENCH_SECONDS=%q: want a number >= 1", s)
		}
		secs = v
	}
	if s := os.Getenv("ALERTS_BENCH_INTERVAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 100*time.Millisecond {
			b.Fatalf("ALERTS_BENCH_INTERVAL=%q: want a duration >= 100ms", s)
		}
		interval = d
	}
	for b.Loop() {
		p50, p99 := latencyRun(b, esURL, time.Duration(secs)*time.Second, interval)
		b.ReportMetric(p50.Seconds(), "p50-s")
		b.ReportMetric(p99.Seconds(), "p99-s")
		b.ReportMetric((p99 - interval).Seconds(), "p99-minus-interval-s")
	}
}

func latencyRun(b *testing.B, esURL string, span, interval time.Duration) (p50, p99 time.Duration) {
	b.StopTimer()
	defer b.StartTimer()
	seed := uint64(time.Now().UnixNano())
	b.Logf("seed %d", seed)
	sim, err := simulator.New(simulator.Options{Seed: int64(seed % (1 << 62)), Alerts: simulator.AlertOptions{Enabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	sim.SetFaults([]simulator.Fault{
		{PathPrefix: "/api/dlp/get-logs", Status: 503},
		{PathPrefix: "/api/", Status: 429, Probability: 0.05, ResetMS: 50},
	})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	log := zerolog.Nop()
	client, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "demo-client", ClientSecret: "demo-secret",
		MaxRetries: 6, MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	prefix := fmt.Sprintf("mcbench-%d-%d", os.Getpid(), prefixSeq.Add(1))
	defer indextest.Remove(b, esURL, prefix)
	zero := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := index.Open(ctx, index.Config{Addresses: []string{esURL}, IndexPrefix: prefix, Namespace: indextest.Namespace(prefix), Replicas: &zero,
		FlushInterval: 100 * time.Millisecond, Logger: log})
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
	p, err := alerts.New(alerts.Deps{Logs: client, Sink: writer, Cursors: store, Rules: rules, Groups: alerts.NewGroupStore(cluster)},
		alerts.Options{Sources: []alerts.Source{alerts.DLP, alerts.AttachmentProtection, alerts.URLProtection},
			PollInterval: interval, Lookback: time.Hour, Overlap: time.Minute, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx, nil) })

	// Record events; remember when each was created, by alert id.
	var (
		mu      sync.Mutex
		created = map[string]time.Time{}
		seen    = map[string]time.Duration{}
	)
	r := rand.New(rand.NewPCG(seed, 9))
	end := time.Now().Add(span)
	for i := 0; time.Now().Before(end); i++ {
		now := time.Now().UTC()
		rec := attachment(fmt.Sprintf("u%d@corp.example", i), fmt.Sprintf("%064x", r.Uint64()), "f.pdf", "malicious")
		served, err := sim.AddAlerts(simulator.SourceAttachment, []json.RawMessage{rec}, now)
		if err != nil {
			b.Fatal(err)
		}
		a, err := alerts.Normalize(alerts.AttachmentProtection, served[0])
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		created[a.ID] = now
		mu.Unlock()
		findNew(b, esURL, cluster.IndexName(alerts.AlertsKind), &mu, created, seen)
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.Now().Add(interval + 60*time.Second)
	for time.Now().Before(deadline) {
		if findNew(b, esURL, cluster.IndexName(alerts.AlertsKind), &mu, created, seen) == len(created) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	_ = writer.Close(cctx)
	if len(seen) < len(created) {
		b.Fatalf("%d of %d events never became searchable", len(created)-len(seen), len(created))
	}
	lat := slices.Collect(func(yield func(time.Duration) bool) {
		for _, d := range seen {
			if !yield(d) {
				return
			}
		}
	})
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	b.Logf("%d events; p50 %s, p99 %s, max %s (poll interval %s)", len(lat), q(0.5), q(0.99), lat[len(lat)-1], interval)
	return q(0.5), q(0.99)
}

// findNew marks the ids of created that the index now returns, with their latency, and
// returns how many are seen.
func findNew(b *testing.B, esURL, idx string, mu *sync.Mutex, created map[string]time.Time, seen map[string]time.Duration) int {
	res, err := http.Get(esURL + "/" + idx + "/_search?size=10000&_source=false")
	now := time.Now()
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil && !strings.Contains(err.Error(), "EOF") {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range out.Hits.Hits {
		if t, ok := created[h.ID]; ok {
			if _, done := seen[h.ID]; !done {
				seen[h.ID] = now.Sub(t)
			}
		}
	}
	return len(seen)
}
