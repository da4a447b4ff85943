package config

import "testing"

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
