package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/internal/job"
	"github.com/mimecrawl/mimecrawl/state"
)

// runProfile crawls a simulated archive in this process, wired as `mimecrawl crawl` wires
// it, under the CPU, heap, block and mutex profilers: the crawler's code paths are the same,
// and the product binary needs no profiling switch.
func runProfile(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mimecrawl-bench profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	es := fs.String("es", envOr("ELASTICSEARCH_URL", "http://127.0.0.1:9260"), "Elasticsearch URL")
	bin := fs.String("bin", "bin", "directory holding the mimecast-sim binary")
	out := fs.String("out", "bench/tmp/profile", "directory for the profiles and their text summaries")
	seed := fs.Int64("seed", 1, "seed of the simulated archive")
	mailboxes := fs.Int("mailboxes", 10, "mailboxes of the archive")
	messages := fs.Int("messages", 5000, "messages of the archive")
	par := fs.Int("parallelism", 0, "parallelism.mailboxes (0 = mimecrawl's default)")
	rate := fs.Int("rate-limit", 0, "simulator quota, requests per minute (0 = none)")
	flush := fs.Duration("flush-interval", 0, "elasticsearch.bulk.flush_interval (0 = mimecrawl's default)")
	again := fs.Bool("again", false, "crawl once unprofiled, then profile a second crawl with nothing changed")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if err := profile(ctx, *es, *bin, *out, archive{Seed: *seed, Mailboxes: *mailboxes, PerMailbox: max(1, *messages / *mailboxes), RateLimit: *rate}, *par, *flush, *again, stdout); err != nil {
		fmt.Fprintln(stderr, "mimecrawl-bench profile:", err)
		return exitError
	}
	return exitOK
}

// inProcess is one crawl in this process, wired as `mimecrawl crawl` wires it.
type inProcess struct {
	client *mimecast.Client
	cl     *index.Cluster
	store  *state.Store
	opts   crawler.Options
}

func (ip inProcess) crawl(ctx context.Context) ([]crawler.ViewResult, crawler.Totals, index.WriterStats, error) {
	writer, err := ip.cl.NewWriter()
	if err != nil {
		return nil, crawler.Totals{}, index.WriterStats{}, err
	}
	enum, err := crawler.Enumerate(ctx, ip.client, crawler.Rules{}, config.Default().Performance.PageSize, 4)
	if err != nil {
		_ = writer.Close(context.Background())
		return nil, crawler.Totals{}, index.WriterStats{}, err
	}
	cr := crawler.New(ip.client, ip.cl, writer, ip.store, ip.opts)
	results, runErr := cr.Run(ctx, enum.Kept, nil)
	err = errors.Join(runErr, writer.Close(context.Background()))
	return results, cr.Totals(), writer.Stats(), err
}

func profile(ctx context.Context, esURL, bin, out string, a archive, parallelism int, flush time.Duration, again bool, stdout io.Writer) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	work, err := os.MkdirTemp("", "mimecrawl-profile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	s, err := startSim(ctx, bin, a, work)
	if err != nil {
		return err
	}
	defer s.stop()
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	client, err := mimecastClient(s.url, log)
	if err != nil {
		return err
	}
	defer client.Close()
	prefix := fmt.Sprintf("mcprofile-%d", os.Getpid())
	admin := newESAdmin(strings.TrimRight(esURL, "/"))
	defer admin.remove(context.Background(), prefix)
	bulk := config.Default().Elasticsearch.Bulk
	if flush > 0 {
		bulk.FlushInterval = config.Duration(flush)
	}
	cl, err := index.Open(ctx, index.Config{Addresses: []string{esURL}, IndexPrefix: prefix, BulkWorkers: bulk.Workers,
		FlushBytes: int(bulk.FlushBytes), FlushInterval: bulk.FlushInterval.D(), MaxItemRetries: bulk.MaxItemRetries, Logger: log})
	if err != nil {
		return err
	}
	if err := cl.Setup(ctx); err != nil {
		return err
	}
	store, err := state.Open(filepath.Join(work, "state.db"), state.Options{LockTimeout: time.Second})
	if err != nil {
		return err
	}
	defer store.Close()
	ip := inProcess{client: client, cl: cl, store: store, opts: crawlOptions(job.UsePipeline(benchConfig(parallelism), cl.AttachmentProcessor(), log), parallelism, log)}
	if again {
		if _, _, _, err := ip.crawl(ctx); err != nil {
			return fmt.Errorf("first crawl: %w", err)
		}
	}

	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(10)
	cpuFile, err := os.Create(filepath.Join(out, "cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpuFile.Close()
	if err := pprof.StartCPUProfile(cpuFile); err != nil {
		return fmt.Errorf("start CPU profile: %w", err)
	}
	peak := watchHeap(filepath.Join(out, "heap-peak.pprof"))
	start, cpu0 := time.Now(), selfCPU()

	results, t, ws, err := ip.crawl(ctx)
	wall, cpu := time.Since(start).Seconds(), selfCPU()-cpu0
	pprof.StopCPUProfile()
	heapPeak := peak()
	if err != nil {
		return err
	}

	for _, p := range []string{"block", "mutex", "heap"} {
		f, err := os.Create(filepath.Join(out, p+".pprof"))
		if err != nil {
			return err
		}
		if p == "heap" {
			runtime.GC()
		}
		if err := pprof.Lookup(p).WriteTo(f, 0); err != nil {
			f.Close()
			return fmt.Errorf("write %s profile: %w", p, err)
		}
		f.Close()
	}
	cs := client.Stats()
	incomplete := 0
	for _, r := range results {
		if r.Outcome != crawler.Complete {
			incomplete++
		}
	}
	summary := fmt.Sprintf("archive %d messages in %d mailboxes, parallelism.mailboxes %d (0 = default), flush interval %s, rate limit %d/min, second crawl %v\n"+
		"wall %.1fs, process CPU %.1fs (%.0f%% of one core), %d messages (%.0f/s), %d attachments, %d bulk requests, %.1f MB bulk\n"+
		"api calls %d, 429s %d, incomplete views %d, peak Go heap in use %.1f MB\n",
		a.messages(), a.Mailboxes, parallelism, bulk.FlushInterval.D(), a.RateLimit, again, wall, cpu, 100*cpu/wall, t.Messages, float64(t.Messages)/wall,
		t.Attachments, ws.Requests, float64(ws.Bytes)/1e6, cs.Calls, cs.RateLimited, incomplete, float64(heapPeak)/1e6)
	fmt.Fprint(stdout, summary)
	if err := os.WriteFile(filepath.Join(out, "summary.txt"), []byte(summary), 0o644); err != nil {
		return err
	}
	topText(out, stdout)
	return nil
}

// watchHeap samples the heap once a second and writes a heap profile whenever the heap in
// use reaches a new peak; the returned function stops it and returns the peak in bytes.
func watchHeap(path string) func() uint64 {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak+peak/20 {
				peak = ms.HeapInuse
				if f, err := os.Create(path); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	return func() uint64 {
		close(stop)
		wg.Wait()
		return peak
	}
}

// topText writes `go tool pprof -top` summaries of the profiles next to them, when the go
// tool is at hand.
func topText(dir string, stdout io.Writer) {
	views := []struct{ name, profile, index string }{
		{"cpu-top.txt", "cpu.pprof", ""},
		{"cpu-cum.txt", "cpu.pprof", "cum"},
		{"block-top.txt", "block.pprof", "cum"},
		{"mutex-top.txt", "mutex.pprof", ""},
		{"heap-peak-inuse.txt", "heap-peak.pprof", "inuse_space"},
		{"alloc-top.txt", "heap.pprof", "alloc_space"},
	}
	for _, v := range views {
		args := []string{"tool", "pprof", "-top", "-nodecount=40"}
		switch v.index {
		case "cum":
			args = append(args, "-cum")
		case "":
		default:
			args = append(args, "-sample_index="+v.index)
		}
		args = append(args, filepath.Join(dir, v.profile))
		b, err := exec.Command("go", args...).Output()
		if err != nil {
			fmt.Fprintf(stdout, "go tool pprof %s: %v\n", v.profile, err)
			continue
		}
		_ = os.WriteFile(filepath.Join(dir, v.name), b, 0o644)
	}
	fmt.Fprintf(stdout, "profiles and summaries in %s\n", dir)
}
