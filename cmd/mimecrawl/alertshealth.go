package main

import (
	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// sourceHealth learns, per source, that the source's loop is alive (Beat: one of its calls
// started or ended; the poller calls it, as alerts.Deps.Liveness) and how each of its passes
// ended (Pass). Sources poll on goroutines of
// their own, so it is called concurrently. Implemented by *metrics.Health, which turns it into
// the liveness and readiness probes.
type sourceHealth interface {
	Beat(source string)
	Pass(p metrics.SourcePass)
}

var (
	_ sourceHealth    = (*metrics.Health)(nil)
	_ alerts.Liveness = (*metrics.Health)(nil)
)

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
