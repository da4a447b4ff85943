package job

import (
	"context"
	"sync"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// OpenWriter opens a run's bulk writer and returns it with closeWriter, which flushes it once
// (later calls do nothing) and then hands its statistics to closed (if not nil). After SIGTERM
// the run context is already done, yet what is queued should still reach Elasticsearch so the
// next run fetches less: the flush may take until stopping (Shutdown) ends. When stopping ends
// the writer closes by itself even if the run has not returned yet: an Add still waiting for a
// stalled Elasticsearch then gives up, and the run can end with its summary. The caller defers
// closeWriter, and may call it earlier to flush before its summary.
func OpenWriter(stopping context.Context, cluster *index.Cluster, m *metrics.Metrics, log zerolog.Logger, closed func(index.WriterStats)) (*index.Writer, func(), error) {
	writer, err := cluster.NewWriter()
	if err != nil {
		return nil, nil, err
	}
	m.WatchWriter(writer)
	closeOnce := sync.OnceFunc(func() {
		if err := writer.Close(stopping); err != nil {
			log.Error().Err(err).Msg("flush bulk writer")
		}
		if closed != nil {
			closed(writer.Stats())
		}
	})
	stopWatch := context.AfterFunc(stopping, closeOnce)
	return writer, func() {
		stopWatch()
		closeOnce()
	}, nil
}
