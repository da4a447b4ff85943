package alerts

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
)

// The cursor rules, in one place (docs/alerts.md repeats them):
//
// Time-window sources (the four security logs and the threat feed) read a window [From, To]
// oldest first, page by page. To is the time the window started; From is the previous
// window's end minus alerts.overlap (or, on a source's first run, now minus alerts.lookback,
// clamped to what the endpoint keeps).
//
//   - While a window is being read, the cursor holds the window and the token of the next
//     page. It is saved only when every alert of every page before that token has been
//     acknowledged by Elasticsearch (or failed for good and was counted), so a killed poll
//     resumes at the first page not fully acknowledged.
//   - When the last page has been read (the source gave no next token) and every alert of the
//     window is acknowledged, the cursor becomes Since = To, the window's end. Nothing else
//     moves it: not an empty page (an empty page with a next token is followed; an empty last
//     page ends the window, which is then complete), not the clock, not a record count.
//     Reading the whole window is what entitles the cursor to its end; events the source
//     records late (up to alerts.overlap after their time) are caught because the next
//     window starts alerts.overlap before Since. Ids make the re-read harmless.
//   - A saved page token that the source no longer accepts restarts its window from From.
//
// Token sources (SIEM batch per event type, the SIEM stream) persist the source's own
// @nextPage as the durable cursor, again only once everything read before it is acknowledged.
// They need no overlap: the token is a position in Mimecast's event log, not a time.
//
// Parked alerts: an alert that Elasticsearch refused for good (a mapping conflict, say), or a
// threat event whose details could not be fetched, does not hold its source back: it is
// parked in the cursor (Pending, written in the same update as the position that passes it)
// and tried again at the start of every later pass, written over (op index) once it can be
// written whole. Until then it is counted as alerts_pending in every pass summary and in
// status, and the pass fails. A cursor never passes an alert that is neither acknowledged
// nor parked.
type cursor struct {
	V int `json:"v"`
	// Since: every event before Since minus the overlap that the source had recorded when its
	// window was read is acknowledged. Zero before the first complete window.
	Since time.Time `json:"since,omitzero"`
	// From and To are the window being read; zero when none is in progress.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Token is the next page to read: in the window (time-window sources) or the stream's
	// @nextPage (token sources).
	Token string `json:"token,omitempty"`
	// Latest is the newest event time acknowledged so far, for status only.
	Latest time.Time `json:"latest,omitzero"`
	// Pending are the alerts parked behind the position, sorted by id.
	Pending []parked `json:"pending,omitempty"`
	// PendingFiles are the SIEM batch files parked behind the position (token sources).
	PendingFiles []parkedFile `json:"pendingFiles,omitempty"`

	// Status fields: written with the position but never moving it.
	LastPoll   time.Time `json:"lastPoll,omitzero"`
	Forbidden  bool      `json:"forbidden,omitempty"`
	Permission string    `json:"permission,omitempty"`
	LastError  string    `json:"lastError,omitempty"`
}

// Cursor versions. Version 2 adds parked alerts and files; a cursor holding none is still
// written as version 1, so that an older mimecrawl reads it, and one holding some is
// refused by an older mimecrawl (which would drop them silently) instead of misread.
const (
	cursorVersion       = 1
	cursorVersionParked = 2
)

func decodeCursor(name, s string) (cursor, error) {
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return cursor{}, fmt.Errorf("cursor %s: %w", name, err)
	}
	if c.V != cursorVersion && c.V != cursorVersionParked {
		return cursor{}, fmt.Errorf("cursor %s: version %d, this mimecrawl reads %d and %d", name, c.V, cursorVersion, cursorVersionParked)
	}
	if !c.From.IsZero() && c.To.Before(c.From) {
		return cursor{}, fmt.Errorf("cursor %s: window ends %s before it starts %s", name, c.To, c.From)
	}
	return c, nil
}

func (c cursor) encode() string {
	c.V = cursorVersion
	if len(c.Pending) > 0 || len(c.PendingFiles) > 0 {
		c.V = cursorVersionParked
	}
	b, _ := json.Marshal(c) // only times, strings and booleans: cannot fail
	return string(b)
}

// parked is one alert parked in a cursor: its record as the source sent it, why it is
// parked, and how many passes tried it.
type parked struct {
	ID       string          `json:"id"`
	Record   json.RawMessage `json:"record"`
	Reason   string          `json:"reason"`
	Attempts int             `json:"attempts"`
}

// parkedFile is a SIEM batch file that could not be read (malformed, cut short, expired
// even with a fresh URL, or its download failed after the client's retries). Pre-signed URLs
// expire, so it is found again by the page that listed it: that page's request (its token,
// or for the first page its start date) and the file's place in the page.
type parkedFile struct {
	Token    string    `json:"token,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	Index    int       `json:"index"`
	Attempts int       `json:"attempts"`
	Reason   string    `json:"reason"`
}

func (f parkedFile) key() string {
	return fmt.Sprintf("%s|%s|%d", f.Token, f.Start.UTC().Format(time.RFC3339), f.Index)
}

// maxFileReads is how many passes read a batch file that cannot be read before it is
// skipped for good (counted and warned): neither a stall on one file nor a loss at its
// first failure.
const maxFileReads = 3

// Reasons an alert is parked.
const (
	parkedRefused = "refused by elasticsearch"
	parkedDetails = "threat details unavailable"
)

// maxPending bounds the alerts one cursor parks; beyond it an alert holds the cursor
// instead, so that a state file cannot grow without bound.
const maxPending = 10_000

// samePosition reports whether a and b say the same thing, status fields aside.
func samePosition(a, b cursor) bool {
	return a.Since.Equal(b.Since) && a.From.Equal(b.From) && a.To.Equal(b.To) && a.Token == b.Token && a.Latest.Equal(b.Latest) &&
		slices.EqualFunc(a.Pending, b.Pending, func(x, y parked) bool { return x.ID == y.ID && x.Attempts == y.Attempts && x.Reason == y.Reason }) &&
		slices.EqualFunc(a.PendingFiles, b.PendingFiles, func(x, y parkedFile) bool { return x.key() == y.key() && x.Attempts == y.Attempts })
}

// describe says where the cursor stands, for summaries and status.
func (c cursor) describe() string {
	switch {
	case !c.From.IsZero():
		return fmt.Sprintf("in window %s..%s", c.From.UTC().Format(time.RFC3339), c.To.UTC().Format(time.RFC3339))
	case !c.Since.IsZero():
		return "since " + c.Since.UTC().Format(time.RFC3339)
	case c.Token != "":
		if !c.Latest.IsZero() {
			return "at token, latest event " + c.Latest.UTC().Format(time.RFC3339)
		}
		return "at token"
	}
	return "not started"
}

// tracker decides when a cursor may be saved: it holds the units of work (pages) of one
// pass in reading order, each with the cursor that is true once it and every unit before it
// are acknowledged, and the number of its documents still in flight. Callbacks from the
// index writer arrive out of order and on other goroutines; the committed prefix only grows.
type tracker struct {
	mu    sync.Mutex
	units []*unit // not yet committed, in reading order
	// blocked is the first retryable failure: the cursor never passes its unit in this pass.
	blocked error
	// docs counts the documents of every unit still awaiting their callback.
	docs int
	// progress gets a token whenever a callback arrives (never blocks).
	progress chan struct{}
}

type unit struct {
	pending int
	closed  bool
	failed  bool
	cursor  cursor
	latest  time.Time
	// parked are alerts of this unit parked instead of acknowledged; resolves the ids of
	// parked alerts this unit tried again (parked again, if they failed again).
	parked   []parked
	resolves []string
	// files: the same for SIEM batch files, by parkedFile.key.
	parkedFiles  []parkedFile
	resolveFiles []string
}

// popped is what ready hands over: the cursor the popped units make true and what they
// parked and resolved, in order.
type popped struct {
	c             cursor
	park          []parked
	resolved      []string
	files         []parkedFile
	filesResolved []string
}

func newTracker() *tracker { return &tracker{progress: make(chan struct{}, 1)} }

// open starts a unit whose cursor becomes committable when it is complete.
func (t *tracker) open(c cursor) *unit {
	u := &unit{cursor: c}
	t.mu.Lock()
	t.units = append(t.units, u)
	t.mu.Unlock()
	return u
}

// expect counts one more document of u in flight; the returned function must be called
// with its result exactly once (or undo once if the document was never accepted).
func (t *tracker) expect(u *unit, at time.Time, onResult func(index.Result)) (done func(index.Result), undo func()) {
	t.mu.Lock()
	u.pending++
	t.docs++
	t.mu.Unlock()
	done = func(r index.Result) {
		if onResult != nil {
			onResult(r)
		}
		t.mu.Lock()
		u.pending--
		t.docs--
		switch {
		case r.Err != nil && !r.Permanent:
			u.failed = true
			if t.blocked == nil {
				t.blocked = r.Err
			}
		case r.Err == nil && at.After(u.latest):
			u.latest = at
		}
		t.mu.Unlock()
		select {
		case t.progress <- struct{}{}:
		default:
		}
	}
	undo = func() {
		t.mu.Lock()
		u.pending--
		t.docs--
		t.mu.Unlock()
	}
	return done, undo
}

// fail marks u as failed: the cursor never passes it in this pass.
func (t *tracker) fail(u *unit, err error) {
	t.mu.Lock()
	u.failed = true
	if t.blocked == nil {
		t.blocked = err
	}
	t.mu.Unlock()
}

// park records an alert of u as parked: the cursor passes it with u, holding it in Pending.
func (t *tracker) park(u *unit, p parked) {
	t.mu.Lock()
	u.parked = append(u.parked, p)
	t.mu.Unlock()
}

// parkFile records a batch file of u as parked.
func (t *tracker) parkFile(u *unit, f parkedFile) {
	t.mu.Lock()
	u.parkedFiles = append(u.parkedFiles, f)
	t.mu.Unlock()
}

// close says that every document of u has been handed over.
func (t *tracker) close(u *unit) {
	t.mu.Lock()
	u.closed = true
	t.mu.Unlock()
}

// ready pops the complete prefix of units and returns the cursor of the last one popped,
// with Latest raised to the newest acknowledged event time, and the popped units' parked
// alerts and resolved ids in order; ok is false when nothing was popped.
func (t *tracker) ready(prevLatest time.Time) (p popped, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	latest := prevLatest
	for len(t.units) > 0 {
		u := t.units[0]
		if !u.closed || u.pending > 0 || u.failed {
			break
		}
		if u.latest.After(latest) {
			latest = u.latest
		}
		p.resolved = append(p.resolved, u.resolves...)
		p.park = append(p.park, u.parked...)
		p.filesResolved = append(p.filesResolved, u.resolveFiles...)
		p.files = append(p.files, u.parkedFiles...)
		p.c, ok = u.cursor, true
		t.units[0] = nil
		t.units = t.units[1:]
	}
	if ok && latest.After(p.c.Latest) {
		p.c.Latest = latest
	}
	return p, ok
}

// inFlight reports whether any document is still awaiting its callback.
func (t *tracker) inFlight() bool {
	return t.docsInFlight() > 0
}

// docsInFlight returns how many documents are awaiting their callback.
func (t *tracker) docsInFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.docs
}

// failure returns the first retryable failure, if any.
func (t *tracker) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blocked
}
