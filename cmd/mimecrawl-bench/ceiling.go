package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/internal/job"
	"github.com/mimecrawl/mimecrawl/state"
)

// builtDoc is one document as the crawler hands it to its bulk writer, already encoded.
type builtDoc struct {
	kind     index.Kind
	id       string
	body     []byte
	pipeline bool
}

// captureSink keeps every document instead of indexing it, and acknowledges it at once.
type captureSink struct {
	mu    sync.Mutex
	docs  []builtDoc
	bytes int64
}

// Add encodes the document as index.Writer does (encoding/json) and keeps it. done runs on
// its own goroutine, as the crawler's Sink contract asks.
func (s *captureSink) Add(_ context.Context, d index.Doc, done func(index.Result)) error {
	body, err := json.Marshal(d.Body)
	if err != nil {
		return fmt.Errorf("encode document %s: %w", d.ID, err)
	}
	s.mu.Lock()
	s.docs = append(s.docs, builtDoc{kind: d.Kind, id: d.ID, body: body, pipeline: d.Pipeline})
	s.bytes += int64(len(body))
	s.mu.Unlock()
	go done(index.Result{Status: http.StatusCreated})
	return nil
}

// Flush has nothing to do: every document is acknowledged as it is added.
func (s *captureSink) Flush(context.Context) error { return nil }

// emptyIndex is an index that holds nothing: every listed message is new, as in a first crawl.
type emptyIndex struct{}

func (emptyIndex) Existing(context.Context, index.Kind, []string) (map[string]bool, error) {
	return map[string]bool{}, nil
}
func (emptyIndex) Refresh(context.Context) error { return nil }
func (emptyIndex) DeleteWhere(context.Context, index.Kind, index.Filter) (int64, error) {
	return 0, nil
}

// benchStartDate is messages.start_date of every crawl the benchmark runs, in process or not.
const benchStartDate = "2020-01-01"

// benchConfig is the configuration of the benchmark's crawls (writeCrawlConfig): the defaults,
// messages from benchStartDate, attachments extracted; parallelism, when above zero, replaces
// parallelism.mailboxes.
func benchConfig(parallelism int) *config.Config {
	c := config.Default()
	start, err := time.Parse(time.DateOnly, benchStartDate)
	if err != nil {
		panic(err) // a constant
	}
	c.Messages.StartDate = config.Date{Time: start}
	c.Attachments.Extract = true
	if parallelism > 0 {
		c.Parallelism.Mailboxes = parallelism
	}
	return c
}

// crawlOptions are the options `mimecrawl crawl` derives from benchConfig, by the same mapping
// (job.CrawlerOptions), so in-process crawls build the same documents the same way.
func crawlOptions(pipeline bool, parallelism int, log zerolog.Logger) crawler.Options {
	return job.CrawlerOptions(benchConfig(parallelism), false, pipeline, log)
}

func mimecastClient(simURL string, log zerolog.Logger) (*mimecast.Client, error) {
	return mimecast.New(mimecast.Config{BaseURL: simURL, ClientID: "demo-client", ClientSecret: "demo-secret", MaxRetries: mimecast.DefaultMaxRetries, Logger: log})
}

// buildDocs crawls the simulator in process into a captureSink: the documents the crawler
// would write, byte for byte except the event.ingested time. How fast this goes is not measured,
// so it uses more parallelism than the measured crawls.
func (b *bench) buildDocs(ctx context.Context, simURL string, pipeline bool) ([]builtDoc, int64, error) {
	log := zerolog.Nop()
	client, err := mimecastClient(simURL, log)
	if err != nil {
		return nil, 0, err
	}
	defer client.Close()
	store, err := state.Open(filepath.Join(b.work, fmt.Sprintf("build-%d.db", time.Now().UnixNano())), state.Options{LockTimeout: time.Second})
	if err != nil {
		return nil, 0, fmt.Errorf("open state for building documents: %w", err)
	}
	defer store.Close()
	enum, err := crawler.Enumerate(ctx, client, crawler.Rules{}, config.Default().Performance.PageSize, 4)
	if err != nil {
		return nil, 0, err
	}
	sink := &captureSink{}
	opts := crawlOptions(pipeline, 16, log)
	cr := crawler.New(client, emptyIndex{}, sink, store, opts)
	results, err := cr.Run(ctx, enum.Kept, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("build documents: %w", err)
	}
	for _, r := range results {
		if r.Outcome != crawler.Complete {
			return nil, 0, fmt.Errorf("build documents: mailbox view %s %s: %s", r.Mailbox, r.View, r.Error)
		}
	}
	return sink.docs, sink.bytes, nil
}

// selfCPU returns the user+system CPU seconds this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// ceiling pushes pre-built documents into fresh indices with the crawler's mappings and bulk
// settings: what Elasticsearch can take from one client on this machine, with no archive to
// read and nothing to parse. The time covers index setup and every acknowledgement, as the
// crawler's time does.
func (b *bench) ceiling(ctx context.Context, docs []builtDoc, prefix string) (runStats, error) {
	cpu0, es0, machine := selfCPU(), b.es.cpu(ctx), machineCPU()
	start := time.Now()
	cl, err := index.Open(ctx, index.Config{Addresses: []string{b.p.ESURL}, IndexPrefix: prefix, Logger: zerolog.Nop()})
	if err != nil {
		return runStats{}, err
	}
	if err := cl.Setup(ctx); err != nil {
		return runStats{}, err
	}
	bulk := config.Default().Elasticsearch.Bulk
	newIndexer := func(pipeline string) (esutil.BulkIndexer, error) {
		return esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
			Client: cl.Client(), NumWorkers: bulk.Workers, FlushBytes: int(bulk.FlushBytes),
			FlushInterval: bulk.FlushInterval.D(), Pipeline: pipeline,
		})
	}
	plain, err := newIndexer("")
	if err != nil {
		return runStats{}, fmt.Errorf("start bulk indexer: %w", err)
	}
	indexers := []esutil.BulkIndexer{plain}
	var piped esutil.BulkIndexer
	if cl.AttachmentProcessor() {
		if piped, err = newIndexer(cl.PipelineName()); err != nil {
			return runStats{}, fmt.Errorf("start bulk indexer: %w", err)
		}
		indexers = append(indexers, piped)
	}
	var failed atomic.Int64
	var firstErr atomic.Value
	onFailure := func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem, err error) {
		failed.Add(1)
		if err == nil {
			err = fmt.Errorf("status %d: %s: %s", r.Status, r.Error.Type, r.Error.Reason)
		}
		firstErr.CompareAndSwap(nil, err)
	}
	var messages int64
	for _, d := range docs {
		bi := plain
		if d.pipeline && piped != nil {
			bi = piped
		}
		if d.kind == index.Messages {
			messages++
		}
		item := esutil.BulkIndexerItem{Index: cl.IndexName(d.kind), Action: "index", DocumentID: d.id,
			Body: bytes.NewReader(d.body), OnFailure: onFailure}
		if err := bi.Add(ctx, item); err != nil {
			return runStats{}, fmt.Errorf("queue document %s: %w", d.id, err)
		}
	}
	st := runStats{Kind: "ceiling", Prefix: prefix}
	for _, bi := range indexers {
		if err := bi.Close(ctx); err != nil {
			return runStats{}, fmt.Errorf("flush bulk indexer: %w", err)
		}
		s := bi.Stats()
		st.Bytes += int64(s.FlushedBytes)
		st.BulkRequests += int64(s.NumRequests)
	}
	st.Seconds = time.Since(start).Seconds()
	st.BenchCPU, st.ESCPU, st.MachineCPU = selfCPU()-cpu0, b.es.cpu(ctx)-es0, machineCPU()-machine
	st.OtherCPU = st.MachineCPU - st.BenchCPU - st.ESCPU
	st.Docs = int64(len(docs)) - failed.Load()
	st.Messages, st.Attachments = messages, int64(len(docs))-messages
	st.rates()
	if n := failed.Load(); n > 0 {
		return st, fmt.Errorf("ceiling run %s: %d documents failed, the first: %v", prefix, n, firstErr.Load())
	}
	return st, nil
}
