package alerts

import (
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/config"
)

// Finding 10: a schedule that cannot fit the SIEM endpoints' budget validates, with a
// warning that names the setting and a poll interval that fits. (The SIEM spec's warnings,
// moved here from package config with the source vocabulary.)
func TestConfigWarningsSIEMBudget(t *testing.T) {
	cases := []struct {
		name     string
		sources  []string
		mode     string
		interval time.Duration
		warn     string
	}{
		{"no siem", []string{"dlp"}, config.SIEMBatch, 20 * time.Second, ""},
		{"batch fits", []string{"siem"}, config.SIEMBatch, 5 * time.Minute, ""},
		{"batch too often", []string{"siem"}, config.SIEMBatch, 20 * time.Second, "raise poll_interval to 1m48s"},
		{"stream fits", []string{"siem"}, config.SIEMStream, 20 * time.Second, ""},
		{"stream too often", []string{"siem"}, config.SIEMStream, 5 * time.Second, "raise poll_interval to 12s"},
	}
	for _, tc := range cases {
		c := config.Default()
		c.Alerts.Sources, c.Alerts.SIEM.Mode, c.Alerts.PollInterval = tc.sources, tc.mode, config.Duration(tc.interval)
		w := ConfigWarnings(c.Alerts)
		switch {
		case tc.warn == "" && len(w) != 0:
			t.Errorf("%s: warnings %q", tc.name, w)
		case tc.warn != "" && (len(w) != 1 || !strings.Contains(w[0], tc.warn) || !strings.Contains(w[0], "alerts.poll_interval")):
			t.Errorf("%s: warnings %q; want one saying %q", tc.name, w, tc.warn)
		}
	}
}

// An unknown name in alerts.sources is refused with config's wording: the field, the value
// and every allowed name, from the table (it was config's own list before the table).
func TestValidateSources(t *testing.T) {
	if err := ValidateSources(config.Default().Alerts.Sources); err != nil {
		t.Fatalf("the default sources: %v", err)
	}
	if err := ValidateSources(SourceNames()); err != nil {
		t.Fatalf("every source of the table: %v", err)
	}
	err := ValidateSources([]string{"attachment_protection", "bogus"})
	want := `alerts.sources[1]: "bogus" is not allowed; allowed values: attachment_protection, url_protection, impersonation, dlp, threats, siem`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v; want it to start with %q", err, want)
	}
}
