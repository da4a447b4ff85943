package job

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/state"
)

// StatusReport is what `status` shows: the crawl's state file (state.Report, or a running
// crawl's snapshot of it) and the alerts poller's cursors (StatusAlerts).
type StatusReport struct {
	state.Report
	// Alerts are the alert poller's cursors, from its own state file; absent when it never ran.
	Alerts     []alerts.CursorStatus `json:"alerts,omitempty"`
	AlertsNote string                `json:"alerts_note,omitempty"`
	// AlertsError: the alerts state file could not be read (damaged, unreadable). The crawl's
	// part is shown all the same; the exit code is 1.
	AlertsError string `json:"alerts_error,omitempty"`
}

// statusLockWait bounds how long status waits for a running crawl to release the state file
// before it falls back to the crawl's snapshot.
const statusLockWait = 500 * time.Millisecond

// Status reads the state file, or, when no crawl has run yet, says so, or, when a crawl holds
// the file, reads that crawl's snapshot (state.ReadSnapshot). A damaged file gives a report
// with Damage set and CodeFatal. Status reads local files only and needs no credentials; the
// alerts part of the report is StatusAlerts's.
func Status(cfg *config.Config, shard crawler.Shard) (StatusReport, Code, error) {
	path := cfg.State.Path
	rep := StatusReport{Report: state.Report{StatePath: path, Shard: shard.String()}}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		rep.NoCrawlYet = true
		return rep, CodeOK, nil
	}
	st, err := state.Open(path, state.Options{ReadOnly: true, LockTimeout: min(statusLockWait, cfg.State.LockTimeout.D())})
	if errors.Is(err, state.ErrLocked) {
		snap, serr := state.ReadSnapshot(path)
		if serr != nil {
			return rep, CodeFatal, fmt.Errorf("%w; and the running crawl's snapshot could not be read: %v", err, serr)
		}
		snap.Snapshot.Age = time.Since(snap.Snapshot.Written).Round(time.Second).String()
		return StatusReport{Report: snap}, CodeOK, nil
	}
	if err != nil {
		return rep, CodeFatal, err
	}
	defer st.Close()
	// Damage that no read meets would otherwise go unnoticed until a crawl commits over it;
	// the report is still printed, with the damage in it, and the exit code says so.
	if rep.Report, err = st.Report(rep.Report, true); err != nil {
		return rep, CodeFatal, err
	}
	if rep.Damage != "" {
		return rep, CodeFatal, nil
	}
	return rep, CodeOK, nil
}
