package alerts

import (
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/config"
)

// Filters with a costly regular expression over a 1 MiB subject (a hostile record): the
// filters see 4 KiB of it, the evaluation stops at its bound, the alert is kept (fail open)
// and the stop is counted, per alert and in FilterLimited.
func TestDecideBoundsCostlyFilters(t *testing.T) {
	exc := config.AlertFilter{Expression: strings.Repeat(`alert.subject.matches("(?:a?){450}z") || `, 9) + `false`, Action: "exclude"}
	r := rulesFor(t, func(c *config.Alerts) { c.Filters = []config.AlertFilter{exc, exc, exc} })
	a := baseAlert()
	a.Subject = strings.Repeat("a", 1<<20)
	d := r.Decide(&a)
	if !d.Keep || d.EvalErrors != 3 || d.Limited != 3 {
		t.Errorf("Decide = %+v; want kept, 3 filters stopped at their bound", d)
	}
	if n := r.FilterLimited(); n != 3 {
		t.Errorf("FilterLimited = %d, want 3", n)
	}
	a = baseAlert()
	a.Subject = "short"
	if d := r.Decide(&a); !d.Keep || d.EvalErrors != 0 {
		t.Errorf("an ordinary alert: %+v", d)
	}
}
