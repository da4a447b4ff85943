package alerts

import (
	"reflect"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/config"
)

// The poller's defaults of the alerts settings are the configuration's, and New gives an option
// left at zero its default from DefaultOptions. Overlap is taken as is: alerts.overlap: 0 re-reads
// nothing. Before, New wrote its own defaults and read a zero overlap as "10m", so the command
// had to turn a configured 0 into -1 and New turn -1 back into 0.
func TestNewTakesDefaultsFromDefaultOptions(t *testing.T) {
	a, d := config.Default().Alerts, DefaultOptions()
	for _, tc := range []struct {
		setting   string
		got, want any
	}{
		{"alerts.poll_interval", d.PollInterval, a.PollInterval.D()},
		{"alerts.lookback", d.Lookback, a.Lookback.D()},
		{"alerts.overlap", d.Overlap, a.Overlap.D()},
		{"alerts.page_size", d.PageSize, a.PageSize},
		{"alerts.max_record_size", d.MaxRecordBytes, int(a.MaxRecordSize)},
		{"alerts.max_pages", d.MaxPages, a.MaxPages},
		{"alerts.siem.types", d.SIEMTypes, a.SIEM.Types},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: poller default %v, configuration default %v", tc.setting, tc.got, tc.want)
		}
	}

	f := newFixture(false)
	p := f.poller(t, Options{Sources: []Source{DLP}})
	o := p.o
	if o.Overlap != 0 {
		t.Errorf("overlap 0 became %v, want 0 as is", o.Overlap)
	}
	o.Now, o.Normalize, o.Sources, o.Logger, o.Overlap = nil, nil, nil, d.Logger, d.Overlap
	if !reflect.DeepEqual(o, d) {
		t.Errorf("zero options became\n%+v\nwant DefaultOptions\n%+v", o, d)
	}
	if p := f.poller(t, Options{Sources: []Source{DLP}, Overlap: 3 * time.Minute}); p.o.Overlap != 3*time.Minute {
		t.Errorf("overlap 3m became %v", p.o.Overlap)
	}
	if _, err := New(Deps{Logs: f.logs, Sink: f.sink, Cursors: f.cursors, Rules: keepAll{}}, Options{Sources: []Source{DLP}, Overlap: -time.Minute}); err == nil {
		t.Error("a negative overlap is not an error")
	}
}

// The filters and the details template of a validated configuration are compiled once, by its
// validation; a configuration built by hand is compiled when the poller's parts are built.
func TestValidatedFiltersAndTemplateAreNotCompiledAgain(t *testing.T) {
	cfg, err := config.Parse([]byte("mimecast:\n  client_id: x\n  client_secret: y\nalerts:\n  details_url: https://c.example.com/?id={{.ID}}\n"+
		"  filters:\n    - expression: alert.verdict == \"malicious\"\n      action: include\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRules(cfg.Alerts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.filters) != 1 || r.filters[0].prg != cfg.Alerts.Filters[0].Program() {
		t.Error("NewRules compiled the validated filter again")
	}
	d, err := DetailsTemplateOf(cfg.Alerts)
	if err != nil || d.t != cfg.Alerts.DetailsTemplate() {
		t.Errorf("DetailsTemplateOf compiled the validated template again (%v)", err)
	}

	byHand := config.Default().Alerts
	byHand.DetailsURL = "https://c.example.com/?id={{.ID}}"
	byHand.Filters = []config.AlertFilter{{Expression: `alert.verdict == "malicious"`, Action: config.FilterInclude}}
	if r, err := NewRules(byHand); err != nil || len(r.filters) != 1 || r.filters[0].prg == nil {
		t.Errorf("rules of a configuration built by hand: %v", err)
	}
	if d, err := DetailsTemplateOf(byHand); err != nil || d.t == nil {
		t.Errorf("template of a configuration built by hand: %v", err)
	}
	byHand.DetailsURL = "{{.Nope"
	if _, err := DetailsTemplateOf(byHand); err == nil {
		t.Error("an unparseable template built by hand is not an error")
	}
}
