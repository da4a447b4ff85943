package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// secretsInTestdata are the secret values written in testdata; no error may contain one.
var secretsInTestdata = []string{
	"test-secret", "hunter2", "c2VjcmV0LWFwaS1rZXk=", "secret-from-file",
	"es-password-from-file", "es-api-key-from-file",
}

func TestLoadRejectsBadFiles(t *testing.T) {
	cases := []struct {
		file     string
		want     []string // each must appear in the error
		problems int      // lines in the error; 0 means 1
	}{
		{"bad_regex.bad.yml", []string{`testdata/bad_regex.bad.yml:7: mailboxes.include[1]: "([a-z" is not a valid regular expression: missing closing ]`}, 0},
		{"empty_regex.bad.yml", []string{"messages.exclude_subjects[0]", "empty regular expression"}, 0},
		{"bad_date.bad.yml", []string{"messages.start_date", `"2024-13-45" is not a date`, "YYYY-MM-DD"}, 0},
		{"future_date.bad.yml", []string{"messages.start_date", `"2999-01-01" is in the future`}, 0},
		{"early_date.bad.yml", []string{"messages.start_date", `"1969-12-31"`, "1970-01-01 or later"}, 0},
		{"unknown_key_top.bad.yml", []string{"bad.yml:4: mimecats: unknown key", `did you mean "mimecast"`}, 0},
		{"unknown_key_nested.bad.yml", []string{"elasticsearch.bulk.flush_byte: unknown key", `did you mean "flush_bytes"`, "workers, flush_bytes, flush_interval, max_item_retries"}, 0},
		{"duplicate_key.bad.yml", []string{"bad.yml:4: mimecast.client_id: key repeated; it is already set at line 2"}, 0},
		{"secret_and_secret_file.bad.yml", []string{"mimecast.client_secret: is set together with mimecast.client_secret_file", "exactly one"}, 0},
		{"no_secret.bad.yml", []string{"mimecast.client_secret: is required", "client_secret_file", "MIMECRAWL_MIMECAST_CLIENT_SECRET"}, 0},
		{"no_client_id.bad.yml", []string{"mimecast.client_id: is required", "MIMECRAWL_MIMECAST_CLIENT_ID"}, 0},
		{"missing_secret_file.bad.yml", []string{"mimecast.client_secret_file: cannot read the secret file", "testdata/does-not-exist.txt"}, 0},
		{"empty_secret_file.bad.yml", []string{"mimecast.client_secret_file", `"testdata/empty_secret.txt" is empty`}, 0},
		{"secret_not_scalar.bad.yml", []string{"mimecast.client_secret: is a list, want a string"}, 0},
		{"negative_page_size.bad.yml", []string{"performance.page_size: -1 is out of range; allowed: 1 to 500"}, 0},
		{"page_size_501.bad.yml", []string{"performance.page_size: 501 is out of range; allowed: 1 to 500"}, 0},
		{"messages_in_flight_zero.bad.yml", []string{"performance.messages_in_flight: 0 is out of range; allowed: 1 to 100000"}, 0},
		{"page_size_not_int.bad.yml", []string{`performance.page_size: "abc" is not an integer`}, 0},
		{"bad_attachment_text.bad.yml", []string{`attachments.text: "tika" is not allowed; allowed values: crawler, elasticsearch, none`,
			"attachments.max_text_chars: 0 is out of range; allowed: 1 to 100000000", "attachments.text_timeout: 0s is out of range"}, 3},
		{"bad_concurrency.bad.yml", []string{`bad_concurrency.bad.yml:5: performance.concurrency: "auto" is not allowed; allowed values: adaptive, fixed`}, 0},
		{"bad_view.bad.yml", []string{`messages.views[1]: "DRAFTS" is not allowed; allowed values: INBOX, SENT`}, 0},
		{"duplicate_view.bad.yml", []string{`messages.views[2]: "SENT" is listed twice`}, 0},
		{"empty_views.bad.yml", []string{"messages.views: is empty", "INBOX, SENT"}, 0},
		{"bad_trace.bad.yml", []string{`logging.trace: "verbose" is not allowed; allowed values: none, calls, all`}, 0},
		{"bad_level.bad.yml", []string{`logging.level: "fatal" is not allowed; allowed values: trace, debug, info, warn, error`}, 0},
		{"bad_url.bad.yml", []string{`mimecast.base_url: "api.services.mimecast.com"`, "absolute http or https URL", "https://uk-api.services.mimecast.com"}, 0},
		{"bad_url_scheme.bad.yml", []string{`mimecast.base_url: "ftp://api.services.mimecast.com" is not an http or https URL`}, 0},
		{"bad_auth_url.bad.yml", []string{`mimecast.auth_url: "/oauth/token"`, "absolute http or https URL"}, 0},
		{"bad_es_address.bad.yml", []string{`elasticsearch.addresses[0]: "localhost:9200" is not an http or https URL`}, 0},
		{"es_address_with_credentials.bad.yml", []string{`elasticsearch.addresses[0]: "http://elastic:xxxxx@127.0.0.1:9200" contains credentials`}, 0},
		{"empty_es_addresses.bad.yml", []string{"elasticsearch.addresses: is empty"}, 0},
		{"duplicate_es_address.bad.yml", []string{`elasticsearch.addresses[1]: "http://127.0.0.1:9200" is listed twice`}, 0},
		{"bad_index_prefix.bad.yml", []string{`elasticsearch.index_prefix: "Mimecast" contains upper case letters`, "allowed: lowercase"}, 0},
		{"index_prefix_underscore.bad.yml", []string{`elasticsearch.index_prefix: "_mimecast" starts with "_"`}, 0},
		{"index_prefix_comma.bad.yml", []string{`elasticsearch.index_prefix: "mime,cast" contains a forbidden character`}, 0},
		{"namespace_dash.bad.yml", []string{`elasticsearch.namespace: "prod-eu"; allowed: 1 to 100 lowercase letters, digits`}, 0},
		{"username_without_password.bad.yml", []string{`elasticsearch.username: "elastic" has no password`}, 0},
		{"password_without_username.bad.yml", []string{"elasticsearch.password: is set without elasticsearch.username"}, 0},
		{"api_key_with_username.bad.yml", []string{"elasticsearch.api_key: is set together with username/password"}, 0},
		{"password_and_password_file.bad.yml", []string{"elasticsearch.password: is set together with elasticsearch.password_file"}, 0},
		{"api_key_and_api_key_file.bad.yml", []string{"elasticsearch.api_key: is set together with elasticsearch.api_key_file"}, 0},
		{"missing_ca_file.bad.yml", []string{`elasticsearch.ca_file: "testdata/does-not-exist.pem" cannot be used`}, 0},
		{"bad_byte_size.bad.yml", []string{`attachments.max_bytes: "25XB" is not a byte size: unknown unit "XB"`}, 0},
		{"zero_max_bytes.bad.yml", []string{"attachments.max_bytes: 0 is out of range; allowed: greater than 0"}, 0},
		{"flush_bytes_too_small.bad.yml", []string{"elasticsearch.bulk.flush_bytes: 512 is out of range; allowed: 1KB to 100MiB"}, 0},
		{"bad_duration.bad.yml", []string{`logging.stats_interval: "5 minutes" is not a duration`}, 0},
		{"duration_without_unit.bad.yml", []string{`logging.stats_interval: "30" is not a duration: the number 30 has no unit`}, 0},
		{"negative_stats_interval.bad.yml", []string{"logging.stats_interval: -1s is out of range; allowed: 0 (off) or more"}, 0},
		{"auth_token_offset_too_early.bad.yml", []string{"performance.auth_token_offset: -45m is out of range; allowed: -30m to 5m"}, 0},
		{"delta_token_offset_too_late.bad.yml", []string{"performance.delta_token_offset: 2h is out of range; allowed: -30d to 1h"}, 0},
		{"zero_retry_multiplier.bad.yml", []string{"performance.retry_after_multiplier: 0 is out of range"}, 0},
		{"nan_retry_multiplier.bad.yml", []string{"performance.retry_after_multiplier: NaN is out of range"}, 0},
		{"removal_ratio_above_one.bad.yml", []string{"safety.max_mailbox_removal_ratio: 1.5 is out of range; allowed: greater than 0 and at most 1"}, 0},
		{"zero_parallelism.bad.yml", []string{"parallelism.mailboxes: 0 is out of range; allowed: 1 to 64"}, 0},
		{"parallelism_65.bad.yml", []string{"parallelism.mailboxes: 65 is out of range; allowed: 1 to 64"}, 0},
		{"zero_bulk_workers.bad.yml", []string{"elasticsearch.bulk.workers: 0 is out of range"}, 0},
		{"zero_flush_interval.bad.yml", []string{"elasticsearch.bulk.flush_interval: 0s is out of range; allowed: greater than 0"}, 0},
		{"empty_state_path.bad.yml", []string{"state.path: is empty"}, 0},
		{"zero_lock_timeout.bad.yml", []string{"state.lock_timeout: 0s is out of range"}, 0},
		{"message_max_bytes_too_small.bad.yml", []string{"messages.max_bytes: 100KiB is out of range; allowed: 1MiB or more"}, 0},
		{"bad_attachment_memory.bad.yml", []string{"attachments.memory_per_message: 0 is out of range", "attachments.spill_dir: \"testdata/no-such-dir\" cannot be used"}, 2},
		{"bad_bool.bad.yml", []string{`attachments.extract: "maybe" is not true or false`}, 0},
		{"message_detail_not_bool.bad.yml", []string{`messages.detail: "sometimes" is not true or false`}, 0},
		{"section_is_list.bad.yml", []string{"bad.yml:5: domains: is a list, want a mapping of include, include_local"}, 0},
		{"list_is_scalar.bad.yml", []string{"domains.include: is a single value, want a list"}, 0},
		{"not_yaml.bad.yml", []string{"not_yaml.bad.yml:4: not valid YAML: did not find expected"}, 0},
		{"two_documents.bad.yml", []string{"more than one YAML document"}, 0},
		{"top_level_list.bad.yml", []string{"bad.yml:1: is a list, want a mapping of mimecast, domains"}, 0},
		{"alerts_bad_cel.bad.yml", []string{`bad.yml:10: alerts.filters[2].expression: Syntax error: mismatched input '<EOF>'`, "at 1:32"}, 0},
		{"alerts_cel_not_bool.bad.yml", []string{"bad.yml:6: alerts.filters[0].expression: returns dyn, not a bool"}, 0},
		{"alerts_cel_unknown_field.bad.yml", []string{`alerts.filters[0].expression: alert has no field "verdcit"`, "at 1:6"}, 0},
		{"alerts_cel_regex_too_large.bad.yml", []string{"bad.yml:8: alerts.filters[1].expression: the regular expression compiles to 2032 instructions; allowed: at most 1000",
			"bad.yml:10: alerts.filters[2].expression: the pattern of matches must be a string literal"}, 2},
		{"alerts_filter_action.bad.yml", []string{`alerts.filters[0].action: "drop" is not allowed; allowed values: include, exclude`}, 0},
		{"alerts_unknown_type.bad.yml", []string{`alerts.types[1]: "virus" is not allowed; allowed values: malware, phishing, spam, suspicious, unwanted`}, 0},
		{"alerts_unknown_status.bad.yml", []string{`alerts.statuses[0]: "quarantined" is not allowed; allowed values: blocked, rejected, delivered, held, bounced, unknown`}, 0},
		{"alerts_unknown_route.bad.yml", []string{`alerts.routes[1]: "external" is not allowed; allowed values: inbound, outbound, internal`}, 0},
		{"alerts_state_path_is_crawl_state.bad.yml", []string{`alerts.state_path: "/var/lib/mimecrawl/state.db" is the crawl's state file`}, 0},
		{"alerts_priority_not_list.bad.yml", []string{"alerts.priority.high: is a single value, want a list"}, 0},
		{"alerts_bad_details_url.bad.yml", []string{"alerts.details_url", "is not a valid template"}, 0},
		{"alerts_siem_mode.bad.yml", []string{`bad.yml:6: alerts.siem.mode: "realtime" is not allowed; allowed values: batch, stream`}, 0},
		{"alerts_siem_types.bad.yml", []string{`alerts.siem.types[1]: "virus" is not allowed; allowed values: receipt, process, delivery, av, spam`}, 0},
		{"alerts_siem_types_empty.bad.yml", []string{`alerts.siem.types: is empty; allowed: one or more of receipt`}, 0},
		{"alerts_max_record_size.bad.yml", []string{"alerts.max_record_size: 1KiB is out of range; allowed: 64KiB to 64MiB", "alerts.max_pages: 1 is out of range"}, 2},
		{"metrics_bad.bad.yml", []string{
			`metrics.pushgateway_url: "pushgateway:9091"`, "allowed: an absolute http or https URL",
			"metrics.worst_mailboxes: 1000 is out of range; allowed: 0 to 100",
			`logging.format: "xml" is not allowed; allowed values: auto, json, console, ecs`,
		}, 3},
		{"many_problems.bad.yml", []string{
			`bad.yml:2: mimecast.base_url: "not-a-url"`,
			"bad.yml:4: performance.page_size: 0 is out of range",
			`bad.yml:6: logging.trace: "everything" is not allowed`,
			"mimecast.client_id: is required",
			"mimecast.client_secret: is required",
		}, 5},
	}

	// Every bad file must be in the table, so none is silently untested.
	files, err := filepath.Glob("testdata/*.bad.yml")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tc := range cases {
		listed[tc.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no test case", f)
		}
	}

	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.file, ".bad.yml"), func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", tc.file), nil)
			if err == nil {
				t.Fatalf("Load succeeded, want an error; effective config:\n%s", cfg.Redacted())
			}
			if cfg != nil {
				t.Errorf("Load returned a config together with an error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			want := tc.problems
			if want == 0 {
				want = 1
			}
			if got := len(strings.Split(msg, "\n")); got != want {
				t.Errorf("error has %d lines, want %d:\n%s", got, want, msg)
			}
			for _, s := range secretsInTestdata {
				if strings.Contains(msg, s) {
					t.Errorf("error reveals secret %q:\n%s", s, msg)
				}
			}
		})
	}
}

// goodConfig is what testdata/good.yml says.
func goodConfig() *Config {
	c := Default()
	c.Mimecast = Mimecast{
		BaseURL:          "https://uk-api.services.mimecast.com",
		AuthURL:          "https://auth.example.com/oauth/token",
		ClientID:         "good-client",
		ClientSecretFile: "testdata/client_secret.txt",
		RequestTimeout:   Duration(90 * time.Second),
	}
	c.Domains = Domains{Include: []Regexp{MustRegexp(`(?i)example\.com`), MustRegexp(`.*\.example\.org`)}, IncludeLocal: true}
	c.Mailboxes = Mailboxes{
		Include: []Regexp{MustRegexp(`.*@example\.com`)},
		Exclude: []Regexp{MustRegexp(`(?i)journal@.*`), MustRegexp(`no-?reply@.*`)},
	}
	c.Messages = Messages{
		StartDate:       Date{time.Date(2021, 6, 1, 8, 30, 0, 0, time.FixedZone("", 2*60*60))},
		ExcludeSubjects: []Regexp{MustRegexp(`(?i)out of office.*`)},
		BlankSubject:    "[leer]",
		Views:           []string{"SENT"},
		MaxBytes:        150 << 20,
		Detail:          true,
	}
	c.Attachments = Attachments{Extract: true, ExcludeNames: []Regexp{MustRegexp(`.*\.exe`)}, BlankName: "anhang", MaxBytes: 512 << 10,
		MemoryPerMessage: 16 << 20, Text: TextByElasticsearch, MaxTextChars: 50000, TextTimeout: Duration(10 * time.Second)}
	c.Parallelism = Parallelism{Mailboxes: 8, Domains: 4, IndexQueries: 3, MailboxDeletions: 1, Messages: 6}
	c.Logging = Logging{Level: "debug", Format: "ecs", Trace: "all", StatsInterval: 0}
	c.Metrics = Metrics{PushgatewayURL: "http://pushgateway.monitoring:9091", WorstMailboxes: 5, PushTimeout: Duration(3 * time.Second)}
	c.Performance = Performance{
		PageSize:             500,
		RetryAfterMultiplier: 1.5,
		DeltaTokenOffset:     Duration(-48 * time.Hour),
		AuthTokenOffset:      Duration(-5 * time.Minute),
		MaxRetries:           0,
		CheckpointInterval:   Duration(250 * time.Millisecond),
		ShutdownGrace:        Duration(10 * time.Second),
		Concurrency:          ConcurrencyFixed,
		MessagesInFlight:     2000,
	}
	c.Elasticsearch = Elasticsearch{
		Addresses:      []string{"https://es-1.example.com:9200", "https://es-2.example.com:9200/prefix"},
		Username:       "mimecrawl",
		PasswordFile:   "testdata/es_password.txt",
		CAFile:         "testdata/ca.pem",
		IndexPrefix:    "mail.archive-1",
		Namespace:      DefaultNamespace,
		RequestTimeout: Duration(45 * time.Second),
		Bulk: Bulk{Workers: 4, FlushBytes: 10 << 20, FlushInterval: Duration(500 * time.Millisecond), MaxItemRetries: 0,
			Timeout: Duration(3 * time.Minute)},
	}
	c.State = State{Path: "/var/lib/mimecrawl/state.db", LockTimeout: Duration(90 * time.Second)}
	c.Safety = Safety{MaxMailboxRemovalRatio: 1}
	c.Alerts = Alerts{
		Sources:      []string{"attachment_protection", "siem"},
		PollInterval: Duration(time.Minute),
		Lookback:     Duration(48 * time.Hour),
		Overlap:      Duration(30 * time.Minute),
		Types:        []string{"malware", "phishing"},
		Statuses:     []string{"delivered", "held"},
		Routes:       []string{"inbound"},
		Filters: []AlertFilter{
			{Expression: `alert.recipients.exists(r, r.endsWith("@lab.example.com"))`, Action: "exclude"},
			{Expression: "alert.verdict == \"malicious\" ||\n  raw.taggedMalicious == true\n", Action: "include"},
		},
		Priority:      AlertPriority{High: []string{"malicious"}, Medium: []string{"suspicious"}, Low: []string{"clean"}},
		KeepLow:       true,
		ContentView:   true,
		DetailsURL:    "https://console.example.com/track?mid={{.MessageID | urlquery}}",
		PageSize:      250,
		MaxWait:       Duration(10 * time.Minute),
		MaxPages:      DefaultAlertsMaxPages,
		MaxRecordSize: DefaultAlertsMaxRecordSize,
		SIEM:          AlertsSIEM{Mode: SIEMStream, Types: []string{"av", "url protect"}},
		StatePath:     "/var/lib/mimecrawl/alerts.db",
	}
	return c
}

func TestLoadGoodFile(t *testing.T) {
	got, err := Load("testdata/good.yml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := goodConfig().Redacted(); got.Redacted() != want {
		t.Errorf("effective config:\n%s\nwant:\n%s", got.Redacted(), want)
	}
	if got.Messages.StartDate.Equal(goodConfig().Messages.StartDate.Time) == false {
		t.Errorf("start_date = %v", got.Messages.StartDate)
	}
	if s := got.Mimecast.ClientSecret.Reveal(); s != "secret-from-file" {
		t.Errorf("client secret read from file = %q, want the file's content without its newline", s)
	}
	if s := got.Elasticsearch.Password.Reveal(); s != "es-password-from-file" {
		t.Errorf("password read from file = %q, want the file's content without its CRLF", s)
	}
	// A secret read from its file does not count as "both configured".
	if err := got.Validate(); err != nil {
		t.Errorf("Validate of a loaded config: %v", err)
	}
	if !got.Mailboxes.Exclude[0].MatchString("JOURNAL@example.com") || got.Mailboxes.Exclude[0].MatchString("myjournal@example.com") {
		t.Errorf("exclude rule %q does not match whole values case-insensitively", got.Mailboxes.Exclude[0])
	}
}

// TestRoundTrip loads a config, renders it with Redacted and loads the result again: the
// two must be the same, so Redacted shows the effective configuration faithfully.
func TestRoundTrip(t *testing.T) {
	for _, file := range []string{"testdata/good.yml", "../examples/demo.yaml"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			first, err := Load(file, nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			text := first.Redacted()
			second, err := Parse([]byte(text), nil)
			if err != nil {
				t.Fatalf("Parse of Redacted output: %v\n%s", err, text)
			}
			if second.Redacted() != text {
				t.Errorf("round trip changed the config:\n%s\nwant:\n%s", second.Redacted(), text)
			}
			if !reflect.DeepEqual(first.Messages.StartDate.UTC(), second.Messages.StartDate.UTC()) {
				t.Errorf("start_date %v became %v", first.Messages.StartDate, second.Messages.StartDate)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"mimecast.base_url", c.Mimecast.BaseURL, "https://api.services.mimecast.com"},
		{"mimecast.auth_url", c.Mimecast.AuthURL, ""},
		{"mimecast.request_timeout", c.Mimecast.RequestTimeout.D(), 2 * time.Minute},
		{"messages.views", c.Messages.Views, []string{"INBOX", "SENT"}},
		{"messages.blank_subject", c.Messages.BlankSubject, "(no subject)"},
		{"messages.start_date", c.Messages.StartDate.String(), "2000-01-01"},
		{"messages.detail", c.Messages.Detail, false},
		{"attachments.extract", c.Attachments.Extract, false},
		{"attachments.blank_name", c.Attachments.BlankName, "unnamed-attachment"},
		{"attachments.max_bytes", c.Attachments.MaxBytes, ByteSize(25_000_000)},
		{"parallelism.mailboxes", c.Parallelism.Mailboxes, 8},
		{"parallelism.domains", c.Parallelism.Domains, 8},
		{"parallelism.index_queries", c.Parallelism.IndexQueries, 2},
		{"parallelism.mailbox_deletions", c.Parallelism.MailboxDeletions, 2},
		{"parallelism.messages", c.Parallelism.Messages, 8},
		{"logging.level", c.Logging.Level, "info"},
		{"logging.trace", c.Logging.Trace, "none"},
		{"logging.format", c.Logging.Format, "auto"},
		{"metrics.pushgateway_url", c.Metrics.PushgatewayURL, ""},
		{"logging.stats_interval", c.Logging.StatsInterval.D(), 60 * time.Second},
		{"performance.page_size", c.Performance.PageSize, 100},
		{"performance.messages_in_flight", c.Performance.MessagesInFlight, 250},
		{"performance.retry_after_multiplier", c.Performance.RetryAfterMultiplier, 1.0},
		{"performance.delta_token_offset", c.Performance.DeltaTokenOffset.D(), -15 * time.Minute},
		{"performance.auth_token_offset", c.Performance.AuthTokenOffset.D(), -60 * time.Second},
		{"performance.max_retries", c.Performance.MaxRetries, 8},
		{"performance.checkpoint_interval", c.Performance.CheckpointInterval.D(), 5 * time.Second},
		{"performance.shutdown_grace", c.Performance.ShutdownGrace.D(), 30 * time.Second},
		{"performance.concurrency", c.Performance.Concurrency, "adaptive"},
		{"elasticsearch.request_timeout", c.Elasticsearch.RequestTimeout.D(), 30 * time.Second},
		{"elasticsearch.bulk.timeout", c.Elasticsearch.Bulk.Timeout.D(), 2 * time.Minute},
		{"elasticsearch.addresses", c.Elasticsearch.Addresses, []string{"http://127.0.0.1:9200"}},
		{"elasticsearch.index_prefix", c.Elasticsearch.IndexPrefix, "mimecast"},
		{"elasticsearch.bulk.workers", c.Elasticsearch.Bulk.Workers, 2},
		{"elasticsearch.bulk.flush_bytes", c.Elasticsearch.Bulk.FlushBytes, ByteSize(5_000_000)},
		{"elasticsearch.bulk.flush_interval", c.Elasticsearch.Bulk.FlushInterval.D(), time.Second},
		{"elasticsearch.bulk.max_item_retries", c.Elasticsearch.Bulk.MaxItemRetries, 3},
		{"state.path", c.State.Path, "mimecrawl.db"},
		{"state.lock_timeout", c.State.LockTimeout.D(), 5 * time.Second},
		{"safety.max_mailbox_removal_ratio", c.Safety.MaxMailboxRemovalRatio, 0.2},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("default %s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}

	// Default() must be fresh each time: changing one copy leaves the next alone.
	c.Messages.Views[0] = "changed"
	if Default().Messages.Views[0] != "INBOX" {
		t.Error("Default shares its slices between calls")
	}

	// Only the credentials are missing from the defaults.
	err := Default().Validate()
	if err == nil {
		t.Fatal("Validate of Default() succeeded; the client id and secret have no default")
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "mimecast.client_id: ") || !strings.HasPrefix(lines[1], "mimecast.client_secret: ") {
		t.Errorf("Validate of Default() = %v, want exactly the client id and secret", err)
	}

	// A file with the credentials only gives the defaults, with the token URL derived.
	got, err := Parse([]byte("mimecast: {client_id: a, client_secret: b}\n"), nil)
	if err != nil {
		t.Fatalf("Parse of a minimal config: %v", err)
	}
	want := Default()
	want.Mimecast.ClientID, want.Mimecast.ClientSecret = "a", "b"
	want.Mimecast.AuthURL = "https://api.services.mimecast.com/oauth/token"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("minimal config:\n%s\nwant:\n%s", got.Redacted(), want.Redacted())
	}
}

// TestNullKeepsDefault: a key with no value is the same as a key not written.
func TestNullKeepsDefault(t *testing.T) {
	got, err := Parse([]byte(`
mimecast: {client_id: a, client_secret: b}
messages:
  views:
  blank_subject: ~
  start_date: null
performance:
logging:
  level:
`), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	d := Default()
	if !reflect.DeepEqual(got.Messages, d.Messages) || got.Performance != d.Performance || got.Logging != d.Logging {
		t.Errorf("null values changed defaults:\n%s", got.Redacted())
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretFile := write("client-secret", "env-file-secret\n")
	keyFile := write("api-key", "env-file-api-key\r\n")
	missing := filepath.Join(dir, "missing")

	const file = `
mimecast:
  base_url: https://api.services.mimecast.com
  client_id: file-client
  client_secret: file-secret
elasticsearch:
  addresses: [http://file:9200]
`
	cases := []struct {
		name    string
		file    string
		env     map[string]string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{
			name: "no environment keeps the file",
			file: file,
			check: func(t *testing.T, c *Config) {
				if c.Mimecast.ClientID != "file-client" || c.Mimecast.ClientSecret.Reveal() != "file-secret" {
					t.Errorf("got %q/%q", c.Mimecast.ClientID, c.Mimecast.ClientSecret.Reveal())
				}
			},
		},
		{
			name: "values override the file",
			file: file,
			env: map[string]string{
				EnvMimecastClientID:       "env-client",
				EnvMimecastClientSecret:   "env-secret",
				EnvMimecastBaseURL:        "https://us-api.services.mimecast.com/",
				EnvElasticsearchAddresses: " http://a:9200, ,http://b:9200 ",
				EnvElasticsearchAPIKey:    "env-api-key",
			},
			check: func(t *testing.T, c *Config) {
				m := c.Mimecast
				if m.ClientID != "env-client" || m.ClientSecret.Reveal() != "env-secret" {
					t.Errorf("client = %q/%q", m.ClientID, m.ClientSecret.Reveal())
				}
				if m.BaseURL != "https://us-api.services.mimecast.com" || m.AuthURL != "https://us-api.services.mimecast.com/oauth/token" {
					t.Errorf("base/auth URL = %q %q; the auth URL must follow the overridden base URL", m.BaseURL, m.AuthURL)
				}
				if !reflect.DeepEqual(c.Elasticsearch.Addresses, []string{"http://a:9200", "http://b:9200"}) {
					t.Errorf("addresses = %q", c.Elasticsearch.Addresses)
				}
				if c.Elasticsearch.APIKey.Reveal() != "env-api-key" {
					t.Errorf("api key = %q", c.Elasticsearch.APIKey.Reveal())
				}
			},
		},
		{
			name: "a _FILE variable replaces the secret in the file",
			file: file,
			env:  map[string]string{EnvMimecastClientSecretFile: secretFile, EnvElasticsearchAPIKeyFile: keyFile},
			check: func(t *testing.T, c *Config) {
				if got := c.Mimecast.ClientSecret.Reveal(); got != "env-file-secret" {
					t.Errorf("client secret = %q, want the file's content without its newline", got)
				}
				if c.Mimecast.ClientSecretFile != secretFile {
					t.Errorf("client_secret_file = %q", c.Mimecast.ClientSecretFile)
				}
				if got := c.Elasticsearch.APIKey.Reveal(); got != "env-file-api-key" {
					t.Errorf("api key = %q, want the file's content without its CRLF", got)
				}
				if strings.Contains(c.Redacted(), "env-file-") || !strings.Contains(c.Redacted(), secretFile) {
					t.Errorf("Redacted must name the secret file and not its content:\n%s", c.Redacted())
				}
			},
		},
		{
			name: "a value variable replaces the secret file in the file",
			file: "mimecast: {client_id: a, client_secret_file: /nonexistent/secret}\n",
			env:  map[string]string{EnvMimecastClientSecret: "env-secret"},
			check: func(t *testing.T, c *Config) {
				if c.Mimecast.ClientSecret.Reveal() != "env-secret" || c.Mimecast.ClientSecretFile != "" {
					t.Errorf("client secret %q, file %q", c.Mimecast.ClientSecret.Reveal(), c.Mimecast.ClientSecretFile)
				}
			},
		},
		{
			name:    "both variables of a pair",
			file:    file,
			env:     map[string]string{EnvMimecastClientSecret: "env-secret", EnvMimecastClientSecretFile: secretFile},
			wantErr: []string{"mimecast.client_secret: both MIMECRAWL_MIMECAST_CLIENT_SECRET and MIMECRAWL_MIMECAST_CLIENT_SECRET_FILE are set"},
		},
		{
			name:    "unreadable _FILE names the variable and the path",
			file:    file,
			env:     map[string]string{EnvElasticsearchPassFile: missing, EnvMimecastClientSecret: "env-secret"},
			wantErr: []string{"elasticsearch.password_file (from MIMECRAWL_ELASTICSEARCH_PASSWORD_FILE): cannot read the secret file", missing},
		},
		{
			name:    "a bad value from the environment names the variable",
			file:    file,
			env:     map[string]string{EnvMimecastBaseURL: "api.services.mimecast.com", EnvElasticsearchAddresses: "http://ok:9200,bad"},
			wantErr: []string{"mimecast.base_url (from MIMECRAWL_MIMECAST_BASE_URL): \"api.services.mimecast.com\"", "elasticsearch.addresses[1] (from MIMECRAWL_ELASTICSEARCH_ADDRESSES): \"bad\""},
		},
		{
			name:    "the client id may come from the environment alone",
			file:    "mimecast: {client_secret: s}\n",
			env:     map[string]string{EnvMimecastClientID: "env-client"},
			check:   func(t *testing.T, c *Config) {},
			wantErr: nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.file), func(k string) string { return tc.env[k] })
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse succeeded, want an error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not contain %q:\n%v", w, err)
					}
				}
				for _, s := range []string{"env-secret", "env-file-secret", "file-secret"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error reveals %q: %v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, c)
		})
	}
}

// TestSecretsNeverPrinted sets every secret to a recognisable value and prints the
// config and the secrets in every way a program might.
func TestSecretsNeverPrinted(t *testing.T) {
	const (
		clientSecret = "CLIENT-SECRET-VALUE"
		password     = "ES-PASSWORD-VALUE"
		apiKey       = "ES-API-KEY-VALUE"
	)
	c := Default()
	c.Mimecast.ClientID = "id"
	c.Mimecast.ClientSecret = clientSecret
	c.Elasticsearch.Password = password
	c.Elasticsearch.APIKey = apiKey // with username unset and a password: invalid on purpose

	jsonOut, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	yamlOut, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	secret := Secret(clientSecret)
	outputs := map[string]string{
		"%v config":        fmt.Sprintf("%v", c),
		"%+v config":       fmt.Sprintf("%+v", c),
		"%#v config":       fmt.Sprintf("%#v", c),
		"%v *config":       fmt.Sprintf("%v", *c),
		"%+v mimecast":     fmt.Sprintf("%+v", c.Mimecast),
		"%#v mimecast":     fmt.Sprintf("%#v", c.Mimecast),
		"%v secret":        fmt.Sprintf("%v", secret),
		"%s secret":        fmt.Sprintf("%s", secret),
		"%q secret":        fmt.Sprintf("%q", secret),
		"%#v secret":       fmt.Sprintf("%#v", secret),
		"%x secret":        fmt.Sprintf("%x", secret),
		"%10.3s secret":    fmt.Sprintf("%10.3s", secret),
		"Println secret":   fmt.Sprintln(secret, &secret),
		"String secret":    secret.String(),
		"json config":      string(jsonOut),
		"yaml config":      string(yamlOut),
		"Redacted":         c.Redacted(),
		"Validate error":   fmt.Sprint(c.Validate()),
		"json secret only": func() string { b, _ := json.Marshal(secret); return string(b) }(),
	}
	for name, out := range outputs {
		for _, s := range []string{clientSecret, password, apiKey} {
			if strings.Contains(out, s) {
				t.Errorf("%s reveals %q:\n%s", name, s, out)
			}
		}
	}
	var decoded map[string]map[string]any
	if err := json.Unmarshal(jsonOut, &decoded); err != nil {
		t.Fatal(err)
	}
	if got := decoded["Mimecast"]["ClientSecret"]; got != "<secret>" {
		t.Errorf("json of the config has client secret %q, want <secret>", got)
	}
	for _, name := range []string{"%v secret", "%s secret", "String secret", "Redacted", "yaml config"} {
		if !strings.Contains(outputs[name], "<secret>") {
			t.Errorf("%s does not show <secret>:\n%s", name, outputs[name])
		}
	}
	if secret.Reveal() != clientSecret {
		t.Errorf("Reveal = %q", secret.Reveal())
	}
	if got := fmt.Sprintf("%v|%s", Secret(""), Secret("")); got != "|" {
		t.Errorf("empty secret prints %q, want nothing", got)
	}

	// Secrets in a file that fails to load stay hidden too, wherever the mistake is.
	for _, doc := range []string{
		"mimecast: {client_id: a, client_secret: {nested: " + clientSecret + "}}\n",
		"elasticsearch: {password: [" + password + "]}\n",
		"elasticsearch: {api_key: " + apiKey + ", api_key_file: /x, username: u}\n",
		"elasticsearch: {addresses: [\"http://u:" + password + "@h:9200\"]}\n",
		"elasticsearch: {addresses: [\"http://u:" + password + "@h:9200/%zz\"]}\n",
	} {
		_, err := Parse([]byte(doc), nil)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", doc)
			continue
		}
		for _, s := range []string{clientSecret, password, apiKey} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("Parse error reveals %q:\n%v", s, err)
			}
		}
	}
}

func TestExamplesLoad(t *testing.T) {
	t.Run("demo", func(t *testing.T) {
		c, err := Load("../examples/demo.yaml", nil)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if c.Mimecast.BaseURL != "http://127.0.0.1:8089" || c.Mimecast.AuthURL != "http://127.0.0.1:8089/oauth/token" ||
			c.Mimecast.ClientID != "demo-client" || c.Mimecast.ClientSecret.Reveal() != "demo-secret" {
			t.Errorf("mimecast section: %+v", c.Mimecast)
		}
		if c.Elasticsearch.IndexPrefix != "mimecast-demo" || !c.Attachments.Extract || c.State.Path != ".cache/demo/mimecrawl.db" ||
			c.Logging.Trace != "none" || c.Messages.StartDate.String() != "2025-01-01" {
			t.Errorf("demo config:\n%s", c.Redacted())
		}
		if _, excluded := MatchAny(c.Mailboxes.Exclude, "Journal@example.com"); !excluded {
			t.Errorf("demo exclude rules %v do not exclude the journal mailbox", c.Mailboxes.Exclude)
		}
	})
	t.Run("production", func(t *testing.T) {
		dir := t.TempDir()
		secret := filepath.Join(dir, "client-secret")
		key := filepath.Join(dir, "api-key")
		for p, v := range map[string]string{secret: "prod-secret\n", key: "prod-key\n"} {
			if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		env := map[string]string{
			EnvMimecastClientID:         "prod-client",
			EnvMimecastClientSecretFile: secret,
			EnvElasticsearchAPIKeyFile:  key,
		}
		c, err := Load("../examples/production.yaml", func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if c.Mimecast.ClientSecret.Reveal() != "prod-secret" || c.Elasticsearch.APIKey.Reveal() != "prod-key" {
			t.Errorf("secrets were not read from the files named in the environment")
		}
		if c.Elasticsearch.Username != "" || len(c.Elasticsearch.Addresses) != 2 {
			t.Errorf("elasticsearch section:\n%s", c.Redacted())
		}

		// Without the environment the file names secret files that do not exist here,
		// and says so for each one.
		_, err = Load("../examples/production.yaml", nil)
		if err == nil {
			t.Fatal("Load without the environment succeeded")
		}
		for _, w := range []string{"mimecast.client_id: is required", "mimecast.client_secret_file: cannot read", "elasticsearch.api_key_file: cannot read"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not contain %q:\n%v", w, err)
			}
		}
	})
}

func TestValidateHandBuiltConfig(t *testing.T) {
	c := Default()
	c.Mimecast.ClientID = "id"
	c.Mimecast.ClientSecret = "s"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := c.Mimecast.TokenURL(); got != "https://api.services.mimecast.com/oauth/token" {
		t.Errorf("TokenURL = %q", got)
	}
	c.Mimecast.ClientSecretFile = "/run/secrets/x"
	c.Performance.PageSize = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate succeeded with both secret and secret file set by hand")
	}
	for _, w := range []string{"mimecast.client_secret: is set together with mimecast.client_secret_file", "performance.page_size: 0 is out of range"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
	c = Default()
	c.Mimecast.ClientID, c.Mimecast.ClientSecret = "id", "s"
	c.Domains.Include = []Regexp{{}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "domains.include[0]: is an empty rule") {
		t.Errorf("Validate of a zero Regexp = %v", err)
	}
}

func TestStartDateJudgedAgainstNow(t *testing.T) {
	c := Default()
	c.Mimecast.ClientID, c.Mimecast.ClientSecret = "id", "s"
	c.Messages.StartDate = Date{time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)}
	if ps := c.check(time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)); len(ps) != 0 {
		t.Errorf("start date equal to now rejected: %v", ps)
	}
	ps := c.check(time.Date(2030, 1, 1, 23, 59, 0, 0, time.UTC))
	if len(ps) != 1 || ps[0].path != "messages.start_date" {
		t.Errorf("start date after now: %v", ps)
	}
}

// parallelism.domains has a key of its own, so that parallelism.mailboxes means one thing; not
// given, it is parallelism.mailboxes, as the domains listed at once were before it had a key.
func TestParallelismDomainsFollowsMailboxesUnlessGiven(t *testing.T) {
	const creds = "mimecast:\n  client_id: x\n  client_secret: y\n"
	for _, tc := range []struct {
		name, yaml string
		want       int
	}{
		{"neither", "", 8},
		{"mailboxes only", "parallelism:\n  mailboxes: 3\n", 3},
		{"domains given", "parallelism:\n  mailboxes: 3\n  domains: 5\n", 5},
		{"domains null", "parallelism:\n  mailboxes: 3\n  domains: ~\n", 3},
	} {
		c, err := Parse([]byte(creds+tc.yaml), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Parallelism.Domains != tc.want {
			t.Errorf("%s: parallelism.domains %d, want %d", tc.name, c.Parallelism.Domains, tc.want)
		}
	}
	if _, err := Parse([]byte(creds+"parallelism:\n  domains: 0\n"), nil); err == nil || !strings.Contains(err.Error(), "parallelism.domains: 0 is out of range") {
		t.Errorf("domains 0: %v", err)
	}
}
