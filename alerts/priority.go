package alerts

import (
	"fmt"
	"strings"

	"github.com/mimecrawl/mimecrawl/config"
)

// priorityMap is alerts.priority compiled: verdict (lower case) → the priority and the
// rule that set it. A verdict listed under several levels gets the highest one (high is
// read first); a verdict listed nowhere is low, by the rule "alerts.priority: not listed".
type priorityMap map[string]priorityRule

type priorityRule struct {
	p    Priority
	rule string
}

func newPriorityMap(c config.AlertPriority) priorityMap {
	m := priorityMap{}
	for _, l := range []struct {
		name string
		p    Priority
		vs   []string
	}{{"high", High, c.High}, {"medium", Medium, c.Medium}, {"low", Low, c.Low}} {
		for i, v := range l.vs {
			v = strings.ToLower(strings.TrimSpace(v))
			if _, ok := m[v]; ok || v == "" {
				continue
			}
			m[v] = priorityRule{p: l.p, rule: fmt.Sprintf("alerts.priority.%s[%d]: %s", l.name, i, v)}
		}
	}
	return m
}

// notListed is the PriorityRule of a verdict that alerts.priority does not list.
const notListed = "alerts.priority: verdict not listed → low"

func (m priorityMap) of(a *Alert) (Priority, string) {
	if r, ok := m[strings.ToLower(a.Verdict)]; ok {
		return r.p, r.rule
	}
	return Low, notListed
}
