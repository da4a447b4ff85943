package config

import (
	"strings"
	"testing"
	"time"
)

// Finding 10: a schedule that cannot fit the SIEM endpoints' budget validates, with a
// warning that names the setting and a poll interval that fits.
func TestAlertsWarningsSIEMBudget(t *testing.T) {
	cases := []struct {
		name     string
		sources  []string
		mode     string
		interval time.Duration
		warn     string
	}{
		{"no siem", []string{"dlp"}, SIEMBatch, 20 * time.Second, ""},
		{"batch fits", []string{"siem"}, SIEMBatch, 5 * time.Minute, ""},
		{"batch too often", []string{"siem"}, SIEMBatch, 20 * time.Second, "raise poll_interval to 1m48s"},
		{"stream fits", []string{"siem"}, SIEMStream, 20 * time.Second, ""},
		{"stream too often", []string{"siem"}, SIEMStream, 5 * time.Second, "raise poll_interval to 12s"},
	}
	for _, tc := range cases {
		c := Default()
		c.Alerts.Sources, c.Alerts.SIEM.Mode, c.Alerts.PollInterval = tc.sources, tc.mode, Duration(tc.interval)
		w := c.AlertsWarnings()
		switch {
		case tc.warn == "" && len(w) != 0:
			t.Errorf("%s: warnings %q", tc.name, w)
		case tc.warn != "" && (len(w) != 1 || !strings.Contains(w[0], tc.warn) || !strings.Contains(w[0], "alerts.poll_interval")):
			t.Errorf("%s: warnings %q; want one saying %q", tc.name, w, tc.warn)
		}
	}
}

// Validate keeps the filters and the details template it compiled, so that the poller does
// not compile them a second time.
func TestValidateKeepsWhatItCompiled(t *testing.T) {
	c, err := Parse([]byte("mimecast:\n  client_id: x\n  client_secret: y\nalerts:\n  details_url: https://c.example.com/?id={{.ID}}\n"+
		"  filters:\n    - expression: alert.verdict == \"malicious\"\n      action: include\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Alerts.Filters[0].Program() == nil || c.Alerts.DetailsTemplate() == nil {
		t.Errorf("program %v, template %v: not kept", c.Alerts.Filters[0].Program(), c.Alerts.DetailsTemplate())
	}
	if Default().Alerts.DetailsTemplate() != nil {
		t.Error("an unvalidated configuration has a compiled template")
	}
}
