package alerts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// MessageArchive is the Mimecast archive, for content view: the detail of messages that
// mimecrawl has not crawled. Implemented by *mimecast.Client. A 403 is an error for which
// mimecast.IsForbidden is true.
type MessageArchive interface {
	// ListMessages walks get-message-list for one filter page by page, calling fn once per
	// page; an error from fn stops the walk and is returned unchanged.
	ListMessages(ctx context.Context, f api.MessageListFilter, pageSize int, fn func(page []api.MessageSummary) error) error
	// MessageDetail returns get-message-detail of one archive id.
	MessageDetail(ctx context.Context, id string) (*api.MessageDetail, error)
}

var _ MessageArchive = (*mimecast.Client)(nil)

// Content view finds an alert's message in the archive by its RFC Message-ID. No public
// source documents a lookup of the archive by Message-ID (inferred): get-message-detail
// takes the archive's own id, which alerts do not carry. So the message is looked for where
// it must be: get-message-list of the internal mailbox (the recipient for inbound and
// internal mail, the sender for outbound) and view (INBOX, or SENT for outbound) in a narrow
// window around the alert's time — protection logs are written as the message passes the
// gateway, so it is received within minutes of the alert (inferred) — and then the detail of
// a few candidates, those with the alert's subject first, until one's mimeMessageId is the
// alert's Message-ID. Each lookup is bounded: one listing and at most maxCandidates details.

// Defaults of content view.
const (
	defaultContentWindow     = 10 * time.Minute
	defaultContentCandidates = 5
	// maxContentListed bounds the summaries one lookup keeps from the listing: a busy
	// mailbox's window is still a few pages at most.
	maxContentListed = 500
	// maxContentCache bounds the lookups remembered; past it the cache starts afresh.
	maxContentCache = 10000
)

// archived is what content view found: the archive's id and the detail's fields.
type archivedDetail struct {
	id          string
	subject     string
	from        string
	to          []string
	attachments []string
}

// contentViewer looks messages up in the archive for alerts. Safe for concurrent use.
type contentViewer struct {
	src        MessageArchive
	window     time.Duration
	candidates int
	pageSize   int
	log        zerolog.Logger

	// disabled is set by the first 403: the application lacks the archive permission, and
	// asking again for every alert would only repeat the refusal. It stays set for the
	// poller's life (a restart of the command tries again).
	disabled atomic.Bool

	mu    sync.Mutex
	cache map[string]*archivedDetail // key: mailbox, view and Message-ID; nil = not found
}

func newContentViewer(src MessageArchive, window time.Duration, candidates, pageSize int, log zerolog.Logger) *contentViewer {
	if window <= 0 {
		window = defaultContentWindow
	}
	if candidates <= 0 {
		candidates = defaultContentCandidates
	}
	return &contentViewer{src: src, window: window, candidates: candidates, pageSize: pageSize, log: log,
		cache: map[string]*archivedDetail{}}
}

// place is a mailbox and view where a message may be archived.
type place struct{ mailbox, view string }

// placesOf returns where a's message is looked for, at most two places, in order: for
// outbound mail the sender's SENT view, then the first internal recipient's INBOX; for
// other mail the other way round. Only internal addresses have an archive; a route that
// does not match the addresses is not trusted over them, hence both ends.
func placesOf(a *Alert, internal func(addr string) bool) []place {
	var sent, inbox []place
	if s := strings.ToLower(a.Sender); s != "" && internal(s) {
		sent = []place{{s, api.ViewSent}}
	}
	for _, r := range a.Recipients {
		if r = strings.ToLower(r); internal(r) {
			inbox = []place{{r, api.ViewInbox}}
			break
		}
	}
	if a.Route == "outbound" {
		return append(sent, inbox...)
	}
	return append(inbox, sent...)
}

// find returns the archived message of a in mailbox/view, nil when it was not found. A 403
// disables content view and warns once; other errors are returned (the alert goes without).
func (v *contentViewer) find(ctx context.Context, a *Alert, mailbox, view string) (*archivedDetail, error) {
	if v.disabled.Load() {
		return nil, nil
	}
	key := mailbox + "\x00" + view + "\x00" + a.MessageID
	v.mu.Lock()
	d, hit := v.cache[key]
	v.mu.Unlock()
	if hit {
		return d, nil
	}
	d, err := v.lookup(ctx, a, mailbox, view)
	if err != nil {
		if mimecast.IsForbidden(err) {
			if !v.disabled.Swap(true) {
				perm := ""
				var me *mimecast.Error
				if errors.As(err, &me) {
					perm = me.Permission
				}
				v.log.Warn().Str("permission", perm).Msg("content view not permitted for this api application; alerts go without the archive's detail of messages not yet crawled")
			}
			return nil, nil
		}
		return nil, err
	}
	v.mu.Lock()
	if len(v.cache) >= maxContentCache {
		v.cache = map[string]*archivedDetail{}
	}
	v.cache[key] = d
	v.mu.Unlock()
	return d, nil
}

// errEnoughListed stops a listing that reached maxContentListed.
var errEnoughListed = errors.New("enough summaries listed")

func (v *contentViewer) lookup(ctx context.Context, a *Alert, mailbox, view string) (*archivedDetail, error) {
	f := api.MessageListFilter{View: view, Mailbox: mailbox,
		Start: api.FormatTime(a.Time.Add(-v.window)), End: api.FormatTime(a.Time.Add(v.window))}
	var listed []api.MessageSummary
	err := v.src.ListMessages(ctx, f, v.pageSize, func(page []api.MessageSummary) error {
		for _, m := range page {
			if m.ID != "" {
				listed = append(listed, m)
			}
		}
		if len(listed) >= maxContentListed {
			return errEnoughListed
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnoughListed) {
		return nil, fmt.Errorf("list %s %s around %s: %w", mailbox, view, a.Time.UTC().Format(time.RFC3339), err)
	}
	// Candidates with the alert's subject first, then the closest in time.
	subject := strings.TrimSpace(a.Subject)
	rank := func(m api.MessageSummary) (int, time.Duration) {
		s := 1
		if subject != "" && strings.EqualFold(strings.TrimSpace(m.Subject), subject) {
			s = 0
		}
		d := time.Duration(1<<62 - 1)
		if t, err := api.ParseTime(m.Received); err == nil {
			d = t.Sub(a.Time).Abs()
		}
		return s, d
	}
	slices.SortStableFunc(listed, func(x, y api.MessageSummary) int {
		sx, dx := rank(x)
		sy, dy := rank(y)
		if sx != sy {
			return sx - sy
		}
		return cmp.Compare(dx, dy)
	})
	want := normMessageID(a.MessageID)
	for i, m := range listed {
		if i >= v.candidates {
			break
		}
		d, err := v.src.MessageDetail(ctx, m.ID)
		if err != nil {
			if mimecast.IsForbidden(err) || ctx.Err() != nil {
				return nil, err
			}
			return nil, fmt.Errorf("detail of a candidate in %s: %w", mailbox, err)
		}
		if normMessageID(d.MimeMessageID) != want {
			continue
		}
		out := &archivedDetail{id: d.ID, subject: d.Subject, from: strings.ToLower(d.From.EmailAddress)}
		for _, t := range d.To {
			if t.EmailAddress != "" {
				out.to = append(out.to, strings.ToLower(t.EmailAddress))
			}
		}
		for _, at := range d.Attachments {
			if at.Filename != "" {
				out.attachments = append(out.attachments, at.Filename)
			}
		}
		return out, nil
	}
	return nil, nil
}

// normMessageID compares Message-IDs with or without angle brackets, ignoring case and
// surrounding space.
func normMessageID(s string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(s), "<>"))
}
