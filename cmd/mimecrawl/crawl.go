package main

import (
	"context"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/internal/job"
)

// crawl runs a crawl (job.Crawl) with the progress display, prints its summary and pushes the
// metrics (when metrics.pushgateway_url is set: a failed run too, so that the failure is
// visible).
func (a *app) crawl(ctx context.Context, full, allowMassRemoval bool) int {
	m := a.newMetrics()
	prog := a.newProgress()
	interval := 10 * time.Second
	if a.line != nil {
		interval = 250 * time.Millisecond
	}
	sum := job.Crawl(ctx, a.env(), job.CrawlArgs{Full: full, AllowMassRemoval: allowMassRemoval, Metrics: m,
		Watch: progressWatch{prog: prog, every: interval}})
	// The last frame is drawn from the summary's numbers just before the summary is printed.
	prog.stop(sum)
	if a.textSummary {
		printSummary(a.stdout, sum)
	}
	a.pushMetrics(m, "crawl")
	return sum.ExitCode
}

// progressWatch shows the crawl's progress (job.Watcher).
type progressWatch struct {
	prog  *progress
	every time.Duration
}

func (w progressWatch) Started(client *mimecast.Client) { w.prog.run(client, w.every) }
func (w progressWatch) Crawling(cr *crawler.Crawler)    { w.prog.crawling(cr) }
func (w progressWatch) Views(done, total int)           { w.prog.views(done, total) }
