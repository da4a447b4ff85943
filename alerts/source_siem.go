package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// SIEM: Mimecast's SIEM events (cg), from batch files per event type or from the stream
// (alerts.siem), with a machinery of its own (this file).
const SIEM Source = "siem"

var siemSpec = SourceSpec{
	Name: SIEM, Endpoint: "GET /siem/v1/batch/events/cg (stream: GET /siem/v1/events/cg)",
	Permission: "Security Events and Data Retrieval | Threat and Security Events (SIEM) | Read",
	Records:    RecordAlerts, Kind: AlertsKind, Dataset: Dataset,
	Retention: siemBatchRetention, streamRetention: siemStreamRetention,
	poll: (*Poller).pollSIEM,
	needs: func(d Deps) error {
		if d.SIEM == nil {
			return errors.New("source siem needs a SIEM source")
		}
		return nil
	},
	probe: func(ctx context.Context, d Deps, now time.Time) error {
		_, err := d.SIEM.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: DefaultSIEMTypes[0], Start: now, PageSize: 1})
		return err
	},
	normalize: normalizeSIEM,
	warnings:  siemWarnings,
}

// The SIEM endpoints' published call budgets (reference §3).
const (
	siemBatchBudgetCalls  = 50
	siemBatchBudgetPer    = 15 * time.Minute
	siemStreamBudgetCalls = 300
	siemStreamBudgetPer   = time.Hour
)

// siemWarnings: a schedule whose SIEM calls cannot fit the endpoint's published budget (at
// least one batch call per event type per pass, or one stream call per pass, every
// poll_interval). Passes would then wait on the quota (`--once` up to alerts.max_wait).
func siemWarnings(a config.Alerts) []string {
	if a.PollInterval <= 0 {
		return nil
	}
	calls, budget, per := len(a.SIEM.Types), siemBatchBudgetCalls, siemBatchBudgetPer
	if a.SIEM.Mode == config.SIEMStream {
		calls, budget, per = 1, siemStreamBudgetCalls, siemStreamBudgetPer
	}
	passes := float64(per) / float64(a.PollInterval)
	if need := float64(calls) * passes; need > float64(budget) {
		return []string{fmt.Sprintf("alerts.poll_interval: %s with alerts.siem (%s mode, %d calls per pass at least) needs %.0f calls per %s, above the %d the endpoint allows; passes will wait on the quota: raise poll_interval to %s or more",
			a.PollInterval, a.SIEM.Mode, calls, need, config.Duration(per), budget, config.Duration(time.Duration(int64(per)*int64(calls)/int64(budget)).Round(time.Second)))}
	}
	return nil
}

// normalizeSIEM reads one SIEM event (§4.4): always timestamp (epoch milliseconds) and
// type; the rest depends on the type, and many numbers are strings.
func normalizeSIEM(r record) (Alert, error) {
	t, err := r.timeField("timestamp")
	if err != nil {
		return Alert{}, err
	}
	typ := strings.ToLower(r.str("type"))
	a := Alert{
		Time:       t,
		Type:       typ,
		Verdict:    strings.ToLower(r.str("scanResult", "result", "verdict")),
		Action:     r.str("action"),
		Route:      strings.ToLower(r.str("route", "direction")),
		Sender:     strings.ToLower(first(r.addresses("senderEnvelope", "senderHeader", "sender", "senderAddress"))),
		Recipients: r.addresses("recipients", "recipient", "rcpt", "recipientAddress"),
		Subject:    r.str("subject"),
		MessageID:  r.str("messageId"),
		URL:        r.str("url"),
		SourceIP:   ipOrEmpty(r.str("senderIp", "senderIP", "remoteIp", "sourceIp", "ip")),
		Rule:       r.str("policy", "definition", "ttpDefinition", "policyDefinition"),
		Details:    r.str("holdReason", "reason", "subtype"),
	}
	// The types' verdicts (inferred from the event descriptions): a virus found is
	// malicious, an impersonation tagged malicious is malicious.
	if a.Verdict == "" {
		switch {
		case typ == "av" && r.str("virusFound") != "":
			a.Verdict = "malicious"
		case typ == "impersonation protect" && r.boolean("taggedMalicious"):
			a.Verdict = "malicious"
		}
	}
	a.Status = statusFromAction(a.Action)
	if a.Status == "" && r.str("holdReason") != "" {
		a.Status = "held"
	}
	if name, sha := r.str("fileName"), strings.ToLower(r.str("sha256")); name != "" || sha != "" {
		f := File{Name: name, Extension: strings.ToLower(strings.TrimPrefix(r.str("fileExtension"), ".")),
			SHA256: sha, MD5: strings.ToLower(r.str("md5")), SHA1: strings.ToLower(r.str("sha1")),
			MimeType: r.str("fileMime", "fileType", "mimeType")}
		if f.Extension == "" {
			f.Extension = extension(name)
		}
		f.Size, _ = int64Of(r["fileSize"])
		a.Files = []File{f}
	}
	a.ID = contentID(SIEM, r, "_offset", "_partition")
	return a, nil
}

// pollSIEM runs one pass of the SIEM source: batch files of each event type in turn (each
// type its own cursor), or the stream. Types are read one after another: they share the
// batch endpoint's small call budget, so reading them at once would gain nothing.
func (p *Poller) pollSIEM(ctx context.Context, src Source, c *counters, log zerolog.Logger) ([]string, error) {
	return p.pollSIEMOf(ctx, src, c, log, mimecast.ProductCG, p.o.SIEMTypes)
}

// pollSIEMOf is pollSIEM for one SIEM product and its event types.
func (p *Poller) pollSIEMOf(ctx context.Context, src Source, c *counters, log zerolog.Logger, product mimecast.SIEMProduct, types []string) ([]string, error) {
	if p.o.SIEMStream {
		s, err := p.openStream(src, CursorName(src, "stream"), c, log)
		if err != nil {
			return nil, err
		}
		s.siemProduct, s.siemTypes = product, types
		err = s.retryPending(ctx, nil)
		if err == nil {
			err = s.readStream(ctx)
		}
		err = s.finish(ctx, err)
		return []string{s.saved.describe()}, err
	}
	var (
		descs []string
		errs  []error
	)
	for _, typ := range types {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		tlog := log.With().Str("siem_type", typ).Logger()
		s, err := p.openStream(src, CursorName(src, "batch/"+typ), c, tlog)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.siemProduct, s.siemTypes = product, types
		err = s.retryPending(ctx, nil)
		if err == nil {
			err = s.retryFiles(ctx, typ)
		}
		if err == nil {
			err = s.readBatch(ctx, typ)
		}
		err = s.finish(ctx, err)
		descs = append(descs, typ+": "+s.saved.describe())
		if err != nil {
			errs = append(errs, fmt.Errorf("siem type %q: %w", typ, err))
			if mimecast.IsForbidden(err) {
				break // one permission covers every type
			}
		}
	}
	return descs, errors.Join(errs...)
}

// readBatch reads the batch files of one event type from its durable @nextPage, page by page.
// A page's token is saved once every record of every file of the page is acknowledged; a
// killed pass re-reads that page (ids make it harmless). Files are read one at a time and
// streamed, never held whole.
func (s *stream) readBatch(ctx context.Context, typ string) error {
	q := mimecast.SIEMBatchQuery{Product: s.siemProduct, Type: typ, PageSize: min(s.p.o.PageSize, restPageLimit), NextPage: s.saved.Token}
	if q.NextPage == "" {
		// Only a start date, as the one collector that sends dates does (inferred: an end
		// date might cap what the returned token continues with).
		q.Start = s.p.firstStart(s.p.o.Now().UTC(), retention(s.src, false))
	}
	resumed := q.NextPage != ""
	pgr := newPager(s.p.o.MaxPages, q.NextPage)
	batch := &recordBatch{s: s, recs: make([]json.RawMessage, 0, submitBatch)}
	for {
		if halt, err := s.halted(ctx); halt {
			return err
		}
		page, err := s.p.d.SIEM.SIEMBatch(ctx, q)
		if err != nil {
			if resumed && refusedToken(ctx, err) {
				s.log.Warn().Err(err).Msg("saved siem batch token refused; starting again from the lookback, clamped to 7 days")
				q = mimecast.SIEMBatchQuery{Product: s.siemProduct, Type: typ, PageSize: q.PageSize, Start: s.p.firstStart(s.p.o.Now().UTC(), retention(s.src, false))}
				resumed = false
				pgr = newPager(s.p.o.MaxPages, "")
				continue
			}
			return err
		}
		resumed = false
		verdict := pgr.page(len(page.Files), page.Next, -1, page.CaughtUp)
		tok, stop := s.tokenAfter(pgr, verdict, q.NextPage, page.Next)
		u := s.tr.open(cursor{Token: tok})
		batch.u = u
		files, refreshed := page.Files, false
		for i := 0; i < len(files); i++ {
			pf := parkedFile{Token: q.NextPage, Index: i}
			if q.NextPage == "" {
				pf.Start = q.Start
			}
			expired, err := s.readFile(ctx, batch, pf, files[i], !refreshed)
			if err != nil {
				s.tr.fail(u, err) // the page's token must not pass a file not fully read
				s.tr.close(u)
				return err
			}
			if !expired {
				continue
			}
			// Pre-signed URLs live minutes; a page read slowly can outlive them. Asking for
			// the same page again gives fresh URLs, once per page (inferred: the same token
			// lists the same files in the same order, so a different count is not trusted).
			refreshed = true
			fresh, ferr := s.p.d.SIEM.SIEMBatch(ctx, q)
			if ferr == nil && len(fresh.Files) == len(files) {
				files = fresh.Files
				i-- // this file again, with its fresh URL
				continue
			}
			why := "a different number of files"
			if ferr != nil {
				why = ferr.Error()
			}
			s.failFile(u, pf, fmt.Errorf("%w; asking for the page again gave no fresh URL: %s", mimecast.ErrExpiredFile, why))
		}
		if err := batch.flush(ctx); err != nil {
			s.tr.fail(u, err)
			s.tr.close(u)
			return fmt.Errorf("siem batch page: %w", err)
		}
		s.tr.close(u)
		if err := s.commit(); err != nil {
			return err
		}
		if verdict != pageFollow {
			return stop
		}
		q = mimecast.SIEMBatchQuery{Product: s.siemProduct, Type: typ, PageSize: q.PageSize, NextPage: page.Next}
	}
}

// tokenAfter applies the paging rule's verdict to a token source: the cursor a page's unit
// makes true, and the error that ends the pass (nil when it is complete or goes on). A
// looped page's records are read, but its cursor stays at the token that asked for it.
func (s *stream) tokenAfter(pgr *pager, v pageVerdict, sent, next string) (string, error) {
	switch v {
	case pageFollow:
		return next, nil
	case pageLooped:
		err := pgr.loopError(next)
		s.c.pagesLooped.Add(1)
		s.log.Warn().Err(err).Int("pages", pgr.pages).Msg("page tokens loop; the cursor stays before the loop")
		return sent, err
	}
	if next == "" {
		return sent, nil // no new position: keep the one that got us here
	}
	return next, nil
}

// recordBatch gathers the records of one page's files for submit, so that files of a few
// events each still reach the writer and the group store in slices of submitBatch: a
// submit per file cost one group read and one group write per twenty alerts, which held
// the batch reader to a third of its throughput. All the records belong to the page's unit.
type recordBatch struct {
	s    *stream
	u    *unit
	recs []json.RawMessage
}

// submitBatch is how many SIEM records go to submit at once: one group read and write, one
// enrichment lookup. It bounds what a page holds in memory, whatever its files' sizes.
const submitBatch = 500

func (b *recordBatch) add(ctx context.Context, rec json.RawMessage) error {
	b.recs = append(b.recs, bytes.Clone(rec))
	if len(b.recs) >= submitBatch {
		return b.flush(ctx)
	}
	return nil
}

// flush submits what was gathered; a failure has failed the unit (submit).
func (b *recordBatch) flush(ctx context.Context) error {
	if len(b.recs) == 0 {
		return nil
	}
	_, err := b.s.submit(ctx, b.u, b.recs, submitOptions{})
	clear(b.recs) // let the records go; the array is reused
	b.recs = b.recs[:0]
	return err
}

// readFile streams one batch file into the page's batch b. A file that cannot be read
// (malformed or cut short, after the good records before the fault; expired; its download
// failed after the client's retries) is parked (failFile) and read again on the next
// passes, never stalling the cursor: a collector that retried one file in place stalled
// for a week. An expired URL is reported to the caller (expired) when mayRefresh.
func (s *stream) readFile(ctx context.Context, b *recordBatch, pf parkedFile, f mimecast.SIEMFile, mayRefresh bool) (expired bool, err error) {
	u := b.u
	var serr error
	err = s.p.d.SIEM.SIEMFileEvents(ctx, f, func(rec json.RawMessage) error {
		serr = b.add(ctx, rec)
		return serr
	})
	if serr != nil {
		return false, fmt.Errorf("siem batch file %d: %w", pf.Index, serr)
	}
	switch {
	case err == nil:
		return false, nil
	case ctx.Err() != nil || s.tr.failure() != nil:
		// Stopped, or the sink failed: not the file's fault.
		return false, fmt.Errorf("siem batch file %d: %w", pf.Index, err)
	case errors.Is(err, mimecast.ErrExpiredFile) && mayRefresh:
		return true, nil
	}
	s.failFile(u, pf, err)
	return false, nil
}

// failFile parks a batch file that could not be read with u, one read more, or, at its
// maxFileReads-th failed read, skips it for good: counted and warned.
func (s *stream) failFile(u *unit, f parkedFile, err error) {
	if old, ok := s.pendingFiles[f.key()]; ok {
		f.Attempts = max(f.Attempts, old.Attempts)
	}
	f.Attempts++
	f.Reason = truncate(err.Error(), 200)
	if f.Attempts >= maxFileReads {
		s.skipFile(f, err)
		return
	}
	s.tr.parkFile(u, f)
	s.log.Warn().Err(err).Int("file", f.Index).Int("reads", f.Attempts).Msg("siem batch file unreadable; parked and read again on the next pass")
}

// skipFile counts and reports a batch file skipped for good. The file's URL is a credential
// (pre-signed): the log names its place in its page, never the URL.
func (s *stream) skipFile(f parkedFile, err error) {
	s.c.filesSkipped.Add(1)
	s.log.Warn().Err(err).Int("file", f.Index).Int("reads", f.Attempts).Msg("siem batch file skipped for good after repeated failed reads")
}

// retryFiles reads the parked batch files again, before anything new: each file's page is
// asked again (its URL has expired by now) and the file at its place read. One that fails
// again stays parked (or is skipped, at its last read).
func (s *stream) retryFiles(ctx context.Context, typ string) (err error) {
	if len(s.pendingFiles) == 0 {
		return nil
	}
	list := slices.SortedFunc(maps.Values(s.pendingFiles), func(a, b parkedFile) int { return strings.Compare(a.key(), b.key()) })
	u := s.tr.open(s.saved)
	defer func() {
		if err != nil {
			// Records gathered but not submitted, or a file not read: the unit must not
			// resolve the files it names.
			s.tr.fail(u, err)
		}
		s.tr.close(u)
	}()
	batch := &recordBatch{s: s, u: u}
	for _, f := range list {
		u.resolveFiles = append(u.resolveFiles, f.key()) // the unit is open: no result reads it yet
		q := mimecast.SIEMBatchQuery{Product: s.siemProduct, Type: typ, PageSize: min(s.p.o.PageSize, restPageLimit), NextPage: f.Token, Start: f.Start}
		page, err := s.p.d.SIEM.SIEMBatch(ctx, q)
		switch {
		case err != nil && ctx.Err() != nil:
			return err
		case err != nil:
			s.failFile(u, f, fmt.Errorf("ask again for the page of a parked file: %w", err))
			continue
		case f.Index >= len(page.Files):
			s.failFile(u, f, fmt.Errorf("the page of a parked file lists %d files now", len(page.Files)))
			continue
		}
		if _, err := s.readFile(ctx, batch, f, page.Files[f.Index], false); err != nil {
			return err
		}
	}
	return batch.flush(ctx)
}

// readStream reads the SIEM stream from its durable @nextPage until caught up. A page that
// repeats records of the previous one (the stream does that) has them dropped and counted.
func (s *stream) readStream(ctx context.Context) error {
	size := min(s.p.o.PageSize, restPageLimit)
	start := func() mimecast.SIEMStreamQuery {
		return mimecast.SIEMStreamQuery{Product: s.siemProduct, Types: s.siemTypes, PageSize: size, Start: s.p.firstStart(s.p.o.Now().UTC(), retention(s.src, true))}
	}
	q := mimecast.SIEMStreamQuery{Product: s.siemProduct, Types: s.siemTypes, PageSize: size, NextPage: s.saved.Token}
	if q.NextPage == "" {
		q = start()
	}
	resumed := q.NextPage != ""
	prev := map[string]bool{}
	pgr := newPager(s.p.o.MaxPages, q.NextPage)
	for {
		if halt, err := s.halted(ctx); halt {
			return err
		}
		page, err := s.p.d.SIEM.SIEMEvents(ctx, q)
		if err != nil {
			if resumed && refusedToken(ctx, err) {
				// The stream keeps 24 hours: a token older than that cannot be resumed, and
				// what happened before the window is lost to this source.
				s.log.Warn().Err(err).Msg("saved siem stream token refused; starting again 24 hours back")
				q, resumed = start(), false
				pgr = newPager(s.p.o.MaxPages, "")
				continue
			}
			return err
		}
		resumed = false
		verdict := pgr.page(len(page.Records), page.Next, -1, page.CaughtUp)
		tok, stop := s.tokenAfter(pgr, verdict, q.NextPage, page.Next)
		u := s.tr.open(cursor{Token: tok})
		ids, err := s.submit(ctx, u, page.Records, submitOptions{prev: prev})
		s.tr.close(u)
		if err != nil {
			return err
		}
		prev = ids
		if err := s.commit(); err != nil {
			return err
		}
		if verdict != pageFollow {
			return stop
		}
		q = mimecast.SIEMStreamQuery{Product: s.siemProduct, Types: s.siemTypes, PageSize: size, NextPage: page.Next}
	}
}
