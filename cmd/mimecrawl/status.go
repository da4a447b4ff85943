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
	// Shard is "i/n" when this state file belongs to one shard of a sharded crawl.
	Shard string `json:"shard,omitempty"`
	// NoCrawlYet: the state file does not exist; nothing has been crawled with it.
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
	if rep.Alerts, err = a.alertsStatus(); err != nil {
		if !errors.Is(err, state.ErrLocked) {
			fmt.Fprintf(a.stderr, "mimecrawl status: alerts: %v\n", err)
			return exitFatal
		}
		rep.AlertsNote = "the alerts poller holds its state file (it is running); its cursors are not shown"
	}
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
	return exit
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
			v.ResumeAt = timePtr(p.Pass.Low)
		}
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
	if rep.NoCrawlYet {
		fmt.Fprintf(a.stdout, "state file %s does not exist: no crawl has run yet. `mimecrawl plan` shows what the first crawl would do.\n", rep.StatePath)
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
	fmt.Fprintln(tw, "MAILBOX\tVIEW\tDELTA TOKEN\tLAST RUN\tINDEXED\tFAILURES\tPENDING")
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
			fmt.Fprintf(a.stdout, "  %s  %-5s full=%-5v %6.1fs  exit %d  %d messages, %d attachments, %d deleted, %d failed views\n",
				s.Started.Format(time.RFC3339), s.Command, s.Full, s.Seconds, s.ExitCode, s.Messages, s.Attachments, s.Deleted, s.ViewsFailed)
			fmt.Fprintf(a.stdout, "    quota %s\n", sanitize(s.quotaText()))
		}
	}
}
