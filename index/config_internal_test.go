package index

import "testing"

// A Config that leaves a setting at zero gets DefaultConfig's value, the one the configuration's
// defaults are taken from too; MaxItemRetries below zero is none.
func TestWithDefaultsTakesDefaultConfig(t *testing.T) {
	c, err := Config{Addresses: []string{"http://127.0.0.1:9200"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if c.IndexPrefix != d.IndexPrefix || c.Namespace != d.Namespace || c.BulkWorkers != d.BulkWorkers ||
		c.FlushBytes != d.FlushBytes || c.FlushInterval != d.FlushInterval || c.MaxItemRetries != d.MaxItemRetries ||
		c.MaxRetries != d.MaxRetries || c.RequestTimeout != d.RequestTimeout || c.BulkTimeout != d.BulkTimeout ||
		c.AttachmentIndexedChars != d.AttachmentIndexedChars || c.RetryBackoff == nil {
		t.Errorf("zero config became %+v, want the values of %+v", c, d)
	}
	if c, _ := (Config{Addresses: []string{"x"}, MaxItemRetries: -1}).withDefaults(); c.MaxItemRetries != 0 {
		t.Errorf("MaxItemRetries -1 became %d, want 0 (none)", c.MaxItemRetries)
	}
}
