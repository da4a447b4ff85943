package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// The indices of alerts and alert groups; the command ensures them (Kinds) before a pass.
var (
	AlertsKind = index.NewKind(index.Spec{Name: "alerts", DataStream: Dataset, Mapping: AlertsMapping})
	GroupsKind = index.NewKind(index.Spec{Name: "alert-groups", Mapping: GroupsMapping})
)

// CursorName returns the state key of a source's cursor; SIEM keeps one per event type
// (batch) or one for the stream. The "alerts/" prefix keeps them apart from anything else a
// state file may hold one day.
func CursorName(src Source, sub string) string {
	if sub == "" {
		return "alerts/" + string(src)
	}
	return "alerts/" + string(src) + "/" + sub
}

// stream is one pass over one cursor: a source, or one SIEM event type. It owns the tracker
// of that pass and is the only writer of its cursor.
type stream struct {
	p     *Poller
	src   Source
	spec  SourceSpec
	name  string
	c     *counters
	log   zerolog.Logger
	saved cursor // as stored
	tr    *tracker
	// pending are the parked alerts as of saved, by id (only commit changes them); parking
	// counts those parked in this pass on top, against maxPending.
	pending map[string]parked
	parking atomic.Int64
	// pendingFiles are the parked SIEM batch files as of saved, by key.
	pendingFiles map[string]parkedFile
	// warned: the unusable-record reasons already warned about in this pass (one line per
	// reason and pass, the count in the summary).
	warned map[string]bool
	// ids are the alert ids the data stream held when the pass began (nil without
	// Deps.Stream); namespace is data_stream.namespace.
	ids       IDSet
	namespace string
	// siemProduct and siemTypes are what a SIEM pass reads (source_siem.go): Cloud Gateway
	// and alerts.siem.types, or Cloud Integrated and its three types (source_siemci.go).
	siemProduct mimecast.SIEMProduct
	siemTypes   []string
}

func (p *Poller) openStream(src Source, name string, c *counters, log zerolog.Logger) (*stream, error) {
	s := &stream{p: p, src: src, name: name, c: c, log: log, tr: newTracker()}
	s.spec, _ = Spec(src)
	raw, ok, err := p.d.Cursors.Cursor(name)
	if err != nil {
		return nil, fmt.Errorf("read cursor %s: %w", name, err)
	}
	if ok {
		// A cursor that does not decode is not guessed at: the operator decides (status shows
		// it, and removing the alerts state file starts every source over).
		if s.saved, err = decodeCursor(name, raw); err != nil {
			return nil, fmt.Errorf("alerts state: %w", err)
		}
	}
	s.pending = make(map[string]parked, len(s.saved.Pending))
	for _, p := range s.saved.Pending {
		s.pending[p.ID] = p
	}
	s.parking.Store(int64(len(s.pending)))
	s.pendingFiles = make(map[string]parkedFile, len(s.saved.PendingFiles))
	for _, f := range s.saved.PendingFiles {
		s.pendingFiles[f.key()] = f
	}
	s.namespace = index.DefaultNamespace
	if p.d.Stream != nil {
		s.namespace = p.d.Stream.Namespace()
	}
	return s, nil
}

// streamIDs opens, at the first page of a pass that writes, the view of the ids the stream
// holds; the refresh it costs is paid once per pass and cursor.
func (s *stream) streamIDs(ctx context.Context) (IDSet, error) {
	if s.ids == nil && s.p.d.Stream != nil {
		ids, err := s.p.d.Stream.OpenIDs(ctx, s.spec.Kind)
		if err != nil {
			return nil, fmt.Errorf("read which alerts the data stream holds: %w", err)
		}
		s.ids = ids
	}
	return s.ids, nil
}

// written drops from the page the records the data stream holds already, counted as
// existing. op_type create alone would refuse them only in the backing index they went to:
// after a rollover an overlap re-read or a replay would write them a second time. Parked
// records tried again (retry) are instead removed first, so that their corrected version can
// be created: a data stream takes no write over a document.
func written[T any](ctx context.Context, s *stream, u *unit, kept page[T], retry bool) (page[T], error) {
	has, err := s.held(ctx, u, kept.keys, retry)
	if err != nil || len(has) == 0 {
		return kept, err
	}
	// New slices: the caller still hands every kept alert to the groups.
	n := len(kept.keys) - len(has)
	write := page[T]{recs: make([]T, 0, n), keys: make([]string, 0, n), raws: make([]json.RawMessage, 0, n)}
	for i, id := range kept.keys {
		if has[id] {
			s.c.existing.Add(1)
			continue
		}
		write.add(kept.recs[i], id, kept.raws[i])
	}
	return write, nil
}

// held returns which of ids the data stream holds already (written explains why), or, for
// parked documents tried again (retry), removes them first and returns none. A failure fails
// u: "unknown" is never "absent".
func (s *stream) held(ctx context.Context, u *unit, ids []string, retry bool) (map[string]bool, error) {
	set, err := s.streamIDs(ctx)
	if err != nil || set == nil {
		if err != nil {
			s.tr.fail(u, err)
		}
		return nil, err
	}
	if retry {
		if _, err := set.Remove(ctx, ids); err != nil {
			err = fmt.Errorf("remove parked %s before writing them again: %w", s.spec.Records, err)
			s.tr.fail(u, err)
			return nil, err
		}
		return nil, nil
	}
	has, err := set.Has(ctx, ids)
	if err != nil {
		err = fmt.Errorf("look up which %s the data stream holds: %w", s.spec.Records, err)
		s.tr.fail(u, err)
		return nil, err
	}
	return has, nil
}

// submitOptions say how submit treats a page's records.
type submitOptions struct {
	// prev, when not nil, holds the ids of the previous page: records with those ids are
	// repeats and dropped.
	prev map[string]bool
	// park names, by index in the page, records written now but parked until they can be
	// written whole (the reason; see cursor.go).
	park map[int]string
	// retry: the records are parked alerts tried again: written over (op index), and
	// parked again (one attempt more) if they fail again.
	retry map[string]int // id → attempts so far
}

// halted reports whether a read loop stops before its next page: with the context's error
// once it is done, or with none once the cursor cannot pass a failure (finish reports it).
func (s *stream) halted(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return true, err
	}
	return s.tr.failure() != nil, nil
}

// pageIDs is the set of a page's ids submit returns for the next page's repeat check: nil
// when there is no check (o.prev is nil).
func (o submitOptions) pageIDs(n int) map[string]bool {
	if o.prev == nil {
		return nil
	}
	return make(map[string]bool, n)
}

// tooLarge is the error of a record larger than alerts.max_record_size, or nil.
func (s *stream) tooLarge(raw json.RawMessage) error {
	if len(raw) > s.p.o.MaxRecordBytes {
		return recordError(ReasonTooLarge, "the record is %d bytes; alerts.max_record_size accepts at most %d", len(raw), s.p.o.MaxRecordBytes)
	}
	return nil
}

// repeat reports whether the record id was seen before, on the previous page (o.prev) or
// earlier on this one (ids), and counts it; else it adds id to ids. With ids nil (no check)
// nothing is a repeat.
func (s *stream) repeat(o submitOptions, ids map[string]bool, id string) bool {
	if ids == nil {
		return false
	}
	if o.prev[id] || ids[id] {
		s.c.repeats.Add(1)
		return true
	}
	ids[id] = true
	return false
}

// parkIf parks record i of the page, id, when o names it to be parked.
func (s *stream) parkIf(u *unit, o submitOptions, i int, id string, raw json.RawMessage) {
	if why := o.park[i]; why != "" {
		s.park(u, parked{ID: id, Record: raw, Reason: why, Attempts: o.retry[id] + 1})
	}
}

// writeOp is how a page's documents are written: created, or written over (index) when they
// are parked records tried again outside a data stream: the document may be there without
// what it lacked.
func (s *stream) writeOp(o submitOptions) index.Op {
	if o.retry != nil && s.p.d.Stream == nil {
		return index.OpIndex
	}
	return index.OpCreate
}

// submit normalises, decides, enriches and hands one page of records to the sink, every
// document counted in u. It returns the ids of this page's alerts when o.prev is not nil.
func (s *stream) submit(ctx context.Context, u *unit, recs []json.RawMessage, o submitOptions) (map[string]bool, error) {
	if s.spec.Records == RecordEvents {
		return s.submitEvents(ctx, u, recs, o)
	}
	ids := o.pageIDs(len(recs))
	decode := func(raw json.RawMessage) (Alert, string, error) {
		a, err := s.p.o.Normalize(s.src, raw)
		if err == nil && a.ID == "" {
			err = recordError(ReasonNoID, "the record gives no id")
		}
		return a, a.ID, err
	}
	decide := func(a *Alert) bool {
		d := s.p.d.Rules.Decide(a)
		s.c.filterErrors.Add(int64(d.EvalErrors))
		if !d.Keep {
			s.c.exclude(d.Reason)
		}
		return d.Keep
	}
	kept := pageRecords(s, u, recs, o, ids, decode, decide)
	if len(kept.recs) == 0 {
		return ids, nil
	}
	op := s.writeOp(o)
	// Groups get every kept alert (their merge is idempotent); the stream only those it lacks.
	groupAlerts := kept.recs
	write, err := written(ctx, s, u, kept, o.retry != nil)
	if err != nil {
		return ids, err
	}
	enr := s.p.enrich.lookup(ctx, write.recs)
	read := s.p.o.Now().UTC()
	for i := range write.recs {
		enr[i].Read = read
		a, raw := &write.recs[i], write.raws[i]
		id, attempts := a.ID, o.retry[a.ID]
		doc := index.Doc{Kind: AlertsKind, ID: id, Op: op, Body: withStream(AlertDocument(a, enr[i]), s.namespace)}
		// The callback holds the id, not a: a pointer into write would keep every normalised
		// alert of the slice (raw fields decoded) alive until its last acknowledgement.
		onResult := func(r index.Result) { s.alertResult(u, id, raw, attempts, r) }
		if err := s.add(ctx, u, a.Time, doc, onResult); err != nil {
			return ids, err
		}
	}
	// Groups are read, merged and written back (no script), each write acknowledged before
	// UpdateGroups returns; a failure holds this page's cursor like an unacknowledged alert.
	if s.p.d.Groups != nil {
		n, err := updateGroups(ctx, s.p.d.Groups, groupAlerts, &s.p.groups)
		s.c.groups.Add(int64(n))
		if err != nil {
			err = fmt.Errorf("update alert groups: %w", err)
			s.tr.fail(u, err)
			return ids, err
		}
	}
	return ids, nil
}

// page is what submit keeps of a page of records: each one decoded (alert or event), with
// its id and the record as it came (kept to park it if refused).
type page[T any] struct {
	recs []T
	keys []string
	raws []json.RawMessage
}

func (p *page[T]) add(rec T, id string, raw json.RawMessage) {
	p.recs, p.keys, p.raws = append(p.recs, rec), append(p.keys, id), append(p.raws, raw)
}

// pageRecords is what submit does alike for alerts and events before anything is written:
// each record of the page is counted, decoded (decode returns it with its id), and dropped
// when unusable (too large, malformed: counted by reason), a repeat, or refused by keep (nil
// keeps every one, which counts what it refuses); those o names are parked.
func pageRecords[T any](s *stream, u *unit, recs []json.RawMessage, o submitOptions, ids map[string]bool,
	decode func(json.RawMessage) (T, string, error), keep func(*T) bool) page[T] {
	kept := page[T]{recs: make([]T, 0, len(recs)), keys: make([]string, 0, len(recs)), raws: make([]json.RawMessage, 0, len(recs))}
	for i, raw := range recs {
		s.c.records.Add(1)
		var (
			rec T
			id  string
			err error
		)
		if err = s.tooLarge(raw); err == nil {
			rec, id, err = decode(raw)
		}
		if err != nil {
			s.unusable(err)
			continue
		}
		if s.repeat(o, ids, id) {
			continue
		}
		if keep != nil && !keep(&rec) {
			continue
		}
		s.parkIf(u, o, i, id, raw)
		kept.add(rec, id, raw)
	}
	return kept
}

// unusable counts a record that cannot be an alert, by reason, and warns once per reason
// and pass with the first record's detail (which names the field at fault).
func (s *stream) unusable(err error) {
	reason := ReasonNotObject
	var re *RecordError
	if errors.As(err, &re) {
		reason = re.Reason
	}
	s.c.malformed.Add(1)
	s.c.malformedBy(reason)
	if s.warned == nil {
		s.warned = map[string]bool{}
	}
	if !s.warned[reason] {
		s.warned[reason] = true
		s.log.Warn().Err(err).Str("reason", reason).Msg("record unusable, counted and skipped; further ones of this reason only counted in this pass")
	}
}

// park parks an alert with u, or, past maxPending, fails u so that the cursor holds.
func (s *stream) park(u *unit, p parked) {
	if s.parking.Add(1) > maxPending {
		s.tr.fail(u, fmt.Errorf("alert %s: %s, and %d alerts are parked already; the cursor stays before it", p.ID, p.Reason, maxPending))
		return
	}
	s.tr.park(u, p)
}

// maxInFlight bounds the documents of one pass (one cursor) handed to the sink and not yet
// acknowledged. Each holds its encoded body and its record (kept to park it if refused);
// the bulk writer alone bounds them only by its buffers (elasticsearch.bulk.workers ×
// flush_bytes, a few times that in heap), so a backlog long enough to fill those held more
// than a short one. Two submit batches, sent as one flush; half that lowered the heap by
// 1-2 MB and cost a fifth of the rate (docs/performance.md).
const maxInFlight = 2 * submitBatch

// add hands one document to the sink, counted in u. A document that could not be handed
// over fails u: the cursor must never pass a record that was not written. With maxInFlight
// documents of the pass unacknowledged it first asks the sink to send what it holds (a
// Flusher) and waits for their acknowledgements.
func (s *stream) add(ctx context.Context, u *unit, at time.Time, d index.Doc, onResult func(index.Result)) error {
	if s.tr.docsInFlight() >= maxInFlight {
		if f, ok := s.p.d.Sink.(Flusher); ok {
			if err := f.Flush(ctx); err != nil && ctx.Err() == nil {
				s.log.Debug().Err(err).Msg("flush of the alerts in flight failed; waiting for the writer")
			}
		}
		for s.tr.docsInFlight() >= maxInFlight {
			select {
			case <-s.tr.progress:
			case <-ctx.Done():
				err := fmt.Errorf("queue %s %s: %w", d.Kind, d.ID, ctx.Err())
				s.tr.fail(u, err)
				return err
			}
		}
	}
	done, undo := s.tr.expect(u, at, onResult)
	if err := s.p.d.Sink.Add(ctx, d, done); err != nil {
		undo()
		err = fmt.Errorf("queue %s %s: %w", d.Kind, d.ID, err)
		s.tr.fail(u, err)
		return err
	}
	return nil
}

// alertResult counts an alert's outcome. One that Elasticsearch refused for good is parked
// (it is called before the tracker counts the result, so the park lands in u first).
func (s *stream) alertResult(u *unit, id string, raw json.RawMessage, attempts int, r index.Result) {
	switch {
	case r.Err == nil && r.Existed:
		s.c.existing.Add(1)
	case r.Err == nil:
		s.c.indexed.Add(1)
	case r.Permanent:
		s.c.rejected.Add(1)
		if s.c.rejected.Load() <= 10 {
			s.log.Error().Err(r.Err).Int("status", r.Status).Str("alert", id).Msg("alert refused by elasticsearch; parked and tried again on the next passes")
		}
		s.park(u, parked{ID: id, Record: raw, Reason: parkedRefused + ": " + truncate(r.Err.Error(), 200), Attempts: attempts + 1})
	}
}

// commit saves the newest cursor below which everything is acknowledged (or parked), with
// the parked alerts it holds, if it moved.
func (s *stream) commit() error {
	pop, ok := s.tr.ready(s.saved.Latest)
	if !ok {
		return nil
	}
	c := pop.c
	for _, id := range pop.resolved {
		delete(s.pending, id)
	}
	for _, k := range pop.filesResolved {
		delete(s.pendingFiles, k)
	}
	for _, f := range pop.files {
		if old, ok := s.pendingFiles[f.key()]; ok && old.Attempts > f.Attempts {
			f.Attempts = old.Attempts
		}
		s.pendingFiles[f.key()] = f
	}
	c.PendingFiles = slices.SortedFunc(maps.Values(s.pendingFiles), func(a, b parkedFile) int { return strings.Compare(a.key(), b.key()) })
	if len(c.PendingFiles) == 0 {
		c.PendingFiles = nil
	}
	for _, p := range pop.park {
		// The same alert may be parked twice in a pass (retried, then re-read in the
		// overlap): its attempts only grow.
		if old, ok := s.pending[p.ID]; ok && old.Attempts > p.Attempts {
			p.Attempts = old.Attempts
		}
		s.pending[p.ID] = p
	}
	c.Pending = slices.SortedFunc(maps.Values(s.pending), func(a, b parked) int { return strings.Compare(a.ID, b.ID) })
	if len(c.Pending) == 0 {
		c.Pending = nil
	}
	if samePosition(c, s.saved) {
		return nil
	}
	c.LastPoll, c.Forbidden, c.Permission, c.LastError = s.saved.LastPoll, s.saved.Forbidden, s.saved.Permission, s.saved.LastError
	if err := s.p.d.Cursors.SetCursors(map[string]string{s.name: c.encode()}); err != nil {
		return fmt.Errorf("save cursor %s: %w", s.name, err)
	}
	s.saved = c
	s.log.Debug().Str("cursor", c.describe()).Msg("cursor saved")
	return nil
}

// finish waits for the documents in flight, saves the cursor they allow, and records the
// pass's status (last poll, 403, error) beside it. When ctx has ended it waits at most
// AckGrace. It returns passErr, or the first retryable document failure.
func (s *stream) finish(ctx context.Context, passErr error) error {
	var grace <-chan time.Time
	done := ctx.Done()
	if f, ok := s.p.d.Sink.(Flusher); ok && s.tr.inFlight() && ctx.Err() == nil {
		// A failed flush only means waiting for the writer's own flush, as without one.
		if err := f.Flush(ctx); err != nil {
			s.log.Debug().Err(err).Msg("flush of the alerts in flight failed; waiting for the writer")
		}
	}
	for s.tr.inFlight() {
		if err := s.commit(); err != nil {
			return errors.Join(passErr, err)
		}
		select {
		case <-s.tr.progress:
		case <-done:
			t := time.NewTimer(s.p.o.AckGrace)
			defer t.Stop()
			grace, done = t.C, nil
		case <-grace:
			s.log.Warn().Msg("stopped before elasticsearch acknowledged every alert; the next pass re-reads them")
			return s.saveStatus(errors.Join(passErr, errors.New("stopped with alerts unacknowledged")))
		}
	}
	if err := s.commit(); err != nil {
		return errors.Join(passErr, err)
	}
	err := passErr
	if f := s.tr.failure(); f != nil {
		err = errors.Join(err, fmt.Errorf("alerts not acknowledged by elasticsearch; the cursor stays before them: %w", f))
	}
	return s.saveStatus(err)
}

// saveStatus records the pass's outcome in the cursor without moving its position.
func (s *stream) saveStatus(err error) error {
	c := s.saved
	c.LastPoll = s.p.o.Now().UTC()
	c.Forbidden, c.Permission, c.LastError = false, "", ""
	var me *mimecast.Error
	switch {
	case err == nil:
	case mimecast.IsForbidden(err):
		c.Forbidden = true
		if errors.As(err, &me) {
			c.Permission = me.Permission
		}
	default:
		c.LastError = truncate(err.Error(), 300)
	}
	if serr := s.p.d.Cursors.SetCursors(map[string]string{s.name: c.encode()}); serr != nil {
		return errors.Join(err, fmt.Errorf("save status of %s: %w", s.name, serr))
	}
	s.saved = c
	s.c.pending.Add(int64(len(c.Pending)))
	s.c.filesPending.Add(int64(len(c.PendingFiles)))
	if len(c.Pending) > 0 {
		s.log.Warn().Int("alerts_pending", len(c.Pending)).Str("reason", c.Pending[0].Reason).Msg("alerts parked, tried again on the next pass")
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// windowFetch reads one page of a time-window source; park names, by index, the records to
// write now but park until they can be written whole (threat events without details).
type windowFetch func(ctx context.Context, from, to time.Time, token string) (pg mimecast.Page, park map[int]string, err error)

// firstStart is where a source with no cursor starts: Lookback ago, clamped to retention.
func (p *Poller) firstStart(now time.Time, ret time.Duration) time.Time {
	back := p.o.Lookback
	if ret > 0 && back > ret-retentionMargin {
		back = ret - retentionMargin
	}
	return now.Add(-back)
}

// readWindow reads the source's current window oldest first; see the cursor rules in
// cursor.go.
//
// cur is where the window starts: the saved cursor, or (readWindows) the end of the window
// just read. It returns whether the window was read to its end.
func (s *stream) readWindow(ctx context.Context, fetch windowFetch, cur cursor) (complete bool, err error) {
	now := s.p.o.Now().UTC()
	from, to, token := cur.From, cur.To, cur.Token
	resumed := token != ""
	if from.IsZero() {
		to = now
		if cur.Since.IsZero() {
			from = s.p.firstStart(now, retention(s.src, false))
		} else {
			from = cur.Since.Add(-s.p.o.Overlap)
		}
		if !from.Before(to) {
			return false, nil // the clock went back: nothing new to ask for
		}
	}
	pgr := newPager(s.p.o.MaxPages, token)
	for page := 0; ; page++ {
		if halt, err := s.halted(ctx); halt {
			return false, err
		}
		pg, park, err := fetch(ctx, from, to, token)
		if err != nil {
			if resumed && refusedToken(ctx, err) {
				// Tokens may not outlive a long pause (inferred); the window itself is
				// still right, and ids make re-reading its start harmless.
				s.log.Warn().Err(err).Msg("saved page token refused; re-reading its window from the start")
				token, resumed = "", false
				pgr = newPager(s.p.o.MaxPages, "")
				continue
			}
			return false, fmt.Errorf("page %d of window %s..%s: %w", page, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		resumed = false
		// The paging rule (paging.go) decides what the cursor becomes once this page is
		// acknowledged: the next token, the window's end, or no further than this page's
		// own token (a loop) or the window's start (records unread).
		verdict := pgr.page(len(pg.Records), pg.Next, pg.Total, false)
		var next cursor
		var stop error
		switch verdict {
		case pageFollow:
			next = cursor{Since: cur.Since, From: from, To: to, Token: pg.Next}
		case pageComplete:
			next = cursor{Since: to} // the window is complete once this unit is acknowledged
		case pageLooped:
			next = cursor{Since: cur.Since, From: from, To: to, Token: token}
			stop = pgr.loopError(pg.Next)
			s.c.pagesLooped.Add(1)
			s.log.Warn().Err(stop).Int("pages", pgr.pages).Msg("page tokens loop; the window is not passed")
		case pageUnread:
			next = cursor{Since: cur.Since, From: from, To: to}
			stop = pgr.unreadError()
			s.c.recordsUnread.Add(int64(pgr.unread()))
			s.log.Warn().Err(stop).Int("read", pgr.read).Int("stated", pgr.total).Msg("records stated but not read; the window is read again")
		}
		u := s.tr.open(next)
		_, err = s.submit(ctx, u, pg.Records, submitOptions{park: park})
		s.tr.close(u)
		if err != nil {
			return false, err
		}
		if err := s.commit(); err != nil {
			return false, err
		}
		if verdict != pageFollow {
			return verdict == pageComplete, stop
		}
		token = pg.Next
	}
}

// readWindows reads the source's saved window and, when that was a window resumed from an
// earlier pass, goes on with a new window up to now: a resumed pass does not leave what
// happened since the old window's end for the next interval.
func (s *stream) readWindows(ctx context.Context, fetch windowFetch) error {
	cur := s.saved
	resumed := !cur.From.IsZero()
	complete, err := s.readWindow(ctx, fetch, cur)
	if err != nil || !complete || !resumed {
		return err
	}
	_, err = s.readWindow(ctx, fetch, cursor{Since: cur.To, Latest: cur.Latest})
	return err
}

// refusedToken tells whether err is the source refusing a request for good (not a 403, not
// an authentication failure, not a transient failure, not our own cancellation): with a
// saved token, the token's fault. That covers 4xx answers and fail[] on HTTP 200 (inferred:
// how Mimecast refuses a stale token is not documented).
func refusedToken(ctx context.Context, err error) bool {
	if ctx.Err() != nil || mimecast.IsForbidden(err) || mimecast.IsRetryable(err) || mimecast.IsAuth(err) {
		return false
	}
	var me *mimecast.Error
	return errors.As(err, &me) && (me.Status == 200 || (me.Status >= 400 && me.Status < 500))
}

// pollWindow runs one pass of a time-window source.
func (p *Poller) pollWindow(ctx context.Context, src Source, c *counters, log zerolog.Logger) (string, error) {
	s, err := p.openStream(src, CursorName(src, ""), c, log)
	if err != nil {
		return "", err
	}
	var (
		fetch windowFetch
		td    *threatDetailer
	)
	if sp, _ := Spec(src); sp.pages != nil {
		fetch = p.pagesFetch(sp)
	} else {
		fetch, td = sp.window(p, log)
	}
	err = s.retryPending(ctx, td)
	if err == nil {
		err = s.readWindows(ctx, fetch)
	}
	err = s.finish(ctx, err)
	return s.saved.describe(), err
}

// retryPending tries the cursor's parked alerts again, before anything new is read: threat
// events without details get them first (an event whose details fail again stays parked,
// one attempt more, without being written again), then every alert is written over. Those
// acknowledged leave Pending when this unit commits; those refused again stay.
func (s *stream) retryPending(ctx context.Context, td *threatDetailer) error {
	if len(s.pending) == 0 {
		return nil
	}
	list := slices.SortedFunc(maps.Values(s.pending), func(a, b parked) int { return strings.Compare(a.ID, b.ID) })
	// Tried again, they no longer count against maxPending unless they are parked again.
	s.parking.Add(-int64(len(list)))
	pos := s.saved
	pos.Pending = nil
	u := s.tr.open(pos)
	defer s.tr.close(u)
	o := submitOptions{retry: map[string]int{}}
	recs := make([]json.RawMessage, 0, len(list))
	for _, p := range list {
		u.resolves = append(u.resolves, p.ID) // before any result can arrive: set under no race
		rec := p.Record
		if td != nil && !hasKey(rec, threatDetailsKey) {
			one := []json.RawMessage{rec}
			park, err := td.add(ctx, one)
			if err != nil {
				return err
			}
			if park[0] != "" {
				p.Attempts++
				p.Reason = park[0]
				s.park(u, p)
				continue
			}
			rec = one[0] // with its details
		}
		o.retry[p.ID] = p.Attempts
		recs = append(recs, rec)
	}
	_, err := s.submit(ctx, u, recs, o)
	return err
}

// hasKey reports whether the JSON object raw has the top-level key k.
func hasKey(raw json.RawMessage, k string) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return false
	}
	_, ok := obj[k]
	return ok
}

// logFetch reads a legacy security log; filter holds the selection parameters it takes.
func (p *Poller) logFetch(kind mimecast.LogKind, filter map[string]any) windowFetch {
	size := min(p.o.PageSize, 500)
	return func(ctx context.Context, from, to time.Time, token string) (mimecast.Page, map[int]string, error) {
		pg, err := p.d.Logs.SecurityLogs(ctx, kind, mimecast.LogQuery{
			From: from, To: to, OldestFirst: true, PageSize: size, PageToken: token, Filter: filter,
		})
		return pg, nil, err
	}
}

func (p *Poller) threatFetch(log zerolog.Logger) (windowFetch, *threatDetailer) {
	size := min(p.o.PageSize, restPageLimit)
	td := &threatDetailer{p: p, log: log}
	return func(ctx context.Context, from, to time.Time, token string) (mimecast.Page, map[int]string, error) {
		// analysis and status take the vocabularies alerts.types and alerts.statuses use
		// (§4.5); direction's values are not documented, so routes are applied client-side
		// only: a server-side selection in the wrong words would drop alerts silently.
		pg, err := p.d.Threats.ThreatEvents(ctx, mimecast.ThreatQuery{
			Start: from, End: to, Analysis: p.o.Types, Status: p.o.Statuses,
			PageSize: size, PageToken: token, OldestFirst: true,
		})
		if err != nil {
			return pg, nil, err
		}
		park, err := td.add(ctx, pg.Records)
		return pg, park, err
	}, td
}

// threatDetailer adds their details to threat events. An event whose details could not be
// fetched (after the client's retries) is indexed without them and parked (cursor.go), so
// that a later pass writes it whole; a 403 stops asking for the rest of the pass, and the
// events go without (the application cannot read them: nothing to wait for).
type threatDetailer struct {
	p         *Poller
	log       zerolog.Logger
	forbidden bool
	failed    int
}

// add puts the details of each record under _details, in place; it returns the indexes of
// the records left without, with the reason.
func (td *threatDetailer) add(ctx context.Context, recs []json.RawMessage) (map[int]string, error) {
	var park map[int]string
	for i, r := range recs {
		if td.forbidden {
			return park, nil
		}
		rec, err := td.p.threatDetails(ctx, r)
		switch {
		case err == nil:
			recs[i] = rec
		case ctx.Err() != nil:
			return park, ctx.Err()
		case mimecast.IsForbidden(err):
			td.forbidden = true
			td.log.Warn().Err(err).Msg("threat details not permitted; threat alerts go without senders, recipients and files from the details")
		default:
			// The event is still an alert, and its id does not depend on the details.
			td.failed++
			if td.failed <= 3 {
				td.log.Warn().Err(err).Msg("threat details unavailable; the event is indexed without them and parked until they can be fetched")
			}
			if park == nil {
				park = map[int]string{}
			}
			park[i] = parkedDetails
		}
	}
	return park, nil
}

// threatDetails returns the record with the event's details under "_details" (where
// Normalize looks for them); a record without an id, or that is not an object, is returned
// as it is and left to Normalize.
func (p *Poller) threatDetails(ctx context.Context, r json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(r, &obj) != nil {
		return r, nil
	}
	var id string
	if json.Unmarshal(obj["id"], &id) != nil || id == "" {
		return r, nil
	}
	d, err := p.d.Threats.ThreatDetails(ctx, id)
	if err != nil {
		return r, fmt.Errorf("details of threat event %s: %w", id, err)
	}
	obj[threatDetailsKey] = d
	out, err := json.Marshal(obj)
	if err != nil {
		return r, fmt.Errorf("details of threat event %s: %w", id, err)
	}
	return out, nil
}
