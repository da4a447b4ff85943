package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// ErrNotFound is returned by the mutators for an unknown mailbox or message.
var ErrNotFound = errors.New("not found")

// ErrExists is returned by AddMailbox for an address that is already in use.
var ErrExists = errors.New("already exists")

// Directory entry kinds, as reported in Truth.
const (
	TypeMailbox          = "mailbox"
	TypeAlias            = "alias"
	TypeDistributionList = "dl"
)

const (
	viewInbox uint8 = 0
	viewSent  uint8 = 1
)

var viewNames = [2]string{api.ViewInbox, api.ViewSent}

type domain struct {
	id          string
	name        string
	local       bool
	inboundType string
}

// mailbox is one directory entry: a real mailbox, an alias row or a distribution list.
// Entries are never removed from archive.boxes (messages refer to them by index); a deleted
// entry is flagged and dropped from byAddress and dir.
type mailbox struct {
	num         uint32
	address     string // lower case
	name        string
	domain      int
	typ         string // TypeMailbox, TypeAlias, TypeDistributionList
	addressType string
	aliasOf     *mailbox
	deleted     bool
	views       [2][]*message // newest first, ties by id
}

// message is all the simulator stores per message (about 40 bytes); everything else is
// derived from seq on demand.
type message struct {
	seq      uint32
	box      uint32
	view     uint8
	deleted  bool
	received int64        // Unix seconds
	size     atomic.Int64 // RFC 822 size, computed on first use
}

// archive is the mutable model: domains, directory and messages.
type archive struct {
	seed   int64
	keys   keyring
	people contacts // fixed after newArchive

	mu        sync.RWMutex
	domains   []*domain
	domainIdx map[string]int
	boxes     []*mailbox
	byAddress map[string]*mailbox // live entries
	dir       []*mailbox          // live entries sorted by address
	bySeq     []*message          // index = seq; deleted messages stay, flagged
}

func newArchive(o Options, keys keyring) *archive {
	a := &archive{
		seed:      o.Seed,
		keys:      keys,
		domainIdx: map[string]int{},
		byAddress: map[string]*mailbox{},
	}
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0xD0D0))
	a.people.external = newExternalContacts(r)

	// Domains: seeded company names, then the local domain.
	perm := r.Perm(len(companyWords))
	for i := range o.Domains {
		name := companyWords[perm[i%len(companyWords)]]
		if i >= len(companyWords) {
			name += fmt.Sprint(i / len(companyWords))
		}
		a.addDomain(name+".example", false, []string{"known", "smtp", "ldap"}[i%3])
	}
	a.addDomain("local."+a.domains[0].name, true, "any")

	// Mailboxes round-robin over the non-local domains, plus one in the local domain.
	taken := map[string]bool{}
	// person picks an unused first.last; in crowded domains it falls back to appending the
	// mailbox number n, which no other generated address carries.
	person := func(dom, n int) (string, string) {
		for attempt := 0; ; attempt++ {
			f, l := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
			local := f + "." + l
			if attempt >= 20 {
				local += fmt.Sprint(n)
			}
			addr := local + "@" + a.domains[dom].name
			if !taken[addr] {
				taken[addr] = true
				return addr, displayName(f, l)
			}
		}
	}
	var real []*mailbox
	for j := range o.Mailboxes {
		addr, name := person(j%o.Domains, j)
		typ := "created_by_ldap_sync"
		if j%5 == 4 {
			typ = "created_manually"
		}
		real = append(real, a.addEntry(addr, name, j%o.Domains, TypeMailbox, typ, nil))
	}
	addr, name := person(o.Domains, o.Mailboxes)
	real = append(real, a.addEntry(addr, name, o.Domains, TypeMailbox, "created_by_ldap_sync", nil))

	// Alias rows for every second mailbox, one distribution list per domain.
	for j, mb := range real {
		if j%2 != 0 {
			continue
		}
		local, dom, _ := strings.Cut(mb.address, "@")
		alias := strings.SplitN(local, ".", 2)[0] + "@" + dom
		if taken[alias] {
			alias = strings.ReplaceAll(local, ".", "_") + "@" + dom
		}
		taken[alias] = true
		a.addEntry(alias, mb.name, mb.domain, TypeAlias, mb.addressType, mb)
	}
	for i, d := range a.domains {
		a.addEntry("all-staff@"+d.name, "All Staff", i, TypeDistributionList, api.AddressTypeDistributionList, nil)
	}
	for _, mb := range real {
		a.people.colleagues = append(a.people.colleagues, api.Address{EmailAddress: mb.address, DisplayableName: mb.name})
	}

	// Messages: mailbox-major, 2/3 INBOX and 1/3 SENT, received in (Epoch-Span, Epoch].
	spanSec := int64(o.Span / time.Second)
	epoch := o.Epoch.Unix()
	a.bySeq = make([]*message, 0, len(real)*o.Messages)
	for _, mb := range real {
		for k := range o.Messages {
			seq := uint32(len(a.bySeq))
			m := &message{seq: seq, box: mb.num, view: viewInbox, received: epoch - receivedOffset(o.Seed, seq, spanSec)}
			if k%3 == 2 {
				m.view = viewSent
			}
			a.bySeq = append(a.bySeq, m)
			mb.views[m.view] = append(mb.views[m.view], m)
		}
		for v := range mb.views {
			sort.Slice(mb.views[v], func(i, j int) bool { return a.before(mb.views[v][i], mb.views[v][j]) })
		}
	}
	return a
}

func (a *archive) addDomain(name string, local bool, inbound string) {
	i := len(a.domains)
	a.domains = append(a.domains, &domain{id: a.keys.encodeID(kindDomain, uint32(i), 0), name: name, local: local, inboundType: inbound})
	a.domainIdx[name] = i
}

// addEntry creates a directory entry; the caller holds mu (or is the constructor).
func (a *archive) addEntry(addr, name string, dom int, typ, addressType string, aliasOf *mailbox) *mailbox {
	mb := &mailbox{num: uint32(len(a.boxes)), address: addr, name: name, domain: dom, typ: typ, addressType: addressType, aliasOf: aliasOf}
	a.boxes = append(a.boxes, mb)
	a.byAddress[addr] = mb
	i := sort.Search(len(a.dir), func(i int) bool { return a.dir[i].address >= addr })
	a.dir = append(a.dir, nil)
	copy(a.dir[i+1:], a.dir[i:])
	a.dir[i] = mb
	return mb
}

func (a *archive) removeEntry(mb *mailbox) {
	mb.deleted = true
	delete(a.byAddress, mb.address)
	i := sort.Search(len(a.dir), func(i int) bool { return a.dir[i].address >= mb.address })
	if i < len(a.dir) && a.dir[i] == mb {
		a.dir = append(a.dir[:i], a.dir[i+1:]...)
	}
}

// messageID is the opaque id of a message.
func (a *archive) messageID(seq uint32) string { return a.keys.encodeID(kindMessage, seq, 0) }

// before is the listing order: newest first, ties broken by id (ids are computed only for
// ties, which are rare except among messages added in the same second).
func (a *archive) before(x, y *message) bool {
	if x.received != y.received {
		return x.received > y.received
	}
	return a.messageID(x.seq) < a.messageID(y.seq)
}

// ref is what content generation needs about m; safe to use after mu is released because
// the fields it copies never change.
func (a *archive) ref(m *message) msgRef {
	owner := a.boxes[m.box]
	return msgRef{
		seq:      m.seq,
		view:     viewNames[m.view],
		received: time.Unix(m.received, 0).UTC(),
		owner:    api.Address{EmailAddress: owner.address, DisplayableName: owner.name},
	}
}

func (a *archive) content(ref msgRef) *content {
	return buildContent(a.seed, a.keys, &a.people, ref)
}

// size returns the RFC 822 size of m, computing it once.
func (a *archive) size(m *message, ref msgRef) int64 {
	if n := m.size.Load(); n > 0 {
		return n
	}
	c := a.content(ref)
	n := c.measure(c.attachments(a.seed))
	m.size.Store(n)
	return n
}

// liveMessage resolves a message id to a live message.
func (a *archive) liveMessage(seq uint32) (*message, msgRef, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if int(seq) >= len(a.bySeq) {
		return nil, msgRef{}, false
	}
	m := a.bySeq[seq]
	if m.deleted || a.boxes[m.box].deleted {
		return nil, msgRef{}, false
	}
	return m, a.ref(m), true
}

// resolveMailbox finds the real mailbox behind an address (aliases resolve to their owner).
func (a *archive) resolveMailbox(addr string) *mailbox {
	mb := a.byAddress[strings.ToLower(addr)]
	if mb == nil {
		return nil
	}
	if mb.typ == TypeAlias {
		mb = mb.aliasOf
	}
	if mb == nil || mb.typ != TypeMailbox || mb.deleted {
		return nil
	}
	return mb
}

// listing is one page of get-message-list.
type listing struct {
	msgs  []*message
	refs  []msgRef
	total int
	more  bool
}

// listKey is the position after which a page continues.
type listKey struct {
	Received int64  `json:"r"`
	Seq      uint32 `json:"s"`
}

// list returns up to size messages of (mailbox, view) received in [start, end] (Unix
// seconds, inclusive) that come after key in listing order.
func (a *archive) list(addr string, view uint8, start, end int64, after *listKey, size int) (listing, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	mb := a.resolveMailbox(addr)
	if mb == nil {
		return listing{}, false
	}
	v := mb.views[view]
	lo := sort.Search(len(v), func(i int) bool { return v[i].received <= end })
	hi := sort.Search(len(v), func(i int) bool { return v[i].received < start })
	if hi < lo {
		hi = lo
	}
	from := lo
	if after != nil {
		var keyID string
		pos := sort.Search(len(v), func(i int) bool {
			x := v[i]
			if x.received != after.Received {
				return x.received < after.Received
			}
			if keyID == "" {
				keyID = a.messageID(after.Seq)
			}
			return a.messageID(x.seq) > keyID
		})
		from = max(from, pos)
	}
	to := min(hi, from+size)
	if to < from {
		to = from
	}
	out := listing{total: hi - lo, more: to < hi}
	for _, m := range v[from:to] {
		out.msgs = append(out.msgs, m)
		out.refs = append(out.refs, a.ref(m))
	}
	return out, true
}

// directory returns live entries with address > after, in address order, filtered by
// domain ("" = all), up to size; total counts every match.
func (a *archive) directory(dom, after string, size int) (rows []api.User, total int, more bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, mb := range a.dir {
		d := a.domains[mb.domain].name
		if dom != "" && !strings.EqualFold(d, dom) {
			continue
		}
		total++
		if mb.address <= after {
			continue
		}
		if len(rows) == size {
			more = true
			continue
		}
		rows = append(rows, api.User{EmailAddress: mb.address, Name: mb.name, Alias: mb.typ == TypeAlias, AddressType: mb.addressType, Domain: d})
	}
	return rows, total, more
}

func (a *archive) domainList() []api.Domain {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]api.Domain, len(a.domains))
	for i, d := range a.domains {
		out[i] = api.Domain{ID: d.id, Domain: d.name, Local: d.local, InboundType: d.inboundType}
	}
	return out
}

// addMessages adds n messages received at now to a mailbox, alternating INBOX and SENT.
func (a *archive) addMessages(addr string, n int, now time.Time) ([]string, error) {
	if n < 0 || n > 1_000_000 {
		return nil, fmt.Errorf("add %d messages to %s: count must be 0..1000000", n, addr)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	mb := a.byAddress[strings.ToLower(addr)]
	if mb == nil || mb.typ != TypeMailbox {
		return nil, fmt.Errorf("add messages to %s: mailbox %w", addr, ErrNotFound)
	}
	if len(a.bySeq)+n > maxMessages {
		return nil, fmt.Errorf("add %d messages to %s: archive full (%d messages)", n, addr, maxMessages)
	}
	ids := make([]string, 0, n)
	for i := range n {
		seq := uint32(len(a.bySeq))
		m := &message{seq: seq, box: mb.num, view: uint8(i % 2), received: now.Unix()}
		a.bySeq = append(a.bySeq, m)
		v := mb.views[m.view]
		pos := sort.Search(len(v), func(j int) bool { return a.before(m, v[j]) })
		v = append(v, nil)
		copy(v[pos+1:], v[pos:])
		v[pos] = m
		mb.views[m.view] = v
		ids = append(ids, a.messageID(seq))
	}
	return ids, nil
}

func (a *archive) deleteMessage(id string) error {
	kind, seq, _, ok := a.keys.decodeID(id)
	if !ok || kind != kindMessage {
		return fmt.Errorf("delete message: id %w", ErrNotFound)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if int(seq) >= len(a.bySeq) || a.bySeq[seq].deleted || a.boxes[a.bySeq[seq].box].deleted {
		return fmt.Errorf("delete message: id %w", ErrNotFound)
	}
	m := a.bySeq[seq]
	m.deleted = true
	mb := a.boxes[m.box]
	v := mb.views[m.view]
	pos := sort.Search(len(v), func(j int) bool { return !a.before(v[j], m) })
	if pos < len(v) && v[pos] == m {
		mb.views[m.view] = append(v[:pos], v[pos+1:]...)
	}
	return nil
}

func (a *archive) addMailbox(addr string) error {
	addr = strings.ToLower(strings.TrimSpace(addr))
	local, dom, ok := strings.Cut(addr, "@")
	if !ok || local == "" || dom == "" || strings.ContainsAny(addr, " <>\",;/") || strings.Count(addr, "@") != 1 {
		return fmt.Errorf("add mailbox %q: not an email address", addr)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	di, ok := a.domainIdx[dom]
	if !ok {
		return fmt.Errorf("add mailbox %s: domain %s %w", addr, dom, ErrNotFound)
	}
	if a.byAddress[addr] != nil {
		return fmt.Errorf("add mailbox %s: %w", addr, ErrExists)
	}
	parts := strings.SplitN(local, ".", 2)
	name := displayName(parts[0], parts[len(parts)-1])
	if len(parts) == 1 {
		name = strings.ToUpper(local[:1]) + local[1:]
	}
	a.addEntry(addr, name, di, TypeMailbox, "created_manually", nil)
	return nil
}

func (a *archive) deleteMailbox(addr string) error {
	addr = strings.ToLower(strings.TrimSpace(addr))
	a.mu.Lock()
	defer a.mu.Unlock()
	mb := a.byAddress[addr]
	if mb == nil || mb.typ != TypeMailbox {
		return fmt.Errorf("delete mailbox %s: %w", addr, ErrNotFound)
	}
	for _, other := range a.boxes {
		if other.aliasOf == mb && !other.deleted {
			a.removeEntry(other)
		}
	}
	for v := range mb.views {
		for _, m := range mb.views[v] {
			m.deleted = true
		}
		mb.views[v] = nil
	}
	a.removeEntry(mb)
	return nil
}

// Truth is the simulator's ground truth: what a complete crawl must find.
type Truth struct {
	Domains   []TruthDomain  `json:"domains"`
	Mailboxes []TruthMailbox `json:"mailboxes"`
	Alerts    []TruthAlert   `json:"alerts"` // security alert records, see alerts.go
}

// TruthDomain is one internal domain.
type TruthDomain struct {
	ID     string `json:"id"`
	Domain string `json:"domain"`
	Local  bool   `json:"local"`
}

// TruthMailbox is one directory entry. Alias rows (Alias true, Type "alias") and
// distribution lists (Type "dl", AddressType dl_from_ldap) have no messages; a crawler is
// expected to skip them.
type TruthMailbox struct {
	Address     string         `json:"address"`
	Domain      string         `json:"domain"`
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	AddressType string         `json:"address_type"`
	AliasOf     string         `json:"alias_of,omitempty"`
	Local       bool           `json:"local"`
	Alias       bool           `json:"alias"`
	Messages    []TruthMessage `json:"messages"`
}

// TruthMessage is one archived message, newest first within its mailbox (ties by id).
type TruthMessage struct {
	ID          string            `json:"id"`
	View        string            `json:"view"`
	Received    string            `json:"received"` // api.TimeLayout
	Subject     string            `json:"subject"`
	Smash       string            `json:"smash"`
	Size        int64             `json:"size"`       // RFC 822 size
	BodyToken   string            `json:"body_token"` // unique word present in the body text
	Attachments []TruthAttachment `json:"attachments"`
}

// TruthAttachment is one attachment; SHA256 and Size describe the decoded bytes served.
type TruthAttachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	// TextToken is a word found only in the text of this attachment's file; empty when the
	// file carries no searchable text of its own.
	TextToken string `json:"text_token,omitempty"`
	// TextBroken tells that the file is deliberately broken (a truncated ZIP, a PDF with a
	// corrupt stream): no reader gets text from it.
	TextBroken bool `json:"text_broken,omitempty"`
}

// TruthQuery narrows Truth for large archives, where hashing every attachment takes a while.
type TruthQuery struct {
	// Mailbox limits the answer to one directory entry ("" = all).
	Mailbox string
	// SkipAttachments leaves Attachments empty and skips generating and hashing their
	// bytes; message sizes already computed (e.g. by a listing) are reused.
	SkipAttachments bool
}

// truth builds the ground truth. Message details are derived outside the lock and in
// parallel, since a large archive has gigabytes to hash.
func (a *archive) truth(q TruthQuery) Truth {
	only := q.Mailbox
	type job struct {
		m   *message
		ref msgRef
		out *TruthMessage
	}
	var t Truth
	var jobs []job
	a.mu.RLock()
	for _, d := range a.domains {
		t.Domains = append(t.Domains, TruthDomain{ID: d.id, Domain: d.name, Local: d.local})
	}
	for _, mb := range a.dir {
		if only != "" && !strings.EqualFold(only, mb.address) {
			continue
		}
		row := TruthMailbox{
			Address: mb.address, Domain: a.domains[mb.domain].name, Name: mb.name, Type: mb.typ,
			AddressType: mb.addressType, Local: a.domains[mb.domain].local, Alias: mb.typ == TypeAlias,
			Messages: []TruthMessage{},
		}
		if mb.aliasOf != nil {
			row.AliasOf = mb.aliasOf.address
		}
		all := append(append([]*message(nil), mb.views[0]...), mb.views[1]...)
		sort.Slice(all, func(i, j int) bool { return a.before(all[i], all[j]) })
		row.Messages = make([]TruthMessage, len(all))
		for _, m := range all {
			jobs = append(jobs, job{m: m, ref: a.ref(m)})
		}
		t.Mailboxes = append(t.Mailboxes, row)
	}
	a.mu.RUnlock()

	// Point jobs at their slots now that the rows no longer move.
	k := 0
	for i := range t.Mailboxes {
		for j := range t.Mailboxes[i].Messages {
			jobs[k].out = &t.Mailboxes[i].Messages[j]
			k++
		}
	}
	work := make(chan job)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range work {
				*j.out = a.truthMessage(j.m, j.ref, q.SkipAttachments)
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	return t
}

func (a *archive) truthMessage(m *message, ref msgRef, skipAttachments bool) TruthMessage {
	c := a.content(ref)
	size := m.size.Load()
	var atts []attachmentData
	if !skipAttachments || size == 0 {
		atts = c.attachments(a.seed)
	}
	if size == 0 {
		size = c.measure(atts)
		m.size.Store(size)
	}
	if skipAttachments {
		atts = nil
	}
	tm := TruthMessage{
		ID: a.messageID(m.seq), View: ref.view, Received: api.FormatTime(ref.received), Subject: c.subject,
		Smash: c.smash, Size: size, BodyToken: c.token, Attachments: []TruthAttachment{},
	}
	for _, at := range atts {
		tm.Attachments = append(tm.Attachments, TruthAttachment{
			ID: a.keys.encodeID(kindAttachment, m.seq, at.spec.index), Filename: at.spec.filename,
			ContentType: at.spec.contentType(), SHA256: at.sha256, Size: int64(len(at.data)),
			TextBroken: at.spec.kind.broken(),
		})
		if at.spec.kind.hasTextToken() {
			tm.Attachments[len(tm.Attachments)-1].TextToken = textToken(a.seed, m.seq, at.spec.index)
		}
	}
	return tm
}
