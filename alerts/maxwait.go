package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// ErrMaxWait: an API call of a source waited longer than Options.MaxWait (on its quota,
// its retries): the source gives up for this pass, its cursor where the acknowledged
// alerts put it, and its pass fails.
var ErrMaxWait = errors.New("gave up waiting for the api (alerts.max_wait)")

// slowCall is how long one page call may take before it is logged at warn, with its
// source and length: a call that long waited on its quota (the SIEM budgets are hourly) or
// retried, and an operator should see why a pass is late.
const slowCall = time.Minute

// Decorators of the sources that watch each page call: logged at warn past slowCall, and
// ended with ErrMaxWait past Options.MaxWait when it is set. File downloads are not bounded:
// streaming a file takes what its size takes.

// guard is what the decorators share.
type guard struct {
	maxWait time.Duration // 0: no bound
	now     func() time.Time
	log     zerolog.Logger
	live    Liveness // nil: none
}

// beat tells live that source's loop is alive.
func (g guard) beat(source string) {
	if g.live != nil {
		g.live.Beat(source)
	}
}

type boundedLogs struct {
	LogSource
	g guard
}

type boundedThreats struct {
	ThreatSource
	g guard
}

type boundedSIEM struct {
	SIEMSource
	g guard
}

// bounded runs call, with a context that ends after g.maxWait (turning that end into
// ErrMaxWait) when it is set, and warns when the call took slowCall or more.
func bounded[T any](ctx context.Context, g guard, source, what string, call func(context.Context) (T, error)) (T, error) {
	cctx := ctx
	if g.maxWait > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeoutCause(ctx, g.maxWait, ErrMaxWait)
		defer cancel()
	}
	// Every call is a sign of life of its source's loop, when it starts and when it ends, so
	// that a pass reading a long backlog (or waiting for a quota inside a call) is told from a
	// loop that is stuck.
	g.beat(source)
	defer g.beat(source)
	start := g.now()
	v, err := call(cctx)
	if took := g.now().Sub(start); took >= slowCall {
		g.log.Warn().Str("source", source).Str("call", what).Dur("took", took).Msg("api call waited long (quota or retries)")
	}
	if err != nil && ctx.Err() == nil && g.maxWait > 0 && errors.Is(context.Cause(cctx), ErrMaxWait) {
		return v, fmt.Errorf("%s: %w after %s: %v", what, ErrMaxWait, g.maxWait, err)
	}
	return v, err
}

func (b boundedLogs) SecurityLogs(ctx context.Context, k mimecast.LogKind, q mimecast.LogQuery) (mimecast.Page, error) {
	return bounded(ctx, b.g, string(k), "read "+string(k)+" logs", func(ctx context.Context) (mimecast.Page, error) { return b.LogSource.SecurityLogs(ctx, k, q) })
}

func (b boundedThreats) ThreatEvents(ctx context.Context, q mimecast.ThreatQuery) (mimecast.Page, error) {
	return bounded(ctx, b.g, string(Threats), "read threat events", func(ctx context.Context) (mimecast.Page, error) { return b.ThreatSource.ThreatEvents(ctx, q) })
}

func (b boundedThreats) ThreatDetails(ctx context.Context, id string) (json.RawMessage, error) {
	return bounded(ctx, b.g, string(Threats), "read threat details", func(ctx context.Context) (json.RawMessage, error) { return b.ThreatSource.ThreatDetails(ctx, id) })
}

func (b boundedSIEM) SIEMBatch(ctx context.Context, q mimecast.SIEMBatchQuery) (mimecast.SIEMBatchPage, error) {
	return bounded(ctx, b.g, string(SIEM), "list siem batch files", func(ctx context.Context) (mimecast.SIEMBatchPage, error) { return b.SIEMSource.SIEMBatch(ctx, q) })
}

func (b boundedSIEM) SIEMEvents(ctx context.Context, q mimecast.SIEMStreamQuery) (mimecast.Page, error) {
	return bounded(ctx, b.g, string(SIEM), "read siem events", func(ctx context.Context) (mimecast.Page, error) { return b.SIEMSource.SIEMEvents(ctx, q) })
}

// SIEMFileEvents is not bounded (streaming a file takes what its size takes) but beats per
// record too: a large file is read for a long time in one call.
func (b boundedSIEM) SIEMFileEvents(ctx context.Context, f mimecast.SIEMFile, fn func(rec json.RawMessage) error) error {
	b.g.beat(string(SIEM))
	defer b.g.beat(string(SIEM))
	return b.SIEMSource.SIEMFileEvents(ctx, f, func(rec json.RawMessage) error {
		b.g.beat(string(SIEM))
		return fn(rec)
	})
}
