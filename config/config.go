package config

import (
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/state"
)

// Config is the whole mimecrawl configuration. docs/configuration.md describes every key.
type Config struct {
	Mimecast      Mimecast      `yaml:"mimecast"`
	Domains       Domains       `yaml:"domains"`
	Mailboxes     Mailboxes     `yaml:"mailboxes"`
	Messages      Messages      `yaml:"messages"`
	Attachments   Attachments   `yaml:"attachments"`
	Parallelism   Parallelism   `yaml:"parallelism"`
	Logging       Logging       `yaml:"logging"`
	Metrics       Metrics       `yaml:"metrics"`
	Performance   Performance   `yaml:"performance"`
	Elasticsearch Elasticsearch `yaml:"elasticsearch"`
	State         State         `yaml:"state"`
	Safety        Safety        `yaml:"safety"`
	Alerts        Alerts        `yaml:"alerts"`
}

// Mimecast says where the Mimecast API 2.0 is and how to authenticate to it.
type Mimecast struct {
	// BaseURL is the API host, without a trailing slash (Load removes one).
	BaseURL string `yaml:"base_url"`
	// AuthURL is the OAuth2 token endpoint. Empty means BaseURL + "/oauth/token"; Load
	// fills it in, code building a Config by hand can call TokenURL.
	AuthURL          string   `yaml:"auth_url"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     Secret   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	RequestTimeout   Duration `yaml:"request_timeout"`

	// clientSecretRead records that ClientSecret was read from ClientSecretFile, so that
	// having both set is not "both configured".
	clientSecretRead bool
}

// TokenURL returns AuthURL, or the token endpoint derived from BaseURL when AuthURL is empty.
func (m Mimecast) TokenURL() string {
	if m.AuthURL != "" {
		return m.AuthURL
	}
	return strings.TrimRight(m.BaseURL, "/") + "/oauth/token"
}

// Domains selects the internal domains whose mailboxes are crawled.
type Domains struct {
	// Include lists rules matched against the domain name; empty means every domain.
	Include []Regexp `yaml:"include"`
	// IncludeLocal also crawls domains Mimecast marks as local (not routed).
	IncludeLocal bool `yaml:"include_local"`
}

// Mailboxes selects mailboxes by address. A mailbox is crawled when Include is empty or
// one of its rules matches, and no Exclude rule matches.
type Mailboxes struct {
	Include []Regexp `yaml:"include"`
	Exclude []Regexp `yaml:"exclude"`
}

// Messages selects and shapes the messages indexed.
type Messages struct {
	StartDate       Date     `yaml:"start_date"`
	ExcludeSubjects []Regexp `yaml:"exclude_subjects"`
	BlankSubject    string   `yaml:"blank_subject"`
	Views           []string `yaml:"views"`
	// MaxBytes caps the download of one message's RFC 822 form.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Detail also fetches each message's detail (get-message-detail, one more quota-counted
	// call per message) for what only it has: the envelope sender as Mimecast saw it, the
	// smash and Mimecast's attachment ids.
	Detail bool `yaml:"detail"`
}

// Attachments controls whether and which attachments are indexed as documents.
type Attachments struct {
	Extract      bool     `yaml:"extract"`
	ExcludeNames []Regexp `yaml:"exclude_names"`
	BlankName    string   `yaml:"blank_name"`
	MaxBytes     ByteSize `yaml:"max_bytes"`
	// MemoryPerMessage caps the attachment bytes of one message held in memory; the rest
	// wait in a temporary file in SpillDir ("" is the system's temporary directory).
	MemoryPerMessage ByteSize `yaml:"memory_per_message"`
	SpillDir         string   `yaml:"spill_dir"`
	// Text says who extracts attachment text: TextByCrawler, TextByElasticsearch (the ingest
	// attachment processor, where the cluster has it) or TextNone.
	Text string `yaml:"text"`
	// MaxTextChars caps the characters of text kept from one attachment.
	MaxTextChars int `yaml:"max_text_chars"`
	// TextTimeout bounds the text extraction of one attachment by the crawler.
	TextTimeout Duration `yaml:"text_timeout"`
}

// Values of attachments.text.
const (
	TextByCrawler       = "crawler"
	TextByElasticsearch = "elasticsearch"
	TextNone            = "none"
)

func textSources() []string { return []string{TextByCrawler, TextByElasticsearch, TextNone} }

// Parallelism bounds how much work runs at once. Each setting counts one thing.
type Parallelism struct {
	// Mailboxes is the mailbox views listed at once (crawler.Options.ListingSlots), by a crawl
	// and by plan.
	Mailboxes int `yaml:"mailboxes"`
	// Domains is the domains whose users are listed at once when the account's mailboxes are
	// enumerated. Not given, it is Mailboxes (Load), which it was before it had a key of its own.
	Domains          int `yaml:"domains"`
	IndexQueries     int `yaml:"index_queries"`
	MailboxDeletions int `yaml:"mailbox_deletions"`
	// Messages is the fetch workers per listing slot: Mailboxes × Messages messages are fetched
	// at once, from whichever views have them listed, and as many archive requests are at most
	// in flight (Fetchers).
	Messages int `yaml:"messages"`
}

// Logging controls the program log and the API trace.
type Logging struct {
	Level string `yaml:"level"`
	// Format is the log line format: auto (console on a terminal, JSON otherwise), json,
	// console or ecs (Elastic Common Schema JSON). --log-format overrides it.
	Format        string   `yaml:"format"`
	Trace         string   `yaml:"trace"`
	StatsInterval Duration `yaml:"stats_interval"`

	// levelSet: logging.level was given (file or environment), not left at its default. A
	// terminal raises only the default level; an explicit one is honoured.
	levelSet bool
}

// LevelSet reports whether logging.level was given rather than left at its default.
func (l Logging) LevelSet() bool { return l.levelSet }

// Metrics controls the Prometheus metrics.
type Metrics struct {
	// PushgatewayURL, when set, is where a crawl or a one-pass alerts run pushes its metrics
	// when it ends (job "mimecrawl", grouped by command), so that the numbers of the last run
	// outlive its pod. An http or https URL without credentials, query or fragment.
	PushgatewayURL string `yaml:"pushgateway_url"`
	// WorstMailboxes is how many of the most lagging mailboxes get their own series.
	WorstMailboxes int `yaml:"worst_mailboxes"`
	// PushTimeout bounds the push at the end of a run.
	PushTimeout Duration `yaml:"push_timeout"`
}

// Performance holds paging, retry and timing settings.
type Performance struct {
	PageSize             int      `yaml:"page_size"`
	RetryAfterMultiplier float64  `yaml:"retry_after_multiplier"`
	DeltaTokenOffset     Duration `yaml:"delta_token_offset"`
	AuthTokenOffset      Duration `yaml:"auth_token_offset"`
	MaxRetries           int      `yaml:"max_retries"`
	CheckpointInterval   Duration `yaml:"checkpoint_interval"`
	// ShutdownGrace is how long a run may take to stop after SIGTERM or SIGINT: to let
	// Elasticsearch acknowledge what is queued, commit it and print the summary.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// Concurrency says how many archive requests are in flight at once: ConcurrencyAdaptive
	// (as many as pay, up to parallelism.mailboxes × parallelism.messages) or
	// ConcurrencyFixed (always that product).
	Concurrency string `yaml:"concurrency"`
	// MessagesInFlight bounds the messages a crawl holds at once, listed and not yet
	// acknowledged by Elasticsearch, across all mailbox views: the memory of a run.
	MessagesInFlight int `yaml:"messages_in_flight"`
}

// Values of performance.concurrency.
const (
	ConcurrencyAdaptive = "adaptive"
	ConcurrencyFixed    = "fixed"
)

func concurrencyModes() []string { return []string{ConcurrencyAdaptive, ConcurrencyFixed} }

// Fetchers is the messages fetched at once, parallelism.mailboxes × parallelism.messages, and so
// the most archive requests in flight; crawler.Options.Fetchers computes it, for the crawl and
// for this.
func (c *Config) Fetchers() int {
	return crawler.Options{ListingSlots: c.Parallelism.Mailboxes, MessageWorkers: c.Parallelism.Messages}.Fetchers()
}

// Elasticsearch says where to index and how to authenticate.
type Elasticsearch struct {
	Addresses    []string `yaml:"addresses"`
	Username     string   `yaml:"username"`
	Password     Secret   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	APIKey       Secret   `yaml:"api_key"`
	APIKeyFile   string   `yaml:"api_key_file"`
	CAFile       string   `yaml:"ca_file"`
	IndexPrefix  string   `yaml:"index_prefix"`
	// Namespace is the namespace of the data stream the alerts go to,
	// logs-mimecrawl.alerts-{namespace} (Elastic's data stream naming); two installations
	// sharing a cluster need two namespaces.
	Namespace string `yaml:"namespace"`
	// Shards and Replicas set number_of_shards and number_of_replicas of the indices mimecrawl
	// creates; unset keeps the cluster's defaults. The operator's {prefix}-messages@custom and
	// {prefix}-attachments@custom component templates win over both, and neither changes an
	// index that exists.
	Shards   *int `yaml:"shards"`
	Replicas *int `yaml:"replicas"`
	// RequestTimeout bounds one attempt of every request but bulk ones, answer included.
	RequestTimeout Duration `yaml:"request_timeout"`
	Bulk           Bulk     `yaml:"bulk"`

	// CAFingerprint is the SHA-256 of a certificate the cluster presents (its CA, as
	// Elasticsearch prints at first start, or its own): hex, colons allowed. See
	// CAFingerprintSHA256.
	CAFingerprint string `yaml:"ca_fingerprint"`
	// CloudID names an Elastic Cloud deployment; Load turns it into Addresses.
	CloudID string `yaml:"cloud_id"`

	// passwordRead and apiKeyRead record that the secret was read from its *File.
	passwordRead bool
	apiKeyRead   bool
}

// Bulk tunes the bulk indexer.
type Bulk struct {
	Workers        int      `yaml:"workers"`
	FlushBytes     ByteSize `yaml:"flush_bytes"`
	FlushInterval  Duration `yaml:"flush_interval"`
	MaxItemRetries int      `yaml:"max_item_retries"`
	// Timeout bounds one attempt of one bulk request, answer included.
	Timeout Duration `yaml:"timeout"`
}

// State says where the checkpoint database lives.
type State struct {
	Path        string   `yaml:"path"`
	LockTimeout Duration `yaml:"lock_timeout"`
}

// Safety holds guards against destructive mistakes.
type Safety struct {
	// MaxMailboxRemovalRatio is the largest share of known mailboxes that one run may
	// treat as removed; a larger drop stops the run instead of deleting documents.
	MaxMailboxRemovalRatio float64 `yaml:"max_mailbox_removal_ratio"`
}

// Defaults named by other code. They are the components' own (see Default).
const (
	DefaultBaseURL = mimecast.DefaultBaseURL
	// DefaultNamespace is elasticsearch.namespace's default, Elastic's own.
	DefaultNamespace = index.DefaultNamespace
)

// Default returns a Config holding every default. It is not valid on its own: the
// Mimecast client id and secret have no default.
//
// Where a default lives: a setting that a component reads takes its default from that
// component (crawler.DefaultOptions, index.DefaultConfig, mimecast.DefaultConfig,
// state.DefaultLockTimeout), so the value is written once and a component built without the
// configuration behaves as a default configuration; only the defaults of settings no
// component reads (logging, metrics, the state path, safety, the run's shutdown grace,
// removals at once, the concurrency mode, the default address) are written here, and those of
// the alerts section (defaultAlerts): package alerts imports config for its vocabulary, so
// alerts.DefaultOptions takes the poller's defaults from here.
// docs/configuration.md states the same values; TestDocsConfigKeysAndDefaults fails when the
// two differ.
func Default() *Config {
	cr, es, mc := crawler.DefaultOptions(), index.DefaultConfig(), mimecast.DefaultConfig()
	return &Config{
		Mimecast: Mimecast{
			BaseURL:        mc.BaseURL,
			RequestTimeout: Duration(mc.RequestTimeout),
		},
		Messages: Messages{
			StartDate:    Date{cr.StartDate},
			BlankSubject: cr.BlankSubject,
			Views:        cr.Views,
			MaxBytes:     ByteSize(cr.Limits.MaxMessageBytes),
			Detail:       cr.MessageDetail,
		},
		Attachments: Attachments{
			Extract:          cr.ExtractAttachments,
			BlankName:        cr.BlankName,
			MaxBytes:         ByteSize(cr.MaxAttachmentBytes),
			MemoryPerMessage: ByteSize(cr.Limits.KeepMemory),
			Text:             TextByCrawler,
			MaxTextChars:     cr.MaxAttachmentTextChars,
			TextTimeout:      Duration(cr.AttachmentTextTimeout),
		},
		Parallelism: Parallelism{
			Mailboxes:        cr.ListingSlots,
			Domains:          cr.ListingSlots, // Load: parallelism.mailboxes unless given
			IndexQueries:     cr.IndexQueries,
			MailboxDeletions: 2,
			Messages:         cr.MessageWorkers,
		},
		Logging: Logging{
			Level:         "info",
			Format:        "auto",
			Trace:         "none",
			StatsInterval: Duration(mc.StatsInterval),
		},
		Metrics: Metrics{
			WorstMailboxes: 10,
			PushTimeout:    Duration(10 * time.Second),
		},
		Performance: Performance{
			PageSize:             cr.PageSize,
			MessagesInFlight:     cr.MessagesInFlight,
			RetryAfterMultiplier: mc.RetryAfterMultiplier,
			DeltaTokenOffset:     Duration(cr.DeltaTokenOffset),
			AuthTokenOffset:      Duration(mc.AuthTokenOffset),
			MaxRetries:           mc.MaxRetries,
			CheckpointInterval:   Duration(cr.CheckpointInterval),
			ShutdownGrace:        Duration(30 * time.Second),
			Concurrency:          ConcurrencyAdaptive,
		},
		Elasticsearch: Elasticsearch{
			Addresses:      []string{"http://127.0.0.1:9200"},
			IndexPrefix:    es.IndexPrefix,
			Namespace:      es.Namespace,
			RequestTimeout: Duration(es.RequestTimeout),
			Bulk: Bulk{
				Timeout:        Duration(es.BulkTimeout),
				Workers:        es.BulkWorkers,
				FlushBytes:     ByteSize(es.FlushBytes),
				FlushInterval:  Duration(es.FlushInterval),
				MaxItemRetries: es.MaxItemRetries,
			},
		},
		State: State{
			Path:        "mimecrawl.db",
			LockTimeout: Duration(state.DefaultLockTimeout),
		},
		Safety: Safety{
			MaxMailboxRemovalRatio: 0.2,
		},
		Alerts: defaultAlerts(),
	}
}
