package alerts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
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

// Probe makes the smallest request of one source (one record of the last hour; for SIEM one
// page of batch files of the first type), so that check can tell a source the application
// may not read (mimecast.IsForbidden) from one that answers.
// Only the source readers of d are used.
func Probe(ctx context.Context, d Deps, src Source, now time.Time) error {
	var err error
	switch {
	case (src == AttachmentProtection || src == URLProtection || src == Impersonation || src == DLP) && d.Logs != nil:
		_, err = d.Logs.SecurityLogs(ctx, mimecast.LogKind(src), mimecast.LogQuery{From: now.Add(-time.Hour), To: now, OldestFirst: true, PageSize: 1})
	case src == Threats && d.Threats != nil:
		_, err = d.Threats.ThreatEvents(ctx, mimecast.ThreatQuery{Start: now.Add(-time.Hour), End: now, PageSize: 1, OldestFirst: true})
	case src == SIEM && d.SIEM != nil:
		_, err = d.SIEM.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: DefaultSIEMTypes[0], Start: now, PageSize: 1})
	default:
		err = fmt.Errorf("probe source %q: unknown, or no reader for it", src)
	}
	return err
}
