package index

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/internal/backoff"
)

// Config says which cluster to use and how to write to it. Zero values take the defaults noted.
type Config struct {
	Addresses []string // base URLs of the cluster's HTTP endpoints; required
	Username  string
	Password  string
	APIKey    string // base64 "id:key", as Elasticsearch issues it; wins over Username/Password
	CACert    []byte // PEM bundle that signs the cluster's certificate
	// CAFingerprint is the SHA-256 of a certificate the cluster presents (its CA or its own):
	// the chain must lead to that certificate. Not together with CACert.
	CAFingerprint []byte

	// IndexPrefix names the indices, pipeline and templates: "mimecast" gives the indices
	// mimecast-messages and mimecast-attachments. Default "mimecast".
	IndexPrefix string
	// Shards and Replicas set number_of_shards and number_of_replicas of the indices Setup
	// creates; nil keeps the cluster default. The operator's @custom templates win over both.
	Shards   *int
	Replicas *int
	// Namespace is the namespace of the data streams (Spec.DataStream): documents of the
	// dataset mimecrawl.alerts go to logs-mimecrawl.alerts-{Namespace}. Default "default",
	// Elastic's. Lowercase letters, digits, '.' and '_', at most 100 bytes (no '-', which
	// separates the parts of a data stream's name).
	Namespace string

	BulkWorkers   int           // concurrent bulk requests; default 2
	FlushBytes    int           // bulk request size that triggers a flush; default 5 MB
	FlushInterval time.Duration // longest time a queued document waits; default 1s
	// MaxItemRetries is how often an item answered 429 is re-queued before it fails; default 3,
	// negative for none.
	MaxItemRetries int
	// RetryBackoff is the wait before retry number attempt (1, 2, ...) of a request or of an
	// item; default exponential from 100ms to 10s with jitter.
	RetryBackoff func(attempt int) time.Duration
	// MaxRetries bounds the client's retries of one request; default 5.
	MaxRetries int
	// RequestTimeout bounds each attempt of every request but bulk ones, answer included, so
	// that a node that stops answering is an error rather than a hang; default 30s.
	RequestTimeout time.Duration
	// BulkTimeout bounds each attempt of a bulk request; default 2m.
	BulkTimeout time.Duration
	// AttachmentIndexedChars caps the characters the attachment processor extracts per file;
	// default 1,000,000, -1 for no cap.
	AttachmentIndexedChars int

	Transport http.RoundTripper // optional; the client's default transport otherwise
	Logger    zerolog.Logger
}

// DefaultNamespace is the namespace of the data streams when the Config gives none: Elastic's
// own default.
const DefaultNamespace = "default"

// DefaultConfig returns the defaults of Config: a zero value given to New takes its default
// from here, and config.Default takes the defaults of the elasticsearch settings from here, so
// each is written once. Addresses has none (the configuration's default address is its own).
func DefaultConfig() Config {
	return Config{
		IndexPrefix:    "mimecast",
		Namespace:      DefaultNamespace,
		BulkWorkers:    2,
		FlushBytes:     5 * 1000 * 1000,
		FlushInterval:  time.Second,
		MaxItemRetries: 3,
		MaxRetries:     5,
		RequestTimeout: 30 * time.Second,
		BulkTimeout:    2 * time.Minute,
		// The attachment processor's own default.
		AttachmentIndexedChars: 1000 * 1000,
	}
}

// validPrefix keeps index names legal: lowercase, no characters Elasticsearch rejects, not
// starting with '-', '_' or '+'.
var validPrefix = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,200}$`)

// ValidNamespace is what Elastic's data stream naming allows of a namespace, narrowed to
// characters that need no escaping anywhere: lowercase letters, digits, '.' and '_'.
var ValidNamespace = regexp.MustCompile(`^[a-z0-9._]{1,100}$`)

// withDefaults returns a copy of c with every zero value replaced by its default (DefaultConfig),
// or an error naming the setting that is wrong.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if len(c.Addresses) == 0 {
		return c, fmt.Errorf("no Elasticsearch address configured")
	}
	if c.IndexPrefix == "" {
		c.IndexPrefix = d.IndexPrefix
	}
	if !validPrefix.MatchString(c.IndexPrefix) {
		return c, fmt.Errorf("index prefix %q: want lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", c.IndexPrefix)
	}
	if c.Namespace == "" {
		c.Namespace = d.Namespace
	}
	if !ValidNamespace.MatchString(c.Namespace) {
		return c, fmt.Errorf("data stream namespace %q: want 1 to 100 lowercase letters, digits, '.' or '_'", c.Namespace)
	}
	if c.Shards != nil && *c.Shards < 1 {
		return c, fmt.Errorf("shards %d: want 1 or more", *c.Shards)
	}
	if c.Replicas != nil && *c.Replicas < 0 {
		return c, fmt.Errorf("replicas %d: want 0 or more", *c.Replicas)
	}
	if c.BulkWorkers <= 0 {
		c.BulkWorkers = d.BulkWorkers
	}
	if c.FlushBytes <= 0 {
		c.FlushBytes = d.FlushBytes
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = d.FlushInterval
	}
	switch {
	case c.MaxItemRetries == 0:
		c.MaxItemRetries = d.MaxItemRetries
	case c.MaxItemRetries < 0:
		c.MaxItemRetries = 0
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = d.MaxRetries
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.BulkTimeout <= 0 {
		c.BulkTimeout = d.BulkTimeout
	}
	if c.RetryBackoff == nil {
		c.RetryBackoff = ExponentialBackoff(100*time.Millisecond, 10*time.Second)
	}
	if c.AttachmentIndexedChars == 0 {
		c.AttachmentIndexedChars = d.AttachmentIndexedChars
	}
	return c, nil
}

// ExponentialBackoff returns a backoff that doubles from base for each attempt, never exceeds
// ceiling, and waits a random time between half and all of that so that many writers that failed
// together do not retry together.
func ExponentialBackoff(base, ceiling time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration { return backoff.Exponential(attempt, base, ceiling) }
}
