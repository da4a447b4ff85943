package config

import (
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts/celfilter"
)

// Alerts configures the security-alert poller (the `mimecrawl alerts` command).
// docs/alerts.md describes every key.
type Alerts struct {
	// Sources lists the sources polled, by the names of package alerts' source table, which
	// checks them (alerts.ValidateSources); here only their shape is.
	Sources []string `yaml:"sources"`
	// PollInterval is the pause between two passes of the long-running poller.
	PollInterval Duration `yaml:"poll_interval"`
	// Lookback is how far back a source's first run reads (clamped to what the endpoint keeps).
	Lookback Duration `yaml:"lookback"`
	// Overlap is how far behind its cursor each run re-reads, for late-recorded events.
	Overlap Duration `yaml:"overlap"`
	// Types, Statuses and Routes select alerts by threat type, message status and mail
	// route; empty selects everything. See AlertTypes, AlertStatuses, AlertRoutes.
	Types    []string `yaml:"types"`
	Statuses []string `yaml:"statuses"`
	Routes   []string `yaml:"routes"`
	// Filters are CEL expressions applied after the selections.
	Filters []AlertFilter `yaml:"filters"`
	// Priority maps verdicts to priorities.
	Priority AlertPriority `yaml:"priority"`
	// KeepLow indexes low-priority alerts too.
	KeepLow bool `yaml:"keep_low"`
	// ContentView looks up the detail of messages not yet crawled in the archive.
	ContentView bool `yaml:"content_view"`
	// DetailsURL is a text/template linking an alert to the Mimecast console; "" for none.
	// Validate compiles it once (DetailsTemplate).
	DetailsURL string `yaml:"details_url"`
	// PageSize is the page size asked of the alert endpoints (capped per endpoint).
	PageSize int `yaml:"page_size"`
	// MaxWait bounds how long `alerts --once` lets one API call of a source wait (its
	// quota, its retries); past it the source gives up for the pass (exit 3, cursor intact).
	MaxWait Duration `yaml:"max_wait"`
	// MaxPages bounds the pages of one window (one pass of a SIEM cursor): more end the
	// window unpassed, counted as pages_looped (a server whose tokens never end).
	MaxPages int `yaml:"max_pages"`
	// MaxRecordSize bounds one alert record; a larger one is counted as unusable ("too
	// large") and warned about.
	MaxRecordSize ByteSize `yaml:"max_record_size"`
	// SIEM says how the siem source reads: batch files or the stream, and which event types.
	SIEM AlertsSIEM `yaml:"siem"`
	// StatePath is the poller's own checkpoint file; "" means State.Path + ".alerts"
	// (see Config.AlertsStatePath). It must differ from state.path: bbolt locks a file
	// per process, and the crawl and the poller run at the same time.
	StatePath string `yaml:"state_path"`

	// details is DetailsURL as Validate compiled it; nil before (or for "").
	details *template.Template
}

// DetailsTemplate returns alerts.details_url as Validate compiled it: nil when it is empty or
// the configuration was not validated (then ParseDetailsURL compiles it).
func (a Alerts) DetailsTemplate() *template.Template { return a.details }

// ParseDetailsURL compiles an alerts.details_url template, the one way it is compiled: an
// unknown field is an error when it is rendered, not an empty string.
func ParseDetailsURL(s string) (*template.Template, error) {
	return template.New("details_url").Option("missingkey=error").Parse(s)
}

// AlertsSIEM configures the siem source.
type AlertsSIEM struct {
	// Mode is SIEMBatch (gzip files of /siem/v1/batch/events/cg, 7 days kept) or SIEMStream
	// (/siem/v1/events/cg, near real time, 24 hours kept).
	Mode string `yaml:"mode"`
	// Types are the SIEM event types read; see SIEMTypes.
	Types []string `yaml:"types"`
}

// The modes of alerts.siem.mode.
const (
	SIEMBatch  = "batch"
	SIEMStream = "stream"
)

// SIEMTypes lists the values alerts.siem.types allows: Mimecast's SIEM event types.
func SIEMTypes() []string {
	return []string{"receipt", "process", "delivery", "av", "spam", "internal email protect",
		"impersonation protect", "url protect", "attachment protect", "journal"}
}

// DefaultSIEMTypes are the SIEM event types read by default: those that report threats.
// receipt, process, delivery and journal describe every message.
func DefaultSIEMTypes() []string {
	return []string{"av", "spam", "internal email protect", "impersonation protect", "url protect", "attachment protect"}
}

// AlertFilter is one entry of alerts.filters.
type AlertFilter struct {
	// Expression is a CEL expression of boolean type over alert, raw and source.
	Expression string `yaml:"expression"`
	// Action is "include" or "exclude".
	Action string `yaml:"action"`

	// program is Expression as Validate compiled it; nil before.
	program *celfilter.Program
}

// Program returns the filter's expression as Validate compiled it, so that it is compiled once;
// nil when the configuration was not validated (then celfilter.Compile compiles it).
func (f AlertFilter) Program() *celfilter.Program { return f.program }

// The actions of an AlertFilter.
const (
	FilterInclude = "include"
	FilterExclude = "exclude"
)

// AlertPriority maps verdicts (compared in lower case) to priorities. A verdict listed
// under several levels gets the highest; a verdict listed nowhere is low.
type AlertPriority struct {
	High   []string `yaml:"high"`
	Medium []string `yaml:"medium"`
	Low    []string `yaml:"low"`
}

// Allowed values of the alert selections (the vocabularies of Mimecast's threat feed).
// Functions rather than variables, so no caller can change what is allowed.

// AlertTypes lists the values alerts.types allows.
func AlertTypes() []string { return []string{"malware", "phishing", "spam", "suspicious", "unwanted"} }

// AlertStatuses lists the values alerts.statuses allows.
func AlertStatuses() []string {
	return []string{"blocked", "rejected", "delivered", "held", "bounced", "unknown"}
}

// AlertRoutes lists the values alerts.routes allows.
func AlertRoutes() []string { return []string{"inbound", "outbound", "internal"} }

// Defaults of alerts.max_pages and alerts.max_record_size (package alerts uses the same).
const (
	DefaultAlertsMaxPages      = 100_000
	DefaultAlertsMaxRecordSize = 1 << 20
)

// Limits of the alerts section; docs/alerts.md states the same numbers.
const (
	minAlertsMaxPages      = 10
	maxAlertsMaxPages      = 10_000_000
	minAlertsMaxRecordSize = 64 << 10
	maxAlertsMaxRecordSize = 64 << 20 // the bound of one answer's body
	maxAlertPageSize       = 500      // legacy log endpoints; REST endpoints are capped at 100 by the poller
	maxAlertFilters        = 100
	minPollInterval        = time.Second
	maxAlertsLookback      = 30 * 24 * time.Hour
	maxAlertsOverlap       = 24 * time.Hour
)

// defaultAlerts returns the defaults of the alerts section. SIEM is off by default: most
// of its event types (receipt, delivery, process) describe every message, not threats.
func defaultAlerts() Alerts {
	return Alerts{
		Sources:      []string{"attachment_protection", "url_protection", "impersonation", "dlp", "threats"},
		PollInterval: Duration(5 * time.Minute),
		Lookback:     Duration(24 * time.Hour),
		Overlap:      Duration(10 * time.Minute),
		Filters:      nil,
		Priority: AlertPriority{
			High:   []string{"malicious", "malware", "phishing"},
			Medium: []string{"unsafe", "unknown", "suspicious"},
		},
		PageSize:      100,
		MaxWait:       Duration(10 * time.Minute),
		MaxPages:      DefaultAlertsMaxPages,
		MaxRecordSize: DefaultAlertsMaxRecordSize,
		SIEM:          AlertsSIEM{Mode: SIEMBatch, Types: DefaultSIEMTypes()},
	}
}

// AlertsStatePath returns the alert poller's checkpoint file: alerts.state_path, or
// state.path + ".alerts" when that is empty.
func (c *Config) AlertsStatePath() string {
	if c.Alerts.StatePath != "" {
		return c.Alerts.StatePath
	}
	return c.State.Path + ".alerts"
}

// checkAlerts validates the alerts section, compiling every filter and the details template
// and keeping what it compiled for the poller (AlertFilter.Program, Alerts.DetailsTemplate).
func (c *Config) checkAlerts(k *checker) {
	a := &c.Alerts
	seen := map[string]bool{}
	for i, s := range a.Sources {
		p := fmt.Sprintf("alerts.sources[%d]", i)
		if seen[s] {
			k.add(p, "%s is listed twice; list each source once", quote(s))
		}
		seen[s] = true
		// The names are package alerts' vocabulary (its source table), which imports this
		// package: the command checks them against the table right after loading
		// (alerts.ValidateSources), with the same wording.
		if strings.TrimSpace(s) == "" {
			k.add(p, "is empty; allowed: the name of a source")
		}
	}
	if a.PollInterval < Duration(minPollInterval) {
		k.add("alerts.poll_interval", "%s is out of range; allowed: %s or more", a.PollInterval, Duration(minPollInterval))
	}
	k.durationRange("alerts.lookback", a.Lookback, time.Minute, maxAlertsLookback)
	k.durationRange("alerts.overlap", a.Overlap, 0, maxAlertsOverlap)
	k.selection("alerts.types", a.Types, AlertTypes())
	k.selection("alerts.statuses", a.Statuses, AlertStatuses())
	k.selection("alerts.routes", a.Routes, AlertRoutes())

	if len(a.Filters) > maxAlertFilters {
		k.add("alerts.filters", "has %d filters; allowed: at most %d", len(a.Filters), maxAlertFilters)
	}
	for i := range a.Filters {
		f := &a.Filters[i]
		p := fmt.Sprintf("alerts.filters[%d]", i)
		prg, err := celfilter.Compile(f.Expression)
		if err != nil {
			k.add(p+".expression", "%s", err)
		}
		f.program = prg
		k.oneOf(p+".action", f.Action, []string{FilterInclude, FilterExclude})
	}

	levels := []struct {
		name string
		vs   []string
	}{{"high", a.Priority.High}, {"medium", a.Priority.Medium}, {"low", a.Priority.Low}}
	for _, l := range levels {
		for i, v := range l.vs {
			if strings.TrimSpace(v) == "" {
				k.add(fmt.Sprintf("alerts.priority.%s[%d]", l.name, i), "is empty; allowed: a verdict such as malicious")
			}
		}
	}

	a.details = nil
	if a.DetailsURL != "" {
		t, err := ParseDetailsURL(a.DetailsURL)
		if err != nil {
			k.add("alerts.details_url", "%s is not a valid template: %v; e.g. https://login.mimecast.com/...?id={{.ID}}", quote(a.DetailsURL), err)
		}
		a.details = t
	}
	k.intRange("alerts.page_size", a.PageSize, 1, maxAlertPageSize)
	k.intRange("alerts.max_pages", a.MaxPages, minAlertsMaxPages, maxAlertsMaxPages)
	k.durationRange("alerts.max_wait", a.MaxWait, time.Second, 24*time.Hour)
	if a.MaxRecordSize < minAlertsMaxRecordSize || a.MaxRecordSize > maxAlertsMaxRecordSize {
		k.add("alerts.max_record_size", "%s is out of range; allowed: %s to %s", a.MaxRecordSize, ByteSize(minAlertsMaxRecordSize), ByteSize(maxAlertsMaxRecordSize))
	}
	k.oneOf("alerts.siem.mode", a.SIEM.Mode, []string{SIEMBatch, SIEMStream})
	if len(a.SIEM.Types) == 0 {
		k.add("alerts.siem.types", "is empty; allowed: one or more of %s", strings.Join(SIEMTypes(), ", "))
	}
	k.selection("alerts.siem.types", a.SIEM.Types, SIEMTypes())
	if c.AlertsStatePath() == c.State.Path {
		k.add("alerts.state_path", "%s is the crawl's state file; allowed: another file (the crawl and the poller each lock their own), default state.path + \".alerts\"", quote(a.StatePath))
	}
}

// selection checks a list of names against the allowed values.
func (k *checker) selection(path string, vs, allowed []string) {
	seen := map[string]bool{}
	for i, v := range vs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if seen[v] {
			k.add(p, "%s is listed twice; list each value once", quote(v))
		}
		seen[v] = true
		k.oneOf(p, v, allowed)
	}
}
