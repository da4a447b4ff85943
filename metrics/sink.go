package metrics

import (
	"context"

	"github.com/mimecrawl/mimecrawl/index"
)

// Sink takes documents for indexing. done is called exactly once per document accepted, from
// another goroutine, and must not block. Implemented by *index.Writer.
type Sink interface {
	Add(ctx context.Context, d index.Doc, done func(index.Result)) error
}

var _ Sink = (*index.Writer)(nil)

// DocCounter is a Sink that counts the outcome of every document by kind, then passes it on.
// It satisfies the Sink interfaces of the crawler and of the alerts poller.
type DocCounter struct {
	next Sink
	m    *Metrics
}

// CountDocuments wraps next so that every document's outcome is counted.
func (m *Metrics) CountDocuments(next Sink) *DocCounter {
	return &DocCounter{next: next, m: m}
}

// Add passes d on; its outcome is counted before done is called. A document Add refuses is
// not counted: the caller gets the error and handles it.
func (c *DocCounter) Add(ctx context.Context, d index.Doc, done func(index.Result)) error {
	kind := d.Kind.String()
	return c.next.Add(ctx, d, func(r index.Result) {
		switch {
		case r.Err != nil:
			c.m.docsFailed.WithLabelValues(kind).Inc()
		case r.Existed:
			c.m.docsExisting.WithLabelValues(kind).Inc()
		default:
			c.m.docsIndexed.WithLabelValues(kind).Inc()
		}
		done(r)
	})
}

// Flush passes a flush on to next when it can flush (the crawler asks for one while a view
// waits for acknowledgements); otherwise there is nothing to flush.
func (c *DocCounter) Flush(ctx context.Context) error {
	if f, ok := c.next.(interface{ Flush(context.Context) error }); ok {
		return f.Flush(ctx)
	}
	return nil
}

// CountWrites counts documents written outside a Sink (the alert groups' conditional
// writes): indexed acknowledged as written, failed refused for good. They are the same series
// as CountDocuments', so documents_indexed_total has every kind a process writes.
func (m *Metrics) CountWrites(k index.Kind, indexed, failed int) {
	kind := k.String()
	if indexed > 0 {
		m.docsIndexed.WithLabelValues(kind).Add(float64(indexed))
	}
	if failed > 0 {
		m.docsFailed.WithLabelValues(kind).Add(float64(failed))
	}
}
