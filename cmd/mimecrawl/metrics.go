package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// newMetrics returns the registry of this process's command.
func (a *app) newMetrics() *metrics.Metrics {
	return metrics.New(metrics.Options{WorstN: a.cfg.Metrics.WorstMailboxes})
}

// pushMetrics pushes m to metrics.pushgateway_url, if set, grouped by command. A failed push
// is logged, not fatal: the run's work is done and its exit code says how it went.
func (a *app) pushMetrics(m *metrics.Metrics, command string) {
	url := a.cfg.Metrics.PushgatewayURL
	if url == "" || m == nil {
		return
	}
	timeout := a.cfg.Metrics.PushTimeout.D()
	// Not the run's context: a run stopped by SIGTERM still reports how it ended, within the
	// shutdown grace.
	ctx, cancel := context.WithTimeout(a.stopping, timeout)
	defer cancel()
	err := m.Push(ctx, url, map[string]string{"command": command}, &http.Client{Timeout: timeout})
	if err != nil {
		a.log.Error().Err(err).Str("pushgateway", url).Msg("push metrics")
		return
	}
	a.log.Debug().Str("pushgateway", url).Msg("metrics pushed")
}

// alertSourceStatuses turns the poller's cursors into the metrics' per-source view: a
// source with several cursors (SIEM batch types) is as late as its latest cursor's newest
// event, as recent as its oldest poll, forbidden or failing if any cursor is.
func alertSourceStatuses(cs []alerts.CursorStatus) []metrics.SourceStatus {
	by := map[string]*metrics.SourceStatus{}
	var order []string
	for _, c := range cs {
		name := strings.TrimPrefix(c.Name, "alerts/")
		name, _, _ = strings.Cut(name, "/")
		s := by[name]
		if s == nil {
			s = &metrics.SourceStatus{Source: name}
			by[name] = s
			order = append(order, name)
		}
		if c.Latest != nil && c.Latest.After(s.LatestEvent) {
			s.LatestEvent = *c.Latest
		}
		if c.LastPoll != nil && (s.LastPoll.IsZero() || c.LastPoll.Before(s.LastPoll)) {
			s.LastPoll = *c.LastPoll
		}
		s.Pending += c.Pending + c.FilesPending
		s.Forbidden = s.Forbidden || c.Forbidden
		s.Failing = s.Failing || (c.LastError != "" && !c.Forbidden)
	}
	out := make([]metrics.SourceStatus, 0, len(order))
	for _, n := range order {
		out = append(out, *by[n])
	}
	return out
}

// countedGroups is the poller's group store with its writes counted in the metrics: the
// groups are written by conditional writes, not through the counted Sink, and
// documents_indexed_total{kind="alert-groups"} is documented. A write that lost a race or was
// refused for load is tried again by the poller, so it counts when it lands.
type countedGroups struct {
	alerts.GroupStore
	m *metrics.Metrics
}

func (g countedGroups) PutGroups(ctx context.Context, ws []alerts.GroupWrite) ([]error, error) {
	errs, err := g.GroupStore.PutGroups(ctx, ws)
	if err != nil {
		return errs, err
	}
	indexed, failed := 0, 0
	for _, e := range errs {
		switch {
		case e == nil:
			indexed++
		case errors.Is(e, alerts.ErrGroupConflict), errors.Is(e, alerts.ErrGroupBusy):
		default:
			failed++
		}
	}
	g.m.CountWrites(alerts.GroupsKind, indexed, failed)
	return errs, nil
}
