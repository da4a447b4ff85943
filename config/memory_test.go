package config

import "testing"

// TestCrawlMemory: the formula of docs/deploy.md, with its examples.
func TestCrawlMemory(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name string
		set  func(c *Config)
		want float64 // MiB
	}{
		// 64 + 2 × (250 × 64 KiB + 2 × 5 MB) = 64 + 2 × (15.625 + 9.537) ≈ 114.3
		{"defaults, no attachments", func(*Config) {}, 114.3},
		// + 2 × 8 × 8 × 16 MiB = + 2048, + 320 for the PDF engine
		{"defaults with attachments", func(c *Config) { c.Attachments.Extract = true }, 2482.3},
		// text by Elasticsearch's pipeline: no PDF engine in the crawler
		{"attachments with text by the pipeline", func(c *Config) {
			c.Attachments.Extract = true
			c.Attachments.Text = TextByElasticsearch
		}, 2162.3},
		// the Kubernetes example: 4 × 8 × 4 MiB = 128 MiB of attachments: + 256, + 320
		{"the Kubernetes example", func(c *Config) {
			c.Attachments.Extract = true
			c.Parallelism.Mailboxes = 4
			c.Attachments.MemoryPerMessage = 4 * mib
		}, 690.3},
	} {
		c := Default()
		tc.set(c)
		got := float64(c.CrawlMemory()) / mib
		if got < tc.want-0.1 || got > tc.want+0.1 {
			t.Errorf("%s: %.1f MiB, want %.1f", tc.name, got, tc.want)
		}
	}
}
