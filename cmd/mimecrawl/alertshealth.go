package main

import (
	"context"
	"encoding/json"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// sourceHealth learns, per source, that the source's loop is alive (Beat: one of its calls
// started or ended) and how each of its passes ended (Pass). Sources poll on goroutines of
// their own, so it is called concurrently. Implemented by *metrics.Health, which turns it into
// the liveness and readiness probes.
type sourceHealth interface {
	Beat(source string)
	Pass(p metrics.SourcePass)
}

var _ sourceHealth = (*metrics.Health)(nil)

// reportPass tells h how one pass of one source ended. A source answered 403 is reported as
// forbidden, never as failing: a restart would not grant the permission.
func reportPass(h sourceHealth, s alerts.SourceSummary) {
	p := metrics.SourcePass{Source: string(s.Source), Result: metrics.PassOK}
	switch {
	case s.Forbidden:
		p.Result, p.Permission = metrics.PassForbidden, s.Permission
	case s.Interrupted:
		p.Result = metrics.PassInterrupted
	case s.Error != "":
		p.Result, p.Error = metrics.PassFailed, s.Error
	}
	h.Pass(p)
}

// The readers below decorate the poller's sources: every call is a sign of life of its
// source's loop, when it starts and when it ends, so that a pass reading a long backlog (or
// waiting for a quota inside a call) is told from a loop that is stuck. Methods the poller's
// interfaces may gain pass through the embedded reader unobserved.

type beatingLogs struct {
	alerts.LogSource
	h sourceHealth
}

func (b beatingLogs) SecurityLogs(ctx context.Context, kind mimecast.LogKind, q mimecast.LogQuery) (mimecast.Page, error) {
	b.h.Beat(string(kind))
	defer b.h.Beat(string(kind))
	return b.LogSource.SecurityLogs(ctx, kind, q)
}

type beatingThreats struct {
	alerts.ThreatSource
	h sourceHealth
}

func (b beatingThreats) ThreatEvents(ctx context.Context, q mimecast.ThreatQuery) (mimecast.Page, error) {
	b.h.Beat(string(alerts.Threats))
	defer b.h.Beat(string(alerts.Threats))
	return b.ThreatSource.ThreatEvents(ctx, q)
}

func (b beatingThreats) ThreatDetails(ctx context.Context, id string) (json.RawMessage, error) {
	b.h.Beat(string(alerts.Threats))
	defer b.h.Beat(string(alerts.Threats))
	return b.ThreatSource.ThreatDetails(ctx, id)
}

type beatingSIEM struct {
	alerts.SIEMSource
	h sourceHealth
}

func (b beatingSIEM) SIEMBatch(ctx context.Context, q mimecast.SIEMBatchQuery) (mimecast.SIEMBatchPage, error) {
	b.h.Beat(string(alerts.SIEM))
	defer b.h.Beat(string(alerts.SIEM))
	return b.SIEMSource.SIEMBatch(ctx, q)
}

// SIEMFileEvents beats per record too: a large file is read for a long time in one call.
func (b beatingSIEM) SIEMFileEvents(ctx context.Context, f mimecast.SIEMFile, fn func(rec json.RawMessage) error) error {
	b.h.Beat(string(alerts.SIEM))
	defer b.h.Beat(string(alerts.SIEM))
	return b.SIEMSource.SIEMFileEvents(ctx, f, func(rec json.RawMessage) error {
		b.h.Beat(string(alerts.SIEM))
		return fn(rec)
	})
}

func (b beatingSIEM) SIEMEvents(ctx context.Context, q mimecast.SIEMStreamQuery) (mimecast.Page, error) {
	b.h.Beat(string(alerts.SIEM))
	defer b.h.Beat(string(alerts.SIEM))
	return b.SIEMSource.SIEMEvents(ctx, q)
}

var (
	_ alerts.LogSource    = beatingLogs{}
	_ alerts.ThreatSource = beatingThreats{}
	_ alerts.SIEMSource   = beatingSIEM{}
)
