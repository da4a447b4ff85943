package config

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
)

// Allowed values of the enumerated settings, in the order the documentation lists them.
// Functions rather than variables, so no caller can change what is allowed.
func views() []string       { return []string{"INBOX", "SENT"} }
func logLevels() []string   { return []string{"trace", "debug", "info", "warn", "error"} }
func traceLevels() []string { return []string{"none", "calls", "all"} }
func logFormats() []string  { return []string{"auto", "json", "console", "ecs"} }

// Limits enforced by Validate; docs/configuration.md states the same numbers.
const (
	maxPageSize    = 500 // the largest page the legacy endpoints are known to honour
	maxParallelism = 64
	// maxTextChars bounds attachments.max_text_chars: 100 million characters (up to 400 MB of
	// UTF-8) is already far beyond what one document should hold.
	maxTextChars  = 100_000_000
	maxRetries    = 100
	maxMultiplier = 100.0
	minFlushBytes = ByteSize(1000)
	// maxFlushBytes stays under Elasticsearch's default http.max_content_length (100mb).
	maxFlushBytes     = ByteSize(100 << 20)
	maxIndexPrefix    = 100 // bytes; leaves room below the 255-byte index name limit
	minDeltaOffset    = -30 * 24 * time.Hour
	maxDeltaOffset    = time.Hour
	minAuthOffset     = -30 * time.Minute // tokens live about 30 minutes
	maxAuthOffset     = 5 * time.Minute
	maxRequestTimeout = time.Hour
	// minMessageBytes keeps messages.max_bytes above what ordinary mail needs.
	minMessageBytes  = ByteSize(1 << 20)
	maxShutdownGrace = 10 * time.Minute
	// maxWorstMailboxes bounds the label set of the worst-lag series.
	maxWorstMailboxes = 100
)

// earliestStartDate is the Unix epoch: the archive holds nothing older, and an earlier
// date is a typo.
var earliestStartDate = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// Validate checks every setting and the rules between settings and returns all problems
// at once (errors.Join), each naming the key path, the value and what is allowed.
// Secret values are never included. Load and Parse call it; code that builds or changes
// a Config by hand should call it too.
func (c *Config) Validate() error {
	ps := c.check(time.Now())
	if len(ps) == 0 {
		return nil
	}
	return formatProblems(ps, nil, "")
}

type checker struct{ ps []problem }

func (k *checker) add(path, format string, args ...any) {
	k.ps = append(k.ps, problem{path: path, msg: fmt.Sprintf(format, args...)})
}

func (k *checker) intRange(path string, v, lo, hi int) {
	if v < lo || v > hi {
		k.add(path, "%d is out of range; allowed: %d to %d", v, lo, hi)
	}
}

func (k *checker) durationRange(path string, v Duration, lo, hi time.Duration) {
	if v.D() < lo || v.D() > hi {
		k.add(path, "%s is out of range; allowed: %s to %s", v, Duration(lo), Duration(hi))
	}
}

func (k *checker) positiveDuration(path string, v Duration) {
	if v <= 0 {
		k.add(path, "%s is out of range; allowed: greater than 0, e.g. 5s", v)
	}
}

func (k *checker) oneOf(path, v string, allowed []string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	k.add(path, "%s is not allowed; allowed values: %s", quote(v), strings.Join(allowed, ", "))
}

// listSize bounds a list, for a Config not built by Load (whose decoder refuses long lists
// before decoding them).
func (k *checker) listSize(path string, n int) {
	if n > MaxListEntries {
		k.add(path, "has %d entries; the limit is %d", n, MaxListEntries)
	}
}

func (k *checker) rules(path string, rs []Regexp) {
	k.listSize(path, len(rs))
	total := 0
	for _, r := range rs {
		if r.Regexp != nil {
			total += len(r.String())
		}
	}
	if total > MaxRegexBytes {
		k.add(path, "the regular expressions total %d bytes; the limit is %d bytes", total, MaxRegexBytes)
	}
	for i, r := range rs {
		if r.Regexp == nil {
			k.add(fmt.Sprintf("%s[%d]", path, i), "is an empty rule; write a regular expression")
		}
	}
}

func (k *checker) httpURL(path, raw string, hint string) {
	if why := httpURLProblem(raw); why != "" {
		k.add(path, "%s %s; allowed: an absolute http or https URL%s", quote(redactURL(raw)), why, hint)
	}
}

// check returns every problem with c, judging dates against now.
func (c *Config) check(now time.Time) []problem {
	k := &checker{}
	c.checkMimecast(k)

	k.rules("domains.include", c.Domains.Include)
	k.rules("mailboxes.include", c.Mailboxes.Include)
	k.rules("mailboxes.exclude", c.Mailboxes.Exclude)

	m := c.Messages
	switch {
	case m.StartDate.IsZero():
		k.add("messages.start_date", "is required; write YYYY-MM-DD, e.g. 2000-01-01 for everything")
	case m.StartDate.Before(earliestStartDate):
		k.add("messages.start_date", "%s is too early; allowed: 1970-01-01 or later", quote(m.StartDate.String()))
	case m.StartDate.After(now):
		k.add("messages.start_date", "%s is in the future; allowed: a date up to today (%s)", quote(m.StartDate.String()), now.UTC().Format(time.DateOnly))
	}
	k.rules("messages.exclude_subjects", m.ExcludeSubjects)
	k.listSize("messages.views", len(m.Views))
	if len(m.Views) == 0 {
		k.add("messages.views", "is empty; allowed: one or both of %s", strings.Join(views(), ", "))
	}
	seenView := map[string]bool{}
	for i, v := range m.Views {
		p := fmt.Sprintf("messages.views[%d]", i)
		if seenView[v] {
			k.add(p, "%s is listed twice; list each view once", quote(v))
		}
		seenView[v] = true
		k.oneOf(p, v, views())
	}

	if m.MaxBytes < minMessageBytes {
		k.add("messages.max_bytes", "%s is out of range; allowed: %s or more, e.g. 150MiB", m.MaxBytes, minMessageBytes)
	}

	a := c.Attachments
	k.rules("attachments.exclude_names", a.ExcludeNames)
	if a.MaxBytes <= 0 {
		k.add("attachments.max_bytes", "%s is out of range; allowed: greater than 0, e.g. 25MB", a.MaxBytes)
	}
	if a.MemoryPerMessage <= 0 {
		k.add("attachments.memory_per_message", "%s is out of range; allowed: greater than 0, e.g. 16MiB", a.MemoryPerMessage)
	}
	k.oneOf("attachments.text", a.Text, textSources())
	k.intRange("attachments.max_text_chars", a.MaxTextChars, 1, maxTextChars)
	k.durationRange("attachments.text_timeout", a.TextTimeout, time.Second, time.Hour)
	if a.SpillDir != "" {
		if fi, err := os.Stat(a.SpillDir); err != nil {
			k.add("attachments.spill_dir", "%s cannot be used: %v; allowed: an existing directory, or empty for the system's temporary directory", quote(a.SpillDir), err)
		} else if !fi.IsDir() {
			k.add("attachments.spill_dir", "%s is not a directory; allowed: an existing directory, or empty for the system's temporary directory", quote(a.SpillDir))
		}
	}

	k.intRange("parallelism.mailboxes", c.Parallelism.Mailboxes, 1, maxParallelism)
	k.intRange("parallelism.domains", c.Parallelism.Domains, 1, maxParallelism)
	k.intRange("parallelism.index_queries", c.Parallelism.IndexQueries, 1, maxParallelism)
	k.intRange("parallelism.mailbox_deletions", c.Parallelism.MailboxDeletions, 1, maxParallelism)
	k.intRange("parallelism.messages", c.Parallelism.Messages, 1, maxParallelism)

	k.oneOf("logging.level", c.Logging.Level, logLevels())
	k.oneOf("logging.format", c.Logging.Format, logFormats())
	k.oneOf("logging.trace", c.Logging.Trace, traceLevels())
	if c.Metrics.PushgatewayURL != "" {
		k.httpURL("metrics.pushgateway_url", c.Metrics.PushgatewayURL, ", e.g. http://pushgateway.monitoring:9091")
	}
	k.intRange("metrics.worst_mailboxes", c.Metrics.WorstMailboxes, 0, maxWorstMailboxes)
	k.durationRange("metrics.push_timeout", c.Metrics.PushTimeout, time.Second, maxRequestTimeout)
	if c.Logging.StatsInterval < 0 {
		k.add("logging.stats_interval", "%s is out of range; allowed: 0 (off) or more", c.Logging.StatsInterval)
	}

	p := c.Performance
	k.intRange("performance.page_size", p.PageSize, 1, maxPageSize)
	k.intRange("performance.messages_in_flight", p.MessagesInFlight, 1, 100_000)
	if r := p.RetryAfterMultiplier; math.IsNaN(r) || r <= 0 || r > maxMultiplier {
		k.add("performance.retry_after_multiplier", "%s is out of range; allowed: greater than 0 and at most %g (1 waits exactly as long as the server asks)",
			strconv.FormatFloat(r, 'g', -1, 64), maxMultiplier)
	}
	k.durationRange("performance.delta_token_offset", p.DeltaTokenOffset, minDeltaOffset, maxDeltaOffset)
	k.durationRange("performance.auth_token_offset", p.AuthTokenOffset, minAuthOffset, maxAuthOffset)
	k.intRange("performance.max_retries", p.MaxRetries, 0, maxRetries)
	k.positiveDuration("performance.checkpoint_interval", p.CheckpointInterval)
	k.durationRange("performance.shutdown_grace", p.ShutdownGrace, time.Millisecond, maxShutdownGrace)
	k.oneOf("performance.concurrency", p.Concurrency, concurrencyModes())

	c.checkElasticsearch(k)

	if c.State.Path == "" {
		k.add("state.path", "is empty; allowed: a file path, e.g. mimecrawl.db")
	}
	k.positiveDuration("state.lock_timeout", c.State.LockTimeout)

	if r := c.Safety.MaxMailboxRemovalRatio; math.IsNaN(r) || r <= 0 || r > 1 {
		k.add("safety.max_mailbox_removal_ratio", "%s is out of range; allowed: greater than 0 and at most 1 (1 = no limit)",
			strconv.FormatFloat(r, 'g', -1, 64))
	}
	c.checkAlerts(k)
	return k.ps
}

func (c *Config) checkMimecast(k *checker) {
	m := c.Mimecast
	const regions = " such as https://api.services.mimecast.com (global), https://us-api.services.mimecast.com or https://uk-api.services.mimecast.com"
	k.httpURL("mimecast.base_url", m.BaseURL, regions)
	if m.AuthURL != "" {
		k.httpURL("mimecast.auth_url", m.AuthURL, ", e.g. "+DefaultBaseURL+"/oauth/token")
	}
	if m.ClientID == "" {
		k.add("mimecast.client_id", "is required; set it here or in %s", EnvMimecastClientID)
	}
	switch {
	case m.ClientSecret != "" && m.ClientSecretFile != "" && !m.clientSecretRead:
		k.add("mimecast.client_secret", "is set together with mimecast.client_secret_file; allowed: exactly one of them")
	case m.ClientSecret == "" && m.ClientSecretFile == "":
		k.add("mimecast.client_secret", "is required; set exactly one of client_secret or client_secret_file (or %s or %s)",
			EnvMimecastClientSecret, EnvMimecastClientSecretFile)
	}
	k.durationRange("mimecast.request_timeout", m.RequestTimeout, time.Millisecond, maxRequestTimeout)
}

func (c *Config) checkElasticsearch(k *checker) {
	e := c.Elasticsearch
	if len(e.Addresses) == 0 {
		k.add("elasticsearch.addresses", "is empty; allowed: one or more http or https URLs, e.g. http://127.0.0.1:9200")
	}
	k.listSize("elasticsearch.addresses", len(e.Addresses))
	seen := map[string]bool{}
	for i, a := range e.Addresses {
		p := fmt.Sprintf("elasticsearch.addresses[%d]", i)
		k.httpURL(p, a, ", e.g. http://127.0.0.1:9200 (credentials go in username/password or api_key)")
		if seen[a] {
			k.add(p, "%s is listed twice; list each address once", quote(redactURL(a)))
		}
		seen[a] = true
	}

	if e.Password != "" && e.PasswordFile != "" && !e.passwordRead {
		k.add("elasticsearch.password", "is set together with elasticsearch.password_file; allowed: at most one of them")
	}
	if e.APIKey != "" && e.APIKeyFile != "" && !e.apiKeyRead {
		k.add("elasticsearch.api_key", "is set together with elasticsearch.api_key_file; allowed: at most one of them")
	}
	hasPassword := e.Password != "" || e.PasswordFile != ""
	hasKey := e.APIKey != "" || e.APIKeyFile != ""
	switch {
	case hasKey && (e.Username != "" || hasPassword):
		k.add("elasticsearch.api_key", "is set together with username/password; allowed: either an API key or a username and password")
	case e.Username != "" && !hasPassword:
		k.add("elasticsearch.username", "%s has no password; set elasticsearch.password or password_file (or %s)", quote(e.Username), EnvElasticsearchPassword)
	case hasPassword && e.Username == "":
		k.add("elasticsearch.password", "is set without elasticsearch.username; set both or neither")
	}

	if e.CAFile != "" {
		if fi, err := os.Stat(e.CAFile); err != nil {
			k.add("elasticsearch.ca_file", "%s cannot be used: %v; allowed: a readable PEM file", quote(e.CAFile), err)
		} else if fi.IsDir() {
			k.add("elasticsearch.ca_file", "%s is a directory; allowed: a readable PEM file", quote(e.CAFile))
		}
	}
	c.checkElasticsearchTLS(k)
	if why := indexPrefixProblem(e.IndexPrefix); why != "" {
		k.add("elasticsearch.index_prefix", "%s %s; allowed: lowercase, at most %d bytes, none of \\ / * ? \" < > | , # : or space, not starting with _ - +",
			quote(e.IndexPrefix), why, maxIndexPrefix)
	}
	if !index.ValidNamespace.MatchString(e.Namespace) {
		k.add("elasticsearch.namespace", "%s; allowed: 1 to 100 lowercase letters, digits, '.' or '_' (no '-', which separates the parts of a data stream's name)", quote(e.Namespace))
	}

	if e.Shards != nil {
		k.intRange("elasticsearch.shards", *e.Shards, 1, 1024)
	}
	if e.Replicas != nil {
		k.intRange("elasticsearch.replicas", *e.Replicas, 0, 32)
	}

	b := e.Bulk
	k.intRange("elasticsearch.bulk.workers", b.Workers, 1, maxParallelism)
	if b.FlushBytes < minFlushBytes || b.FlushBytes > maxFlushBytes {
		k.add("elasticsearch.bulk.flush_bytes", "%s is out of range; allowed: %s to %s", b.FlushBytes, minFlushBytes, maxFlushBytes)
	}
	k.positiveDuration("elasticsearch.bulk.flush_interval", b.FlushInterval)
	k.intRange("elasticsearch.bulk.max_item_retries", b.MaxItemRetries, 0, maxRetries)
	k.durationRange("elasticsearch.request_timeout", e.RequestTimeout, time.Millisecond, maxRequestTimeout)
	k.durationRange("elasticsearch.bulk.timeout", b.Timeout, time.Millisecond, maxRequestTimeout)
}

// httpURLProblem says what is wrong with raw as an absolute http(s) URL, or "".
func httpURLProblem(raw string) string {
	if raw == "" {
		return "is empty"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "is not an http or https URL"
	case u.Host == "" || u.Hostname() == "":
		return "has no host"
	case u.User != nil:
		return "contains credentials"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "has a query or fragment"
	}
	return ""
}

// redactURL hides a password embedded in a URL before it goes into an error.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		return "xxxxx" + raw[i:]
	}
	return raw
}

// indexPrefixProblem applies Elasticsearch's index name rules to a prefix.
func indexPrefixProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxIndexPrefix:
		return "is too long"
	case strings.ToLower(s) != s:
		return "contains upper case letters"
	case strings.ContainsAny(s, "\\/*?\"<>|, #:"):
		return "contains a forbidden character"
	case strings.ContainsAny(s[:1], "_-+"):
		return "starts with " + quote(s[:1])
	case s == "." || s == "..":
		return "is not a name"
	}
	return ""
}
