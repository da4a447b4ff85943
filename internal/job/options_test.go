package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// notFromConfig are the crawler options that no setting maps to: the caller sets them per run
// (FullSince, InternalDomains), or the crawler keeps its own (MaxTextBytes, Now).
var notFromConfig = map[string]bool{"FullSince": true, "InternalDomains": true, "MaxTextBytes": true, "Now": true}

// nonDefault is a configuration whose every setting the crawler reads differs from its
// default, so that a setting that does not reach the options shows.
func nonDefault() *config.Config {
	c := config.Default()
	c.Messages.Views = []string{"SENT"}
	c.Messages.StartDate = config.Date{Time: time.Date(2021, 3, 4, 0, 0, 0, 0, time.UTC)}
	c.Messages.ExcludeSubjects = []config.Regexp{config.MustRegexp("spam.*")}
	c.Messages.BlankSubject = "(none)"
	c.Messages.Detail = true
	c.Messages.MaxBytes = 7 << 20
	c.Attachments.Extract = true
	c.Attachments.ExcludeNames = []config.Regexp{config.MustRegexp(".*\\.exe")}
	c.Attachments.BlankName = "nameless"
	c.Attachments.MaxBytes = 3 << 20
	c.Attachments.MemoryPerMessage = 5 << 20
	c.Attachments.SpillDir = "/spill"
	c.Attachments.Text = config.TextNone
	c.Attachments.MaxTextChars = 4321
	c.Attachments.TextTimeout = config.Duration(7 * time.Second)
	c.Performance.PageSize = 77
	c.Parallelism.Mailboxes = 3
	c.Parallelism.Messages = 5
	c.Parallelism.IndexQueries = 6
	c.Performance.MessagesInFlight = 99
	c.Performance.DeltaTokenOffset = config.Duration(-3 * time.Minute)
	c.Performance.CheckpointInterval = config.Duration(11 * time.Second)
	c.Performance.ShutdownGrace = config.Duration(40 * time.Second)
	return c
}

// TestCrawlerOptionsTakesEverySetting: every setting the crawler reads reaches the option it
// should, and every crawler option is either mapped from a setting or named in notFromConfig:
// an option added to the crawler and forgotten here (as the benchmark's copy forgot
// messages_in_flight and the message limits) fails.
func TestCrawlerOptionsTakesEverySetting(t *testing.T) {
	c := nonDefault()
	o := CrawlerOptions(c, true, true, zerolog.New(io.Discard))
	for _, tc := range []struct {
		setting   string
		got, want any
	}{
		{"messages.views", o.Views, []string{"SENT"}},
		{"messages.start_date", o.StartDate, c.Messages.StartDate.Time},
		{"messages.exclude_subjects", o.ExcludeSubjects, c.Messages.ExcludeSubjects},
		{"messages.blank_subject", o.BlankSubject, "(none)"},
		{"messages.detail", o.MessageDetail, true},
		{"messages.max_bytes", o.Limits.MaxMessageBytes, int64(7 << 20)},
		{"attachments.extract", o.ExtractAttachments, true},
		{"attachments.exclude_names", o.ExcludeNames, c.Attachments.ExcludeNames},
		{"attachments.blank_name", o.BlankName, "nameless"},
		{"attachments.max_bytes", o.MaxAttachmentBytes, int64(3 << 20)},
		{"attachments.memory_per_message", o.Limits.KeepMemory, int64(5 << 20)},
		{"attachments.spill_dir", o.Limits.SpillDir, "/spill"},
		{"attachments.text none", o.NoAttachmentText, true},
		{"attachments.max_text_chars", o.MaxAttachmentTextChars, 4321},
		{"attachments.text_timeout", o.AttachmentTextTimeout, 7 * time.Second},
		{"performance.page_size", o.PageSize, 77},
		{"parallelism.mailboxes", o.ListingSlots, 3},
		{"parallelism.messages", o.MessageWorkers, 5},
		{"parallelism.index_queries", o.IndexQueries, 6},
		{"performance.messages_in_flight", o.MessagesInFlight, 99},
		{"performance.delta_token_offset", o.DeltaTokenOffset, -3 * time.Minute},
		{"performance.checkpoint_interval", o.CheckpointInterval, 11 * time.Second},
		{"performance.shutdown_grace (the acknowledgement part)", o.ShutdownGrace, 30 * time.Second},
		{"--full", o.Full, true},
		{"the cluster's pipeline", o.AttachmentPipeline, true},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: option is %v, want %v", tc.setting, tc.got, tc.want)
		}
	}
	checkAllSet(t, reflect.ValueOf(o), "crawler.Options")

	// An empty blank label is a setting ("leave it empty"), not "unset": it reaches the crawler
	// as is, and the crawler keeps it.
	c.Messages.BlankSubject, c.Attachments.BlankName = "", ""
	if o := CrawlerOptions(c, false, false, zerolog.New(io.Discard)); o.BlankSubject != "" || o.BlankName != "" {
		t.Errorf("blank labels %q, %q, want empty", o.BlankSubject, o.BlankName)
	}
}

// checkAllSet fails for every field of v (recursively into structs) left at its zero value and
// not named in notFromConfig.
func checkAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if notFromConfig[name] || !v.Type().Field(i).IsExported() {
			continue
		}
		if f.Kind() == reflect.Struct && f.Type() == reflect.TypeOf(crawler.MessageLimits{}) {
			checkAllSet(t, f, path+"."+name)
			continue
		}
		if f.IsZero() {
			t.Errorf("%s.%s is not set from the configuration: map it in CrawlerOptions or name it in notFromConfig", path, name)
		}
	}
}

// Without the cluster's attachment processor, or with attachments.text other than
// elasticsearch, the crawler extracts the text itself.
func TestUsePipeline(t *testing.T) {
	c := config.Default()
	log := zerolog.New(io.Discard)
	for _, tc := range []struct {
		text      string
		processor bool
		want      bool
	}{
		{config.TextByElasticsearch, true, true},
		{config.TextByElasticsearch, false, false},
		{config.TextByCrawler, true, false},
		{config.TextNone, true, false},
	} {
		c.Attachments.Text = tc.text
		if got := UsePipeline(c, tc.processor, log); got != tc.want {
			t.Errorf("text %s, processor %v: pipeline %v, want %v", tc.text, tc.processor, got, tc.want)
		}
	}
}

// The rules, the client and the index take their settings too.
func TestComponentConfigs(t *testing.T) {
	c := nonDefault()
	c.Domains.IncludeLocal = true
	c.Mailboxes.Exclude = []config.Regexp{config.MustRegexp("x@.*")}
	shard := crawler.Shard{Index: 1, Count: 3}
	r := Rules(c, shard)
	if !r.IncludeLocal || len(r.ExcludeMailboxes) != 1 || r.Shard != shard {
		t.Errorf("rules %+v", r)
	}
	c.Performance.Concurrency = config.ConcurrencyFixed
	if conc := ArchiveConcurrency(c); conc.Adaptive || conc.Max != 15 {
		t.Errorf("archive concurrency %+v, want fixed at parallelism.mailboxes × parallelism.messages = 15", conc)
	}
	if o := CrawlerOptions(c, false, false, zerolog.New(io.Discard)); o.Fetchers() != ArchiveConcurrency(c).Max {
		t.Errorf("the crawl has %d fetchers, its client a bound of %d requests: one product, computed once", o.Fetchers(), ArchiveConcurrency(c).Max)
	}
	c.Mimecast.ClientID, c.Performance.MaxRetries = "id", 2
	mc, err := MimecastConfig(c, ArchiveConcurrency(c), zerolog.New(io.Discard))
	if err != nil || mc.ClientID != "id" || mc.MaxRetries != 2 || mc.Concurrency.Max != 15 {
		t.Errorf("mimecast config %+v, %v", mc, err)
	}
	c.Elasticsearch.Bulk.Workers = 9
	ic, err := IndexConfig(c, zerolog.New(io.Discard))
	if err != nil || ic.BulkWorkers != 9 || ic.IndexPrefix != c.Elasticsearch.IndexPrefix {
		t.Errorf("index config %+v, %v", ic, err)
	}
	c.Elasticsearch.CAFile = "/does/not/exist"
	if _, err := IndexConfig(c, zerolog.New(io.Discard)); err == nil {
		t.Error("a missing elasticsearch.ca_file is not an error")
	}
}

// gateDirectory lets user listings through in groups of limit at once (the last group
// smaller) and counts the most at once: an enumeration that lists fewer domains at once than
// limit fails after a while instead of hanging.
type gateDirectory struct {
	domains []api.Domain
	limit   int

	mu                     sync.Mutex
	started, inflight, max int
	gate                   chan struct{}
}

func (d *gateDirectory) InternalDomains(context.Context) ([]api.Domain, error) { return d.domains, nil }

func (d *gateDirectory) InternalUsers(ctx context.Context, domain string, _ int) ([]api.User, error) {
	d.mu.Lock()
	d.started++
	d.inflight++
	d.max = max(d.max, d.inflight)
	if d.gate == nil {
		d.gate = make(chan struct{})
	}
	g := d.gate
	if d.inflight == d.limit || d.started == len(d.domains) {
		close(g)
		d.gate = nil
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inflight--
		d.mu.Unlock()
	}()
	select {
	case <-g:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(10 * time.Second): // not a timing assertion: the alternative is a hang
		return nil, errors.New("domains listed fewer than parallelism.domains at a time")
	}
	return []api.User{{EmailAddress: "u@" + domain}}, nil
}

// TestEnumerateListsParallelismDomainsAtOnce: the domains listed at once are
// parallelism.domains, not parallelism.mailboxes (which counts views listed at once).
func TestEnumerateListsParallelismDomainsAtOnce(t *testing.T) {
	cfg := config.Default()
	cfg.Parallelism.Mailboxes, cfg.Parallelism.Domains = 5, 2
	d := &gateDirectory{limit: 2}
	for i := range 6 {
		d.domains = append(d.domains, api.Domain{Domain: fmt.Sprintf("d%d.example.com", i)})
	}
	enum, err := Enumerate(context.Background(), cfg, d, crawler.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	if len(enum.Kept) != 6 || d.max != 2 {
		t.Errorf("%d mailboxes kept, %d domains listed at once; want 6 and parallelism.domains = 2", len(enum.Kept), d.max)
	}
}
