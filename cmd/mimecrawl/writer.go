package main

import (
	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/internal/job"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// openWriter opens a bulk writer that closes when the command's grace ends (job.OpenWriter).
func (a *app) openWriter(cluster *index.Cluster, m *metrics.Metrics, log zerolog.Logger, closed func(index.WriterStats)) (*index.Writer, func(), error) {
	return job.OpenWriter(a.stopping, cluster, m, log, closed)
}
