package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// ErrMaxWait: an API call of a source waited longer than Options.MaxWait (on its quota,
// its retries): the source gives up for this pass, its cursor where the acknowledged
// alerts put it, and its pass fails.
var ErrMaxWait = errors.New("gave up waiting for the api (alerts.max_wait)")

// Decorators of the sources that bound each page call by MaxWait. File downloads are not
// bounded: streaming a file takes what its size takes.

type boundedLogs struct {
	LogSource
	d time.Duration
}

type boundedThreats struct {
	ThreatSource
	d time.Duration
}

type boundedSIEM struct {
	SIEMSource
	d time.Duration
}

// bounded runs call with a context that ends after d, turning that end into ErrMaxWait.
func bounded[T any](ctx context.Context, d time.Duration, what string, call func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeoutCause(ctx, d, ErrMaxWait)
	defer cancel()
	v, err := call(cctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(cctx), ErrMaxWait) {
		return v, fmt.Errorf("%s: %w after %s: %v", what, ErrMaxWait, d, err)
	}
	return v, err
}

func (b boundedLogs) SecurityLogs(ctx context.Context, k mimecast.LogKind, q mimecast.LogQuery) (mimecast.Page, error) {
	return bounded(ctx, b.d, "read "+string(k)+" logs", func(ctx context.Context) (mimecast.Page, error) { return b.LogSource.SecurityLogs(ctx, k, q) })
}

func (b boundedThreats) ThreatEvents(ctx context.Context, q mimecast.ThreatQuery) (mimecast.Page, error) {
	return bounded(ctx, b.d, "read threat events", func(ctx context.Context) (mimecast.Page, error) { return b.ThreatSource.ThreatEvents(ctx, q) })
}

func (b boundedThreats) ThreatDetails(ctx context.Context, id string) (json.RawMessage, error) {
	return bounded(ctx, b.d, "read threat details", func(ctx context.Context) (json.RawMessage, error) { return b.ThreatSource.ThreatDetails(ctx, id) })
}

func (b boundedSIEM) SIEMBatch(ctx context.Context, q mimecast.SIEMBatchQuery) (mimecast.SIEMBatchPage, error) {
	return bounded(ctx, b.d, "list siem batch files", func(ctx context.Context) (mimecast.SIEMBatchPage, error) { return b.SIEMSource.SIEMBatch(ctx, q) })
}

func (b boundedSIEM) SIEMEvents(ctx context.Context, q mimecast.SIEMStreamQuery) (mimecast.Page, error) {
	return bounded(ctx, b.d, "read siem events", func(ctx context.Context) (mimecast.Page, error) { return b.SIEMSource.SIEMEvents(ctx, q) })
}
