package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/state"
)

// ViewStatus is one mailbox view as `status` shows it.
type ViewStatus struct {
	Mailbox     string     `json:"mailbox"`
	View        string     `json:"view"`
	Token       *time.Time `json:"delta_token,omitempty"`
	LastRun     *time.Time `json:"last_run,omitempty"`
	Indexed     int64      `json:"documents_indexed"`
	Failures    int        `json:"failures"`
	PassPending bool       `json:"pass_pending"`
	FullPending bool       `json:"full_pass_pending"`
	ResumeAt    *time.Time `json:"resume_at,omitempty"`
	// PassEnd and FullDone complete the position, so that plan can decide a view's window
	// from a running crawl's snapshot exactly as from the state file (see snapshotState).
	PassEnd  *time.Time `json:"pass_end,omitempty"`
	FullDone *time.Time `json:"full_pass_done,omitempty"`
}

// StatusReport is what `status` shows, and what a running crawl writes as its snapshot.
type StatusReport struct {
	StatePath string            `json:"state_path"`
	Damage    string            `json:"damage,omitempty"` // what Check found wrong with the file`
	FullSince *time.Time        `json:"full_recrawl_pending_since,omitempty"`
	Views     []ViewStatus      `json:"views"`
	Failures  []state.Failure   `json:"failures"`
	Runs      []json.RawMessage `json:"runs"`
	// Alerts are the alert poller's cursors, from its own state file; absent when it never ran.
	Alerts     []alerts.CursorStatus `json:"alerts,omitempty"`
	AlertsNote string                `json:"alerts_note,omitempty"`
	// AlertsError: the alerts state file could not be read (damaged, unreadable). The crawl's
	// part is shown all the same; the exit code is 1.
	AlertsError string `json:"alerts_error,omitempty"`
	// Shard is "i/n" when this state file belongs to one shard of a sharded crawl.
	Shard string `json:"shard,omitempty"`
	// NoCrawlYet: no crawl has run with this state file: it does not exist, or it exists
	// (`check` creates it) and holds neither a run nor a mailbox view.
	NoCrawlYet bool `json:"no_crawl_yet,omitempty"`
	// Snapshot is set when the report comes from a running crawl's snapshot.
	Snapshot *SnapshotInfo `json:"snapshot,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// EmptyLists makes the lists of the report empty rather than absent, so that `status --json`
// has [] where a list belongs, before the first crawl too, and `jq '.views[]'` never fails.
func (r *StatusReport) EmptyLists() {
	if r.Views == nil {
		r.Views = []ViewStatus{}
	}
	if r.Failures == nil {
		r.Failures = []state.Failure{}
	}
	if r.Runs == nil {
		r.Runs = []json.RawMessage{}
	}
}

// statusLockWait bounds how long status waits for a running crawl to release the state file
// before it falls back to the crawl's snapshot.
const statusLockWait = 500 * time.Millisecond

// Status reads the state file, or, when no crawl has run yet, says so, or, when a crawl
// holds the file, reads that crawl's snapshot. A damaged file gives a report with Damage set
// and exit code 1.
//
// Status reads local files only and needs no credentials; the alerts part of the report is
// the caller's to fill.
func Status(cfg *config.Config, shard crawler.Shard) (StatusReport, Code, error) {
	path := cfg.State.Path
	rep := StatusReport{StatePath: path, Shard: shard.String()}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		rep.NoCrawlYet = true
		return rep, CodeOK, nil
	}
	st, err := state.Open(path, state.Options{ReadOnly: true, LockTimeout: min(statusLockWait, cfg.State.LockTimeout.D())})
	if errors.Is(err, state.ErrLocked) {
		snap, serr := readSnapshot(SnapshotPath(path))
		if serr != nil {
			return rep, CodeFatal, fmt.Errorf("%w; and the running crawl's snapshot could not be read: %v", err, serr)
		}
		snap.Snapshot.Age = time.Since(snap.Snapshot.Written).Round(time.Second).String()
		return snap, CodeOK, nil
	}
	if err != nil {
		return rep, CodeFatal, err
	}
	defer st.Close()
	return fillStatus(st, rep, true)
}

// fillStatus reads everything status shows from an open store; with check it first checks the
// whole file page by page. A running crawl's snapshot does not: bbolt's check reads the free
// list without the writer's lock, which races with the crawl's own commits (and it is slow);
// status checks the file whenever no run holds it.
func fillStatus(st *state.Store, rep StatusReport, check bool) (StatusReport, Code, error) {
	// Damage that no read below meets would otherwise go unnoticed until a crawl commits over
	// it; the report is still printed, with the damage in it, and the exit code says so.
	exit := CodeOK
	if !check {
		return fillViews(st, rep, exit)
	}
	if err := st.Check(); err != nil {
		if !errors.Is(err, state.ErrCorrupt) {
			return rep, CodeFatal, err
		}
		rep.Damage = err.Error()
		exit = CodeFatal
	}
	return fillViews(st, rep, exit)
}

func fillViews(st *state.Store, rep StatusReport, exit Code) (StatusReport, Code, error) {
	since, pending, err := st.FullSince()
	if err != nil {
		return rep, CodeFatal, err
	}
	if pending {
		rep.FullSince = &since
	}
	positions, err := st.Positions()
	if err != nil {
		return rep, CodeFatal, err
	}
	failures, err := st.Failures(nil)
	if err != nil {
		return rep, CodeFatal, err
	}
	perKey := map[state.Key]int{}
	for _, f := range failures {
		perKey[f.Key]++
	}
	for k, p := range positions {
		v := ViewStatus{Mailbox: k.Mailbox, View: k.View, Token: timePtr(p.Token), LastRun: timePtr(p.LastRun),
			Indexed: p.Indexed, Failures: perKey[k]}
		if p.Pass != nil {
			v.PassPending, v.FullPending = true, p.Pass.Full
			v.ResumeAt, v.PassEnd = timePtr(p.Pass.Low), timePtr(p.Pass.End)
		}
		v.FullDone = timePtr(p.FullDone)
		rep.Views = append(rep.Views, v)
	}
	sort.Slice(rep.Views, func(i, j int) bool {
		if rep.Views[i].Mailbox != rep.Views[j].Mailbox {
			return rep.Views[i].Mailbox < rep.Views[j].Mailbox
		}
		return rep.Views[i].View < rep.Views[j].View
	})
	rep.Failures = failures
	runs, err := st.Runs(10)
	if err != nil {
		return rep, CodeFatal, err
	}
	for _, r := range runs {
		rep.Runs = append(rep.Runs, validJSON(r))
	}
	// `check` creates the state file before any crawl: whether a crawl has run is told by the
	// run history (and, for a first crawl killed before its summary, by the views it left).
	rep.NoCrawlYet = len(runs) == 0 && len(positions) == 0 && !pending
	return rep, exit, nil
}

// validJSON returns a stored run summary as JSON that is valid UTF-8. The store checked that
// it is JSON; a damaged record may still hold bytes that are not UTF-8, which are replaced
// (inside strings, where alone JSON allows them to be, U+FFFD keeps the JSON valid).
func validJSON(raw []byte) json.RawMessage {
	if utf8.Valid(raw) {
		return raw
	}
	return json.RawMessage(strings.ToValidUTF8(string(raw), "\uFFFD"))
}
