package main

import (
	"context"
	"net/http"

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
