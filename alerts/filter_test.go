package alerts

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts/celfilter"
	"github.com/mimecrawl/mimecrawl/config"
)

func baseAlert() Alert {
	return Alert{
		Source: URLProtection, ID: "x", Time: time.Date(2024, 3, 1, 11, 0, 0, 0, time.UTC),
		Verdict: "malicious", Type: "phishing", Status: "blocked", Route: "inbound", Action: "block",
		Sender: "x@evil.example", Recipients: []string{"a@corp.example"}, URL: "http://phish.example/a",
		Raw: map[string]any{"taggedMalicious": true},
	}
}

func rulesFor(t *testing.T, mod func(*config.Alerts)) *Rules {
	t.Helper()
	c := config.Default().Alerts
	if mod != nil {
		mod(&c)
	}
	r, err := NewRules(c)
	if err != nil {
		t.Fatalf("NewRules: %v", err)
	}
	return r
}

func TestDecide(t *testing.T) {
	inc := func(e string) config.AlertFilter { return config.AlertFilter{Expression: e, Action: "include"} }
	exc := func(e string) config.AlertFilter { return config.AlertFilter{Expression: e, Action: "exclude"} }
	tests := []struct {
		name  string
		cfg   func(*config.Alerts)
		alert func(*Alert)
		want  Decision
	}{
		{"defaults keep a malicious alert", nil, nil, Decision{Keep: true}},
		{"low dropped by default", nil, func(a *Alert) { a.Verdict = "clean" }, Decision{Reason: "low"}},
		{"low kept with keep_low", func(c *config.Alerts) { c.KeepLow = true }, func(a *Alert) { a.Verdict = "clean" }, Decision{Keep: true}},
		{"type not selected", func(c *config.Alerts) { c.Types = []string{"malware"} }, nil, Decision{Reason: "type"}},
		{"type selected", func(c *config.Alerts) { c.Types = []string{"malware", "phishing"} }, nil, Decision{Keep: true}},
		{"type outside the vocabulary passes", func(c *config.Alerts) { c.Types = []string{"malware"} },
			func(a *Alert) { a.Type = "Phishing & Fraud" }, Decision{Keep: true}},
		{"empty type passes", func(c *config.Alerts) { c.Types = []string{"malware"} }, func(a *Alert) { a.Type = "" }, Decision{Keep: true}},
		{"status not selected", func(c *config.Alerts) { c.Statuses = []string{"delivered"} }, nil, Decision{Reason: "status"}},
		{"status compared in lower case", func(c *config.Alerts) { c.Statuses = []string{"blocked"} },
			func(a *Alert) { a.Status = "Blocked" }, Decision{Keep: true}},
		{"route not selected", func(c *config.Alerts) { c.Routes = []string{"outbound"} }, nil, Decision{Reason: "route"}},
		{"route external passes", func(c *config.Alerts) { c.Routes = []string{"outbound"} },
			func(a *Alert) { a.Route = "external" }, Decision{Keep: true}},
		{"exclude matches", func(c *config.Alerts) { c.Filters = []config.AlertFilter{exc(`alert.route == "inbound"`)} }, nil,
			Decision{Reason: "filter 0"}},
		{"exclude wins over include", func(c *config.Alerts) {
			c.Filters = []config.AlertFilter{inc(`true`), exc(`source == "url_protection"`)}
		}, nil, Decision{Reason: "filter 1"}},
		{"no include matches", func(c *config.Alerts) {
			c.Filters = []config.AlertFilter{exc(`false`), inc(`alert.verdict == "x"`), inc(`alert.verdict == "y"`)}
		}, nil, Decision{Reason: "filter 1"}},
		{"one include of several matches", func(c *config.Alerts) {
			c.Filters = []config.AlertFilter{inc(`alert.verdict == "x"`), inc(`raw.taggedMalicious == true`)}
		}, nil, Decision{Keep: true}},
		{"only excludes, none matches", func(c *config.Alerts) { c.Filters = []config.AlertFilter{exc(`false`)} }, nil, Decision{Keep: true}},
		{"include evaluation error keeps and counts", func(c *config.Alerts) {
			c.Filters = []config.AlertFilter{inc(`raw.missing == 1`)}
		}, nil, Decision{Keep: true, EvalErrors: 1}},
		{"exclude evaluation error keeps and counts", func(c *config.Alerts) {
			c.Filters = []config.AlertFilter{exc(`raw.missing == 1`), exc(`raw.other == 2`)}
		}, nil, Decision{Keep: true, EvalErrors: 2}},
		{"filters run before priority", func(c *config.Alerts) { c.Filters = []config.AlertFilter{exc(`true`)} },
			func(a *Alert) { a.Verdict = "clean" }, Decision{Reason: "filter 0"}},
		{"filter sees the alert time", func(c *config.Alerts) {
			c.Filters = []config.AlertFilter{inc(`alert.time >= timestamp("2024-03-01T11:00:00Z")`)}
		}, nil, Decision{Keep: true}},
		{"filter on files", func(c *config.Alerts) {
			c.Filters = []config.AlertFilter{exc(`alert.files.exists(f, f.extension == "pdf")`)}
		}, func(a *Alert) { a.Files = []File{{Name: "x.pdf", Extension: "pdf"}} }, Decision{Reason: "filter 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rulesFor(t, tc.cfg)
			a := baseAlert()
			if tc.alert != nil {
				tc.alert(&a)
			}
			if got := r.Decide(&a); got != tc.want {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
			if a.Priority == PriorityUnset || a.PriorityRule == "" {
				t.Errorf("priority not set: %v %q", a.Priority, a.PriorityRule)
			}
		})
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		name     string
		cfg      func(*config.Alerts)
		verdict  string
		want     Priority
		wantRule string
	}{
		{"malicious", nil, "malicious", High, "alerts.priority.high[0]: malicious"},
		{"threat malware", nil, "malware", High, "alerts.priority.high[1]: malware"},
		{"threat phishing", nil, "phishing", High, "alerts.priority.high[2]: phishing"},
		{"upper case verdict", nil, "MALICIOUS", High, "alerts.priority.high[0]: malicious"},
		{"unsafe", nil, "unsafe", Medium, "alerts.priority.medium[0]: unsafe"},
		{"suspicious", nil, "suspicious", Medium, "alerts.priority.medium[2]: suspicious"},
		{"clean", nil, "clean", Low, notListed},
		{"no verdict", nil, "", Low, notListed},
		{"configured", func(c *config.Alerts) {
			c.Priority = config.AlertPriority{High: []string{"Block"}, Low: []string{"malicious"}}
		}, "block", High, "alerts.priority.high[0]: block"},
		{"configured low", func(c *config.Alerts) {
			c.Priority = config.AlertPriority{High: []string{"block"}, Low: []string{"malicious"}}
		}, "malicious", Low, "alerts.priority.low[0]: malicious"},
		{"listed twice: highest wins", func(c *config.Alerts) {
			c.Priority = config.AlertPriority{High: []string{"x"}, Medium: []string{"spam", "x"}}
		}, "x", High, "alerts.priority.high[0]: x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rulesFor(t, tc.cfg)
			a := baseAlert()
			a.Verdict = tc.verdict
			r.Decide(&a)
			if a.Priority != tc.want || a.PriorityRule != tc.wantRule {
				t.Errorf("priority = %v %q, want %v %q", a.Priority, a.PriorityRule, tc.want, tc.wantRule)
			}
		})
	}
}

func TestNewRulesRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*config.Alerts)
		want string
	}{
		{"type", func(c *config.Alerts) { c.Types = []string{"virus"} }, `alerts.types[0]: "virus" is not allowed; allowed values: malware, phishing`},
		{"status", func(c *config.Alerts) { c.Statuses = []string{"held", "quarantined"} }, `alerts.statuses[1]: "quarantined"`},
		{"route", func(c *config.Alerts) { c.Routes = []string{"external"} }, `alerts.routes[0]: "external" is not allowed; allowed values: inbound, outbound, internal`},
		{"cel", func(c *config.Alerts) {
			c.Filters = []config.AlertFilter{{Expression: "true", Action: "include"}, {Expression: "alert.x ==", Action: "exclude"}}
		}, "alerts.filters[1].expression"},
		{"action", func(c *config.Alerts) { c.Filters = []config.AlertFilter{{Expression: "true", Action: "drop"}} }, `alerts.filters[0].action: "drop"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default().Alerts
			tc.mod(&c)
			_, err := NewRules(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRules error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCELAlertHasExactlyTheDeclaredFields(t *testing.T) {
	a := baseAlert()
	a.Files = []File{{Name: "a"}}
	m := CELAlert(&a)
	var got []string
	for k := range m {
		got = append(got, k)
	}
	want := celfilter.AlertFields()
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CELAlert keys = %v, want %v", got, want)
	}
	var fileKeys []string
	for k := range m["files"].([]any)[0].(map[string]any) {
		fileKeys = append(fileKeys, k)
	}
	wantFile := celfilter.FileFields()
	sort.Strings(fileKeys)
	sort.Strings(wantFile)
	if !reflect.DeepEqual(fileKeys, wantFile) {
		t.Errorf("file keys = %v, want %v", fileKeys, wantFile)
	}
}
