package index_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
)

// BenchmarkWriter indexes 5,000 small message documents per iteration through one writer and
// reports documents per second.
func BenchmarkWriter(b *testing.B) {
	e := newEnv(b)
	cfg := e.config(b, "")
	cfg.FlushInterval = time.Second
	c := open(b, cfg)
	const docs = 5000
	all := ids("bench-", docs)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		w, err := c.NewWriter()
		if err != nil {
			b.Fatal(err)
		}
		var failed atomic.Int64
		for _, id := range all {
			err := w.Add(context.Background(), message(id, "a@example.com", "INBOX", 1), func(r index.Result) {
				if r.Err != nil {
					failed.Add(1)
				}
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d documents failed", n)
		}
	}
	b.ReportMetric(float64(docs*b.N)/time.Since(start).Seconds(), "docs/s")
}
