package job

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/metrics"
	"github.com/mimecrawl/mimecrawl/state"
)

// notFromAlertsConfig are the poller options that no setting maps to: the poller keeps its own
// (the content lookup's window and candidates, the directory's cache, the clock, the decoder).
var notFromAlertsConfig = map[string]bool{"ContentWindow": true, "ContentCandidates": true, "DirectoryTTL": true, "Now": true, "Normalize": true}

// nonDefaultAlerts is a configuration whose every setting the poller reads differs from its
// default (and from the poller's zero value), so that a setting that does not reach the
// options shows.
func nonDefaultAlerts() *config.Config {
	c := config.Default()
	a := &c.Alerts
	a.Sources = []string{"threats", "siem"}
	a.PollInterval = config.Duration(7 * time.Minute)
	a.Lookback = config.Duration(3 * time.Hour)
	a.Overlap = config.Duration(2 * time.Minute)
	a.PageSize = 42
	a.MaxPages = 9
	a.MaxRecordSize = 12345
	a.MaxWait = config.Duration(90 * time.Second)
	a.Types = []string{"malware"}
	a.Statuses = []string{"held"}
	a.Routes = []string{"inbound"}
	a.SIEM.Types = []string{"av"}
	a.SIEM.Mode = config.SIEMStream
	a.ContentView = true
	a.DetailsURL = "https://console.example/{{.ID}}"
	c.Performance.ShutdownGrace = config.Duration(40 * time.Second)
	return c
}

// TestAlertsOptionsTakesEverySetting: every setting the poller reads reaches the option it
// should, and every poller option is either mapped from a setting or named in
// notFromAlertsConfig: an option added to the poller and forgotten here fails.
func TestAlertsOptionsTakesEverySetting(t *testing.T) {
	c := nonDefaultAlerts()
	o, err := AlertsOptions(c, true, zerolog.New(io.Discard).With().Str("component", "alerts").Logger())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		setting   string
		got, want any
	}{
		{"alerts.sources", o.Sources, []alerts.Source{"threats", "siem"}},
		{"alerts.poll_interval", o.PollInterval, 7 * time.Minute},
		{"alerts.lookback", o.Lookback, 3 * time.Hour},
		{"alerts.overlap", o.Overlap, 2 * time.Minute},
		{"alerts.page_size", o.PageSize, 42},
		{"alerts.max_pages", o.MaxPages, 9},
		{"alerts.max_record_size", o.MaxRecordBytes, 12345},
		{"alerts.max_wait (--once)", o.MaxWait, 90 * time.Second},
		{"alerts.types", o.Types, []string{"malware"}},
		{"alerts.statuses", o.Statuses, []string{"held"}},
		{"alerts.routes", o.Routes, []string{"inbound"}},
		{"alerts.siem.types", o.SIEMTypes, []string{"av"}},
		{"alerts.siem.mode stream", o.SIEMStream, true},
		{"alerts.content_view", o.ContentView, true},
		{"alerts.details_url compiled", o.DetailsURL != nil, true},
		{"performance.shutdown_grace (the acknowledgement part)", o.AckGrace, 30 * time.Second},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: option is %v, want %v", tc.setting, tc.got, tc.want)
		}
	}
	v := reflect.ValueOf(o)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if notFromAlertsConfig[f.Name] || !f.IsExported() || f.Type == reflect.TypeOf(zerolog.Logger{}) {
			continue
		}
		if v.Field(i).IsZero() {
			t.Errorf("alerts.Options.%s is not set from the configuration: map it in AlertsOptions or name it in notFromAlertsConfig", f.Name)
		}
	}
}

// The long-running poller waits as long as the quota asks (no max_wait); a configured overlap
// of 0 means none, not the poller's default; a bad details_url is the configuration's error.
func TestAlertsOptionsEdges(t *testing.T) {
	c := nonDefaultAlerts()
	c.Alerts.Overlap = 0
	o, err := AlertsOptions(c, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxWait != 0 {
		t.Errorf("long-running poller: MaxWait %v, want none", o.MaxWait)
	}
	if o.Overlap != 0 {
		t.Errorf("alerts.overlap 0: option %v, want 0 as is (no overlap, the poller takes it so)", o.Overlap)
	}
	c.Alerts.DetailsURL = "{{.Nope"
	if _, err := AlertsOptions(c, true, zerolog.Nop()); err == nil {
		t.Error("an unparseable alerts.details_url is not an error")
	}
}

// The exit-code rule of the alerts command (README, exit codes).
func TestAlertsExitCodes(t *testing.T) {
	failed := alerts.PassSummary{Sources: []alerts.SourceSummary{{Source: "threats", SourceOutcome: state.SourceOutcome{Error: "timeout"}}}}
	forbidden := alerts.PassSummary{Sources: []alerts.SourceSummary{{Source: "dlp", SourceOutcome: state.SourceOutcome{Forbidden: true}}}}
	for _, tc := range []struct {
		name      string
		got, want Code
	}{
		{"a failed source", passCode(failed), CodePartial},
		{"a 403 source is reported, not failed", passCode(forbidden), CodeOK},
		{"cannot start", startCode(false, true), CodeFatal},
		{"signal while a single pass starts", startCode(true, true), CodePartial},
		{"signal while the poller starts", startCode(true, false), CodeOK},
		{"a single pass interrupted", endCode(CodeOK, true, true), CodePartial},
		{"the poller stopped by its signal", endCode(CodeOK, true, false), CodeOK},
		{"the poller's last pass failed", endCode(CodePartial, true, false), CodePartial},
		{"a single pass done", endCode(CodeOK, false, true), CodeOK},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

// A run that cannot start reports one summary with its error and exits 1; when the signal
// came while it was starting, a single pass is interrupted (3) and the long-running poller
// stopped as asked (0), and neither summary reads as a failure.
func TestAlertsThatCannotStart(t *testing.T) {
	c := config.Default()
	c.Alerts.StatePath = filepath.Join(t.TempDir(), "alerts.db") // no Mimecast credentials: the client cannot be made
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		once  bool
		want  Code
		error string
	}{
		{"no credentials", t.Context(), true, CodeFatal, "ClientID and ClientSecret are required"},
		{"a single pass, signal while starting", canceled, true, CodePartial, "stopped before the first pass"},
		{"the poller, signal while starting", canceled, false, CodeOK, "stopped before the first pass"},
	} {
		var got []*AlertsSummary
		code := Alerts(tc.ctx, Env{Config: c, Log: zerolog.Nop(), Stopping: t.Context()},
			AlertsArgs{Once: tc.once, Metrics: metrics.New(metrics.Options{}), Report: func(s *AlertsSummary) { got = append(got, s) }})
		if code != tc.want || len(got) != 1 || got[0].ExitCode != int(tc.want) || !strings.Contains(got[0].Error, tc.error) {
			t.Errorf("%s: exit %d, summaries %s; want exit %d and one summary saying %q", tc.name, code, errorsOf(got), tc.want, tc.error)
		}
	}
}

func errorsOf(ss []*AlertsSummary) []string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("exit %d: %s", s.ExitCode, s.Error))
	}
	return out
}
