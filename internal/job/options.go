package job

import (
	"context"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/state"
)

// The config → component mapping. Each component's settings are read from the configuration
// here and nowhere else: the crawl, plan, check and the benchmark call these functions, so a
// setting cannot reach one of them and miss another. TestCrawlerOptionsTakesEverySetting fails
// when a crawler option is added and not mapped.

// CrawlerOptions are the crawler's options for a run of cfg: full ignores delta tokens;
// pipeline sends attachments through the cluster's ingest pipeline (see UsePipeline). The
// run-specific options (FullSince, InternalDomains) are set by the caller.
func CrawlerOptions(cfg *config.Config, full, pipeline bool, log zerolog.Logger) crawler.Options {
	c := cfg
	return crawler.Options{
		Views: c.Messages.Views, StartDate: c.Messages.StartDate.Time,
		ExcludeSubjects: c.Messages.ExcludeSubjects, BlankSubject: c.Messages.BlankSubject,
		MessageDetail:      c.Messages.Detail,
		ExtractAttachments: c.Attachments.Extract, ExcludeNames: c.Attachments.ExcludeNames,
		BlankName: c.Attachments.BlankName, MaxAttachmentBytes: int64(c.Attachments.MaxBytes),
		AttachmentPipeline: pipeline, NoAttachmentText: c.Attachments.Text == config.TextNone,
		MaxAttachmentTextChars: c.Attachments.MaxTextChars, AttachmentTextTimeout: c.Attachments.TextTimeout.D(),
		PageSize: c.Performance.PageSize, ListingSlots: c.Parallelism.Mailboxes, MessageWorkers: c.Parallelism.Messages,
		MessagesInFlight: c.Performance.MessagesInFlight,
		IndexQueries:     c.Parallelism.IndexQueries, DeltaTokenOffset: c.Performance.DeltaTokenOffset.D(),
		CheckpointInterval: c.Performance.CheckpointInterval.D(), Full: full,
		ShutdownGrace: AckGrace(c.Performance.ShutdownGrace.D()),
		Logger:        log.With().Str("component", "crawler").Logger(),
		Limits: crawler.MessageLimits{MaxMessageBytes: int64(c.Messages.MaxBytes),
			KeepMemory: int64(c.Attachments.MemoryPerMessage), SpillDir: c.Attachments.SpillDir},
	}
}

// UsePipeline tells whether attachment text goes through the cluster's ingest pipeline:
// attachments.text is elasticsearch and the cluster has the attachment processor. Without the
// processor the crawler extracts the text itself rather than index none, and says so.
func UsePipeline(cfg *config.Config, hasProcessor bool, log zerolog.Logger) bool {
	if cfg.Attachments.Text != config.TextByElasticsearch {
		return false
	}
	if !hasProcessor {
		log.Warn().Msg("attachments.text is elasticsearch but the cluster has no attachment processor; the crawler extracts attachment text")
	}
	return hasProcessor
}

// Rules are the enumeration rules of cfg for shard (the zero Shard: every mailbox).
func Rules(cfg *config.Config, shard crawler.Shard) crawler.Rules {
	return crawler.Rules{
		IncludeDomains: cfg.Domains.Include, IncludeLocal: cfg.Domains.IncludeLocal,
		IncludeMailboxes: cfg.Mailboxes.Include, ExcludeMailboxes: cfg.Mailboxes.Exclude,
		Shard: shard,
	}
}

// Enumerate lists the account's mailboxes and applies cfg's rules for shard (the zero Shard:
// every mailbox), parallelism.domains domains at a time.
func Enumerate(ctx context.Context, cfg *config.Config, dir crawler.Directory, shard crawler.Shard) (*crawler.Enumeration, error) {
	return crawler.Enumerate(ctx, dir, Rules(cfg, shard), cfg.Performance.PageSize, cfg.Parallelism.Domains)
}

// ArchiveConcurrency is the bound on archive requests in flight for the crawl's client. One
// message being fetched has one archive request in flight at a time, so the crawl's fetchers
// (config.Fetchers, crawler.Options.Fetchers) bound the requests; the limiter, adaptive by
// default, decides how many of them pay.
func ArchiveConcurrency(cfg *config.Config) mimecast.Concurrency {
	return mimecast.Concurrency{Adaptive: cfg.Performance.Concurrency != config.ConcurrencyFixed, Max: cfg.Fetchers()}
}

// MimecastConfig is the Mimecast client's configuration for cfg, with conc as its bound on
// archive requests (ArchiveConcurrency for a crawl, none for the alerts poller).
func MimecastConfig(cfg *config.Config, conc mimecast.Concurrency, log zerolog.Logger) (mimecast.Config, error) {
	m, p, l := cfg.Mimecast, cfg.Performance, cfg.Logging
	trace, err := mimecast.ParseTraceLevel(l.Trace)
	if err != nil {
		return mimecast.Config{}, err
	}
	return mimecast.Config{
		BaseURL: m.BaseURL, AuthURL: m.AuthURL, ClientID: m.ClientID, ClientSecret: m.ClientSecret.Reveal(),
		AuthTokenOffset: p.AuthTokenOffset.D(), RetryAfterMultiplier: p.RetryAfterMultiplier,
		MaxRetries: p.MaxRetries, RequestTimeout: m.RequestTimeout.D(), Trace: trace,
		StatsInterval: l.StatsInterval.D(), Logger: log.With().Str("component", "mimecast").Logger(),
		Concurrency: conc,
	}, nil
}

// archiveClient is the Mimecast client of crawl, plan and check: MimecastConfig bounded by
// ArchiveConcurrency.
func archiveClient(cfg *config.Config, log zerolog.Logger) (*mimecast.Client, error) {
	mc, err := MimecastConfig(cfg, ArchiveConcurrency(cfg), log)
	if err != nil {
		return nil, err
	}
	return mimecast.New(mc)
}

// openCluster opens the cluster of IndexConfig.
func openCluster(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*index.Cluster, error) {
	ic, err := IndexConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	return index.Open(ctx, ic)
}

// IndexConfig is the Elasticsearch configuration for cfg; it reads elasticsearch.ca_file.
func IndexConfig(cfg *config.Config, log zerolog.Logger) (index.Config, error) {
	e := cfg.Elasticsearch
	var ca []byte
	if e.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(e.CAFile); err != nil {
			return index.Config{}, fmt.Errorf("elasticsearch.ca_file: %w", err)
		}
	}
	return index.Config{
		Addresses: e.Addresses, Username: e.Username, Password: e.Password.Reveal(), APIKey: e.APIKey.Reveal(),
		CACert: ca, CAFingerprint: e.CAFingerprintSHA256(), IndexPrefix: e.IndexPrefix, Namespace: e.Namespace,
		Shards: e.Shards, Replicas: e.Replicas, BulkWorkers: e.Bulk.Workers, FlushBytes: int(e.Bulk.FlushBytes),
		FlushInterval: e.Bulk.FlushInterval.D(), MaxItemRetries: e.Bulk.MaxItemRetries,
		RequestTimeout: e.RequestTimeout.D(), BulkTimeout: e.Bulk.Timeout.D(),
		Logger: log.With().Str("component", "index").Logger(),
	}, nil
}

// StoreOptions are the state file's options for cfg.
func StoreOptions(cfg *config.Config, readOnly bool) state.Options {
	return state.Options{LockTimeout: cfg.State.LockTimeout.D(), ReadOnly: readOnly}
}
