package config

// Memory a crawl needs, derived from the settings that bound it, so that a pod's memory limit
// can be set from the configuration rather than guessed (docs/deploy.md, "Memory"; the
// Kubernetes examples are held to it by deploy's tests, and `check` prints it).
const (
	// crawlBaseMemory is the binary, the Go runtime and what does not grow with the settings:
	// a crawl without attachments peaks at about 60 MB (docs/performance.md).
	crawlBaseMemory = 64 << 20
	// docInFlightMemory is what one message in flight holds in its documents: typical mail is
	// about 50 KB; this leaves room for larger ones.
	docInFlightMemory = 64 << 10
	// heapGrowth: the Go collector lets the heap grow to twice the live data (GOGC 100) before
	// it collects.
	heapGrowth = 2
	// pdfEngineMemory is the PDF engine's (PDFium in WebAssembly) share when the crawler
	// extracts attachment text: its compilation at a start without a compiled copy in the cache
	// directory raised a small crawl's peak from 156 to 386–409 MB resident (measured with
	// /usr/bin/time on 6 mailboxes × 150 messages, with and without a warm cache), and at work
	// each instance holds 32 MiB, up to 128 MiB for a large file, one per CPU at most.
	pdfEngineMemory = 320 << 20
)

// CrawlMemory is the most memory a crawl with this configuration is expected to need:
//
//	64 MiB + 2 × ( attachments in memory + documents in flight + bulk buffers ) + PDF engine
//
// where attachments in memory are parallelism.mailboxes × parallelism.messages ×
// attachments.memory_per_message (with attachments.extract; the rest wait in a temporary file),
// documents in flight are performance.messages_in_flight × 64 KiB, and the bulk buffers are
// elasticsearch.bulk.workers × elasticsearch.bulk.flush_bytes, and the PDF engine is 320 MiB
// when the crawler extracts attachment text (attachments.extract with attachments.text:
// crawler).
func (c *Config) CrawlMemory() ByteSize {
	var attachments int64
	if c.Attachments.Extract {
		attachments = int64(c.Fetchers()) * int64(c.Attachments.MemoryPerMessage)
	}
	docs := int64(c.Performance.MessagesInFlight) * docInFlightMemory
	bulk := int64(c.Elasticsearch.Bulk.Workers) * int64(c.Elasticsearch.Bulk.FlushBytes)
	var engine int64
	if c.Attachments.Extract && c.Attachments.Text == TextByCrawler {
		engine = pdfEngineMemory
	}
	return ByteSize(crawlBaseMemory + heapGrowth*(attachments+docs+bulk) + engine)
}
