package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/state"
)

type viewStatus struct {
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

type statusReport struct {
	StatePath string            `json:"state_path"`
	Damage    string            `json:"damage,omitempty"` // what Check found wrong with the file`
	FullSince *time.Time        `json:"full_recrawl_pending_since,omitempty"`
	Views     []viewStatus      `json:"views"`
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
	Snapshot *snapshotInfo `json:"snapshot,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// status reads the state file only, and needs no credentials. bbolt lets one writer hold the
// file, so while a crawl runs status reads the snapshot the crawl writes at each checkpoint
// (see writeSnapshot) and says how old it is.
func (a *app) status(asJSON bool) int {
	rep, exit, err := a.statusReport()
	if err != nil {
		fmt.Fprintf(a.stderr, "mimecrawl status: %v\n", err)
		return exitFatal
	}
	if rep.Damage != "" {
		fmt.Fprintf(a.stderr, "mimecrawl status: %s\n", sanitize(rep.Damage))
	}
	// The alerts state file is the poller's, apart from the crawl's: whatever is wrong with it
	// is said in the alerts part and never hides the crawl's.
	if rep.Alerts, err = a.alertsStatus(); err != nil {
		switch {
		case errors.Is(err, state.ErrLocked):
			rep.AlertsNote = "the alerts poller holds its state file (it is running); its cursors are not shown"
		case errors.Is(err, state.ErrEmpty):
			rep.AlertsNote = "the alerts state file is empty: no pass has committed anything yet"
		default:
			rep.AlertsError = err.Error()
			fmt.Fprintf(a.stderr, "mimecrawl status: alerts: %s\n", sanitize(rep.AlertsError))
			exit = worst(exit, exitFatal)
		}
	}
	rep.emptyLists()
	if asJSON {
		// encoding/json makes every string valid UTF-8; the raw run summaries are made so by
		// validJSON.
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(a.stderr, "mimecrawl status: encode the report: %v\n", err)
			return exitFatal
		}
		return exit
	}
	a.printStatus(rep)
	printAlertsStatus(a.stdout, a.cfg.AlertsStatePath(), rep.Alerts)
	if rep.AlertsNote != "" {
		fmt.Fprintf(a.stdout, "\nalerts: %s\n", rep.AlertsNote)
	}
	if rep.AlertsError != "" {
		fmt.Fprintf(a.stdout, "\nalerts (%s): cannot be read: %s\n", a.cfg.AlertsStatePath(), sanitize(rep.AlertsError))
	}
	return exit
}

// emptyLists makes the lists of the report empty rather than absent, so that `status --json`
// has [] where a list belongs, before the first crawl too, and `jq '.views[]'` never fails.
func (r *statusReport) emptyLists() {
	if r.Views == nil {
		r.Views = []viewStatus{}
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

// statusReport reads the state file, or, when no crawl has run yet, says so, or, when a crawl
// holds the file, reads that crawl's snapshot. A damaged file gives a report with Damage set
// and exit code 1.
func (a *app) statusReport() (statusReport, int, error) {
	path := a.cfg.State.Path
	rep := statusReport{StatePath: path, Shard: a.shard.String()}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		rep.NoCrawlYet = true
		return rep, exitOK, nil
	}
	st, err := state.Open(path, state.Options{ReadOnly: true, LockTimeout: min(statusLockWait, a.cfg.State.LockTimeout.D())})
	if errors.Is(err, state.ErrLocked) {
		snap, serr := readSnapshot(snapshotPath(path))
		if serr != nil {
			return rep, exitFatal, fmt.Errorf("%w; and the running crawl's snapshot could not be read: %v", err, serr)
		}
		snap.Snapshot.Age = time.Since(snap.Snapshot.Written).Round(time.Second).String()
		return snap, exitOK, nil
	}
	if err != nil {
		return rep, exitFatal, err
	}
	defer st.Close()
	return fillStatus(st, rep, true)
}

// fillStatus reads everything status shows from an open store; with check it first checks the
// whole file page by page. A running crawl's snapshot does not: bbolt's check reads the free
// list without the writer's lock, which races with the crawl's own commits (and it is slow);
// status checks the file whenever no run holds it.
func fillStatus(st *state.Store, rep statusReport, check bool) (statusReport, int, error) {
	// Damage that no read below meets would otherwise go unnoticed until a crawl commits over
	// it; the report is still printed, with the damage in it, and the exit code says so.
	exit := exitOK
	if !check {
		return fillViews(st, rep, exit)
	}
	if err := st.Check(); err != nil {
		if !errors.Is(err, state.ErrCorrupt) {
			return rep, exitFatal, err
		}
		rep.Damage = err.Error()
		exit = exitFatal
	}
	return fillViews(st, rep, exit)
}

func fillViews(st *state.Store, rep statusReport, exit int) (statusReport, int, error) {
	since, pending, err := st.FullSince()
	if err != nil {
		return rep, exitFatal, err
	}
	if pending {
		rep.FullSince = &since
	}
	positions, err := st.Positions()
	if err != nil {
		return rep, exitFatal, err
	}
	failures, err := st.Failures(nil)
	if err != nil {
		return rep, exitFatal, err
	}
	perKey := map[state.Key]int{}
	for _, f := range failures {
		perKey[f.Key]++
	}
	for k, p := range positions {
		v := viewStatus{Mailbox: k.Mailbox, View: k.View, Token: timePtr(p.Token), LastRun: timePtr(p.LastRun),
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
		return rep, exitFatal, err
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

// sanitize makes text from the state file safe to print: valid UTF-8, without control
// characters that would move the cursor or rewrite the terminal.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' {
			return '\uFFFD'
		}
		return r
	}, s)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (a *app) printStatus(rep statusReport) {
	if rep.Shard != "" {
		fmt.Fprintf(a.stdout, "shard %s\n", rep.Shard)
	}
	if rep.NoCrawlYet && rep.Snapshot == nil {
		fmt.Fprintf(a.stdout, "no crawl has run yet (state file %s). `mimecrawl plan` shows what the first crawl would do.\n", rep.StatePath)
		return
	}
	if sn := rep.Snapshot; sn != nil {
		fmt.Fprintf(a.stdout, "a crawl is running (pid %d holds the state file): this is its snapshot of %s, %s old\n",
			sn.PID, sn.Written.UTC().Format(time.RFC3339), sn.Age)
		if sn.ViewsTotal > 0 {
			fmt.Fprintf(a.stdout, "running crawl: views %d/%d, %d messages indexed so far\n", sn.ViewsDone, sn.ViewsTotal, sn.Messages)
		}
	}
	fmt.Fprintf(a.stdout, "state file %s: %d mailbox views, %d failed documents\n", rep.StatePath, len(rep.Views), len(rep.Failures))
	if rep.FullSince != nil {
		fmt.Fprintf(a.stdout, "full re-crawl pending since %s: the next crawl goes on with it\n", fmtTime(rep.FullSince))
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
	// DOCUMENTS counts what each view indexed over all runs, messages and attachments alike;
	// the per-run numbers are under "recent runs".
	fmt.Fprintln(tw, "MAILBOX\tVIEW\tDELTA TOKEN\tLAST RUN\tDOCUMENTS\tFAILURES\tPENDING")
	for _, v := range rep.Views {
		pending := "-"
		if v.PassPending {
			pending = "pass"
			if v.FullPending {
				pending = "full pass"
			}
			if v.ResumeAt != nil {
				pending += " (resume at " + fmtTime(v.ResumeAt) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", sanitize(v.Mailbox), sanitize(v.View), fmtTime(v.Token), fmtTime(v.LastRun), v.Indexed, v.Failures, pending)
	}
	tw.Flush()
	fmt.Fprintln(a.stdout, "(DOCUMENTS: messages and attachments indexed over all runs)")
	if len(rep.Failures) > 0 {
		fmt.Fprintln(a.stdout, "\nfailed documents:")
		for _, f := range rep.Failures {
			what := "message"
			if f.AttachmentID != "" {
				what = "attachment " + f.AttachmentID + " of message"
			}
			fmt.Fprintln(a.stdout, sanitize(fmt.Sprintf("  %s %s %s %s: %d %s (%s)", f.Key.Mailbox, f.Key.View, what, f.MessageID, f.Status, f.Reason, f.At.Format(time.RFC3339))))
		}
	}
	if len(rep.Runs) > 0 {
		fmt.Fprintln(a.stdout, "\nrecent runs:")
		for _, raw := range rep.Runs {
			var s Summary
			if json.Unmarshal(raw, &s) != nil {
				continue
			}
			fmt.Fprintf(a.stdout, "  %s  %-5s full=%-5v %6.1fs  exit %d  %s\n", s.Started.Format(time.RFC3339), s.Command, s.Full, s.Seconds, s.ExitCode, runLine(s))
			if s.TextFailed > 0 {
				fmt.Fprintf(a.stdout, "    %s\n", textMissLine(s.TextFailed, s.TextMisses))
			}
			fmt.Fprintf(a.stdout, "    quota %s\n", sanitize(s.quotaText()))
		}
	}
}

// runLine describes one recorded run: what it indexed and how its views ended. A run stopped
// by a signal reads "interrupted", not the cancellation error that stopping it produced.
func runLine(s Summary) string {
	var b strings.Builder
	if s.Interrupted {
		b.WriteString("interrupted, ")
	}
	fmt.Fprintf(&b, "%d messages, %s, %d deleted, views %d complete, %d failed, %d interrupted",
		s.Messages, plural(s.Attachments, "attachment"), s.Deleted, s.ViewsComplete, s.ViewsFailed, s.ViewsInterrupted)
	if s.Error != "" && !s.Interrupted {
		fmt.Fprintf(&b, "; error: %s", sanitize(s.Error))
	}
	return b.String()
}
