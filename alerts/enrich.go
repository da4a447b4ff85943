package alerts

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
)

// enricher adds to alerts what the poller can learn without extra API calls per alert: the
// recipient from the internal directory (one walk per domain, cached), the archived message
// from the messages index (one search per page of alerts) and the console link. Enrichment
// is best effort: a failure is logged once per pass and never holds an alert back.
type enricher struct {
	archive  Archive
	dir      Directory
	details  *DetailsTemplate
	ttl      time.Duration
	pageSize int
	now      func() time.Time
	log      zerolog.Logger

	// mu guards the directory cache; a walk holds it, so concurrent sources never walk the
	// same domain twice.
	mu         sync.Mutex
	internal   map[string]bool // internal domains, lower case
	internalAt time.Time
	users      map[string]map[string]recipient // domain → address → recipient
	usersAt    map[string]time.Time
	dirFailed  time.Time // when the directory last failed; retried after ttl

	archiveWarned, detailsWarned, contentWarned atomic.Bool

	// content, when not nil, looks up in the archive the messages the index lacks.
	content *contentViewer
}

// MessageIDField is the field of the messages index ({prefix}-messages) holding the RFC
// 5322 Message-ID: the one place the alerts name it. A dotted name is a path into the
// document's objects.
const MessageIDField = "mime_message_id"

// sourceString returns the string at a dotted path of a decoded _source, reading both
// nested objects and keys that contain dots.
func sourceString(src map[string]any, path string) string {
	if v, ok := src[path].(string); ok {
		return v
	}
	head, rest, ok := strings.Cut(path, ".")
	if !ok {
		return ""
	}
	sub, _ := src[head].(map[string]any)
	if sub == nil {
		return ""
	}
	return sourceString(sub, rest)
}

type recipient struct{ name, mailbox string }

func newEnricher(a Archive, d Directory, details *DetailsTemplate, ttl time.Duration, pageSize int, now func() time.Time, log zerolog.Logger) *enricher {
	return &enricher{archive: a, dir: d, details: details, ttl: ttl, pageSize: pageSize, now: now, log: log,
		users: map[string]map[string]recipient{}, usersAt: map[string]time.Time{}}
}

// startPass re-arms the once-per-pass warnings.
func (e *enricher) startPass() {
	e.archiveWarned.Store(false)
	e.detailsWarned.Store(false)
	e.contentWarned.Store(false)
}

// lookup returns one Enrichment per alert, in order.
func (e *enricher) lookup(ctx context.Context, alerts []Alert) []Enrichment {
	out := make([]Enrichment, len(alerts))
	for i := range alerts {
		a := &alerts[i]
		if len(a.Recipients) > 0 {
			addr := strings.ToLower(strings.TrimSpace(a.Recipients[0]))
			if at := strings.LastIndexByte(addr, '@'); at > 0 {
				out[i].RecipientDomain = addr[at+1:]
				if r, ok := e.recipient(ctx, addr, addr[at+1:]); ok {
					out[i].RecipientName, out[i].RecipientMailbox = r.name, r.mailbox
				}
			}
		}
		if u, err := e.details.Render(a); err != nil {
			if !e.detailsWarned.Swap(true) {
				e.log.Warn().Err(err).Msg("alerts.details_url failed for an alert; alerts go without the link")
			}
		} else {
			out[i].DetailsURL = u
		}
	}
	e.archived(ctx, alerts, out)
	e.contentView(ctx, alerts, out)
	return out
}

// contentView looks up in the archive, with the message list and detail endpoints, the
// messages of alerts that the messages index does not hold (see contentview.go). Failures
// leave the alert without; a 403 turns content view off (warned once).
func (e *enricher) contentView(ctx context.Context, alerts []Alert, out []Enrichment) {
	if e.content == nil {
		return
	}
	for i := range alerts {
		a := &alerts[i]
		if a.MessageID == "" || out[i].ArchiveDocID != "" || e.content.disabled.Load() || ctx.Err() != nil {
			continue
		}
		var d *archivedDetail
		for _, pl := range placesOf(a, func(addr string) bool { return e.internalAddress(ctx, addr) }) {
			var err error
			if d, err = e.content.find(ctx, a, pl.mailbox, pl.view); err != nil {
				if ctx.Err() == nil && !e.contentWarned.Swap(true) {
					e.log.Warn().Err(err).Msg("content view failed for an alert; it goes without the archive's detail")
				}
				break
			}
			if d != nil {
				break
			}
		}
		if d == nil {
			continue
		}
		out[i].ArchiveID, out[i].ArchiveSubject, out[i].ArchiveFrom = d.id, d.subject, d.from
		out[i].ArchiveTo, out[i].ArchiveAttachments = d.to, d.attachments
	}
}

// internalAddress tells whether addr is in one of the account's internal domains (from the
// directory, cached like the recipients).
func (e *enricher) internalAddress(ctx context.Context, addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || e.dir == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.loadInternal(ctx, e.now())[addr[at+1:]]
}

// loadInternal returns the internal domains, asking the directory when the cache is older
// than ttl; nil when the directory failed. e.mu must be held.
func (e *enricher) loadInternal(ctx context.Context, now time.Time) map[string]bool {
	if !e.dirFailed.IsZero() && now.Sub(e.dirFailed) < e.ttl {
		return nil
	}
	if e.internal == nil || now.Sub(e.internalAt) >= e.ttl {
		ds, err := e.dir.InternalDomains(ctx)
		if err != nil {
			e.directoryFailed(ctx, err, now)
			return nil
		}
		e.internal = make(map[string]bool, len(ds))
		for _, d := range ds {
			e.internal[strings.ToLower(d.Domain)] = true
		}
		e.internalAt = now
	}
	return e.internal
}

// recipient finds addr in the directory of its domain, walking the domain at most once per
// ttl. Only internal domains are walked.
func (e *enricher) recipient(ctx context.Context, addr, domain string) (recipient, bool) {
	if e.dir == nil {
		return recipient{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if !e.loadInternal(ctx, now)[domain] {
		return recipient{}, false
	}
	users, ok := e.users[domain]
	if !ok || now.Sub(e.usersAt[domain]) >= e.ttl {
		us, err := e.dir.InternalUsers(ctx, domain, e.pageSize)
		if err != nil {
			e.directoryFailed(ctx, err, now)
			return recipient{}, false
		}
		users = make(map[string]recipient, len(us))
		for _, u := range us {
			// The directory lists mailboxes; an address found here is its own mailbox.
			a := strings.ToLower(u.EmailAddress)
			users[a] = recipient{name: u.Name, mailbox: a}
		}
		e.users[domain], e.usersAt[domain] = users, now
	}
	r, ok := users[addr]
	return r, ok
}

func (e *enricher) directoryFailed(ctx context.Context, err error, now time.Time) {
	if ctx.Err() != nil {
		return // stopping, not a directory problem
	}
	e.dirFailed = now
	e.log.Warn().Err(err).Msg("internal directory unavailable; alerts go without recipient names until it answers again")
}

// archived links alerts to their messages in the messages index, with one search for the
// whole page.
func (e *enricher) archived(ctx context.Context, alerts []Alert, out []Enrichment) {
	if e.archive == nil {
		return
	}
	seen := map[string]bool{}
	var ids []string
	for i := range alerts {
		if id := alerts[i].MessageID; id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	hits, err := e.archive.FindByTerms(ctx, index.Messages, index.FieldMessageID, ids,
		[]string{index.FieldMailbox, index.FieldSubject, index.FieldMessageID}, 4)
	if err != nil {
		if ctx.Err() == nil && !e.archiveWarned.Swap(true) {
			e.log.Warn().Err(err).Msg("archive lookup failed; alerts go without the link to their message")
		}
		return
	}
	type found struct {
		hit     index.Hit
		mailbox string
		subject string
	}
	byID := map[string][]found{}
	for _, h := range hits {
		// The fields are those of index.MessageDoc.
		var src struct {
			Email struct {
				Subject   string `json:"subject"`
				MessageID string `json:"message_id"`
			} `json:"email"`
			Mimecast struct {
				Mailbox string `json:"mailbox"`
			} `json:"mimecast"`
		}
		if json.Unmarshal(h.Source, &src) != nil {
			continue
		}
		id := src.Email.MessageID
		byID[id] = append(byID[id], found{hit: h, mailbox: strings.ToLower(src.Mimecast.Mailbox), subject: src.Email.Subject})
	}
	for i := range alerts {
		fs := byID[alerts[i].MessageID]
		if len(fs) == 0 {
			continue
		}
		// The copy in the recipient's own mailbox, when the archive has it.
		pick := fs[0]
		for _, f := range fs {
			if len(alerts[i].Recipients) > 0 && f.mailbox == strings.ToLower(alerts[i].Recipients[0]) {
				pick = f
				break
			}
		}
		out[i].ArchiveDocID, out[i].ArchiveIndex, out[i].ArchiveSubject = pick.hit.ID, pick.hit.Index, pick.subject
	}
}
