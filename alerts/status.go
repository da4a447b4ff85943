package alerts

import (
	"slices"
	"strings"
	"time"
)

// CursorStatus is what `mimecrawl status` shows of one cursor.
type CursorStatus struct {
	Name       string     `json:"name"`
	Position   string     `json:"position"`
	Latest     *time.Time `json:"latest_event,omitempty"`
	LastPoll   *time.Time `json:"last_poll,omitempty"`
	Forbidden  bool       `json:"forbidden,omitempty"`
	Permission string     `json:"permission,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	// Pending counts the alerts parked in the cursor (see SourceSummary.Pending);
	// FilesPending the SIEM batch files.
	Pending      int `json:"alerts_pending,omitempty"`
	FilesPending int `json:"files_pending,omitempty"`
}

// CursorLister lists every cursor of a state file. Implemented by *state.Store.
type CursorLister interface {
	Cursors() (map[string]string, error)
}

// Statuses describes the alert cursors of a state file, sorted by name. A cursor that does
// not decode is listed with the reason, so that status still shows the rest.
func Statuses(l CursorLister) ([]CursorStatus, error) {
	all, err := l.Cursors()
	if err != nil {
		return nil, err
	}
	out := []CursorStatus{}
	for name, raw := range all {
		if !strings.HasPrefix(name, "alerts/") {
			continue
		}
		c, err := decodeCursor(name, raw)
		if err != nil {
			out = append(out, CursorStatus{Name: name, Position: "unreadable", LastError: err.Error()})
			continue
		}
		out = append(out, CursorStatus{Name: name, Position: c.describe(), Latest: timePtr(c.Latest),
			LastPoll: timePtr(c.LastPoll), Forbidden: c.Forbidden, Permission: c.Permission, LastError: c.LastError, Pending: len(c.Pending), FilesPending: len(c.PendingFiles)})
	}
	slices.SortFunc(out, func(a, b CursorStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
