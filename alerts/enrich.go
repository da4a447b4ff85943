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

	archiveWarned, detailsWarned atomic.Bool
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
	return out
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
	if !e.dirFailed.IsZero() && now.Sub(e.dirFailed) < e.ttl {
		return recipient{}, false
	}
	if e.internal == nil || now.Sub(e.internalAt) >= e.ttl {
		ds, err := e.dir.InternalDomains(ctx)
		if err != nil {
			e.directoryFailed(ctx, err, now)
			return recipient{}, false
		}
		e.internal = make(map[string]bool, len(ds))
		for _, d := range ds {
			e.internal[strings.ToLower(d.Domain)] = true
		}
		e.internalAt = now
	}
	if !e.internal[domain] {
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
	hits, err := e.archive.FindByTerms(ctx, index.Messages, "mime_message_id", ids, []string{"mailbox", "subject", "mime_message_id"}, 4)
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
		var src struct {
			Mailbox       string `json:"mailbox"`
			Subject       string `json:"subject"`
			MimeMessageID string `json:"mime_message_id"`
		}
		if json.Unmarshal(h.Source, &src) != nil {
			continue
		}
		byID[src.MimeMessageID] = append(byID[src.MimeMessageID], found{hit: h, mailbox: strings.ToLower(src.Mailbox), subject: src.Subject})
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
