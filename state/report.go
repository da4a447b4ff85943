package state

import (
	"errors"
	"sort"
	"time"
)

// ViewStatus is one mailbox view as `status` shows it: its position, in the report's encoding.
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
	// from a running crawl's snapshot exactly as from the state file.
	PassEnd  *time.Time `json:"pass_end,omitempty"`
	FullDone *time.Time `json:"full_pass_done,omitempty"`
}

// Report is what a state file says, as `status` shows it and as a running crawl's snapshot
// carries it (WriteSnapshot).
type Report struct {
	// V is the snapshot encoding's version in a snapshot file; zero elsewhere (ReadSnapshot
	// clears it once checked).
	V         int          `json:"v,omitempty"`
	StatePath string       `json:"state_path"`
	Damage    string       `json:"damage,omitempty"` // what Check found wrong with the file
	FullSince *time.Time   `json:"full_recrawl_pending_since,omitempty"`
	Views     []ViewStatus `json:"views"`
	Failures  []Failure    `json:"failures"`
	Runs      []RunRecord  `json:"runs"`
	// Shard is "i/n" when this state file belongs to one shard of a sharded crawl.
	Shard string `json:"shard,omitempty"`
	// NoCrawlYet: no crawl has run with this state file: it does not exist, or it exists
	// (`check` creates it) and holds neither a run nor a mailbox view.
	NoCrawlYet bool `json:"no_crawl_yet,omitempty"`
	// Snapshot is set when the report comes from a running crawl's snapshot.
	Snapshot *SnapshotInfo `json:"snapshot,omitempty"`
}

// SnapshotInfo says where a report came from when it is a running crawl's snapshot.
type SnapshotInfo struct {
	Written    time.Time `json:"written"`
	Age        string    `json:"age,omitempty"` // filled by the reader
	PID        int       `json:"pid"`
	ViewsDone  int       `json:"views_done"`
	ViewsTotal int       `json:"views_total"`
	Messages   int64     `json:"messages_indexed"`
}

// ReportRuns is how many of the newest run summaries a Report holds.
const ReportRuns = 10

// EmptyLists makes the lists of the report empty rather than absent, so that its JSON has []
// where a list belongs, before the first crawl too, and `jq '.views[]'` never fails.
func (r *Report) EmptyLists() {
	if r.Views == nil {
		r.Views = []ViewStatus{}
	}
	if r.Failures == nil {
		r.Failures = []Failure{}
	}
	if r.Runs == nil {
		r.Runs = []RunRecord{}
	}
}

// Report fills rep (its StatePath and Shard set by the caller) with what the file holds; with
// check it first checks the whole file page by page, and damage that Check finds is put in
// Damage rather than returned, so that the rest is still shown. A running crawl's own store
// does not check: bbolt's check reads the free list without the writer's lock, which races
// with the crawl's commits (and it is slow).
func (s *Store) Report(rep Report, check bool) (Report, error) {
	if check {
		if err := s.Check(); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return rep, err
			}
			rep.Damage = err.Error()
		}
	}
	since, pending, err := s.FullSince()
	if err != nil {
		return rep, err
	}
	if pending {
		rep.FullSince = &since
	}
	positions, err := s.Positions()
	if err != nil {
		return rep, err
	}
	failures, err := s.Failures(nil)
	if err != nil {
		return rep, err
	}
	perKey := map[Key]int{}
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
	// Decoding makes every string of a record valid UTF-8 (bytes that are not are replaced by
	// U+FFFD), so that the report always encodes.
	runs, err := s.Runs(ReportRuns)
	if err != nil {
		return rep, err
	}
	rep.Runs = append(rep.Runs, runs...)
	// `check` creates the state file before any crawl: whether a crawl has run is told by the
	// run history (and, for a first crawl killed before its summary, by the views it left).
	rep.NoCrawlYet = len(runs) == 0 && len(positions) == 0 && !pending
	return rep, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
