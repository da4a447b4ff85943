package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// The indices of alerts and alert groups, registered with the index package.
var (
	AlertsKind = index.Register(index.Spec{Name: "alerts", Mapping: AlertsMapping})
	GroupsKind = index.Register(index.Spec{Name: "alert-groups", Mapping: GroupsMapping})
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
	name  string
	c     *counters
	log   zerolog.Logger
	saved cursor // as stored
	tr    *tracker
}

func (p *Poller) openStream(src Source, name string, c *counters, log zerolog.Logger) (*stream, error) {
	s := &stream{p: p, src: src, name: name, c: c, log: log, tr: newTracker()}
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
	return s, nil
}

// submit normalises, decides, enriches and hands one page of records to the sink, every
// document counted in u. prev, when not nil, holds the ids of the previous page: records
// with those ids are repeats and dropped. It returns the ids of this page's alerts when prev
// is not nil.
func (s *stream) submit(ctx context.Context, u *unit, recs []json.RawMessage, prev map[string]bool) (map[string]bool, error) {
	var ids map[string]bool
	if prev != nil {
		ids = make(map[string]bool, len(recs))
	}
	kept := make([]Alert, 0, len(recs))
	for _, raw := range recs {
		s.c.records.Add(1)
		a, err := s.p.o.Normalize(s.src, raw)
		if err == nil && a.ID == "" {
			err = errors.New("no id")
		}
		if err != nil {
			s.c.malformed.Add(1)
			s.log.Debug().Err(err).Msg("malformed record skipped")
			continue
		}
		if ids != nil {
			if prev[a.ID] || ids[a.ID] {
				s.c.repeats.Add(1)
				continue
			}
			ids[a.ID] = true
		}
		d := s.p.d.Rules.Decide(&a)
		s.c.filterErrors.Add(int64(d.EvalErrors))
		if !d.Keep {
			s.c.exclude(d.Reason)
			continue
		}
		kept = append(kept, a)
	}
	if len(kept) == 0 {
		return ids, nil
	}
	enr := s.p.enrich.lookup(ctx, kept)
	for i := range kept {
		a := &kept[i]
		doc := index.Doc{Kind: AlertsKind, ID: a.ID, Op: index.OpCreate, Body: AlertDocument(a, enr[i])}
		if err := s.add(ctx, u, a.Time, doc, s.alertResult); err != nil {
			return ids, err
		}
	}
	// Groups are read, merged and written back (no script), each write acknowledged before
	// UpdateGroups returns; a failure holds this page's cursor like an unacknowledged alert.
	if s.p.d.Groups != nil {
		n, err := UpdateGroups(ctx, s.p.d.Groups, kept)
		s.c.groups.Add(int64(n))
		if err != nil {
			err = fmt.Errorf("update alert groups: %w", err)
			s.tr.fail(u, err)
			return ids, err
		}
	}
	return ids, nil
}

// add hands one document to the sink, counted in u. A document that could not be handed
// over fails u: the cursor must never pass a record that was not written.
func (s *stream) add(ctx context.Context, u *unit, at time.Time, d index.Doc, onResult func(index.Result)) error {
	done, undo := s.tr.expect(u, at, onResult)
	if err := s.p.d.Sink.Add(ctx, d, done); err != nil {
		undo()
		err = fmt.Errorf("queue %s %s: %w", d.Kind, d.ID, err)
		s.tr.fail(u, err)
		return err
	}
	return nil
}

func (s *stream) alertResult(r index.Result) {
	switch {
	case r.Err == nil && r.Existed:
		s.c.existing.Add(1)
	case r.Err == nil:
		s.c.indexed.Add(1)
	case r.Permanent:
		s.rejected(r)
	}
}

// rejected counts a document Elasticsearch refused for good. Sending it again cannot
// succeed, so the cursor passes it (like a malformed record); the log line names it.
func (s *stream) rejected(r index.Result) {
	s.c.rejected.Add(1)
	s.log.Error().Err(r.Err).Int("status", r.Status).Msg("document rejected by elasticsearch; counted and passed")
}

// commit saves the newest cursor below which everything is acknowledged, if it moved.
func (s *stream) commit() error {
	c, ok := s.tr.ready(s.saved.Latest)
	if !ok || c.position() == s.saved.position() {
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
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// windowFetch reads one page of a time-window source.
type windowFetch func(ctx context.Context, from, to time.Time, token string) (mimecast.Page, error)

// retention returns how far back a source can be asked; 0 when none is documented.
func retention(src Source, stream bool) time.Duration {
	if src == SIEM {
		if stream {
			return siemStreamRetention
		}
		return siemBatchRetention
	}
	return 0
}

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
func (s *stream) readWindow(ctx context.Context, fetch windowFetch) error {
	cur := s.saved
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
			return nil // the clock went back: nothing new to ask for
		}
	}
	pgr := newPager(s.p.o.MaxPages, token)
	for page := 0; ; page++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.tr.failure() != nil {
			return nil // the cursor cannot pass the failure: stop reading; finish reports it
		}
		pg, err := fetch(ctx, from, to, token)
		if err != nil {
			if resumed && refusedToken(ctx, err) {
				// Tokens may not outlive a long pause (inferred); the window itself is
				// still right, and ids make re-reading its start harmless.
				s.log.Warn().Err(err).Msg("saved page token refused; re-reading its window from the start")
				token, resumed = "", false
				pgr = newPager(s.p.o.MaxPages, "")
				continue
			}
			return fmt.Errorf("page %d of window %s..%s: %w", page, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
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
		_, err = s.submit(ctx, u, pg.Records, nil)
		s.tr.close(u)
		if err != nil {
			return err
		}
		if err := s.commit(); err != nil {
			return err
		}
		if verdict != pageFollow {
			return stop
		}
		token = pg.Next
	}
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
	var fetch windowFetch
	if src == Threats {
		fetch = p.threatFetch(log)
	} else {
		fetch = p.logFetch(src)
	}
	err = s.finish(ctx, s.readWindow(ctx, fetch))
	return s.saved.describe(), err
}

func (p *Poller) logFetch(src Source) windowFetch {
	kind := mimecast.LogKind(src) // the source names are the log kinds' names
	filter := map[string]any{}
	switch {
	case src == DLP && len(p.o.Routes) > 0:
		filter["routes"] = p.o.Routes
	case (src == AttachmentProtection || src == URLProtection) && len(p.o.Routes) == 1:
		filter["route"] = p.o.Routes[0]
	}
	size := min(p.o.PageSize, 500)
	return func(ctx context.Context, from, to time.Time, token string) (mimecast.Page, error) {
		return p.d.Logs.SecurityLogs(ctx, kind, mimecast.LogQuery{
			From: from, To: to, OldestFirst: true, PageSize: size, PageToken: token, Filter: filter,
		})
	}
}

func (p *Poller) threatFetch(log zerolog.Logger) windowFetch {
	size := min(p.o.PageSize, restPageLimit)
	var noDetails bool // the details endpoint answered 403 in this pass
	return func(ctx context.Context, from, to time.Time, token string) (mimecast.Page, error) {
		// analysis and status take the vocabularies alerts.types and alerts.statuses use
		// (§4.5); direction's values are not documented, so routes are applied client-side
		// only: a server-side selection in the wrong words would drop alerts silently.
		pg, err := p.d.Threats.ThreatEvents(ctx, mimecast.ThreatQuery{
			Start: from, End: to, Analysis: p.o.Types, Status: p.o.Statuses,
			PageSize: size, PageToken: token, OldestFirst: true,
		})
		if err != nil || noDetails {
			return pg, err
		}
		for i, r := range pg.Records {
			rec, derr := p.threatDetails(ctx, r)
			switch {
			case derr == nil:
				pg.Records[i] = rec
			case ctx.Err() != nil:
				return pg, ctx.Err()
			case mimecast.IsForbidden(derr):
				noDetails = true
				log.Warn().Err(derr).Msg("threat details not permitted; threat alerts go without senders, recipients and files from the details")
				return pg, nil
			default:
				// The event is still an alert, and its id does not depend on the details.
				log.Warn().Err(derr).Msg("threat details unavailable for one event; indexed without them")
			}
		}
		return pg, nil
	}
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
