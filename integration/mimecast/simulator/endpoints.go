package simulator

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Legacy /api endpoints. Validation failures answer HTTP 200 with data [] and fail[] entries
// {key, errors[]}, as the real API does; codes the reference did not record are marked
// "invented" and any client must treat a non-empty fail[] as failure anyway.

const (
	codeNull        = "err_validation_null"
	codeNotAllowed  = "err_validation_value_not_allowed"
	codeTooMany     = "err_validation_too_many_items" // invented
	codeBadDate     = "err_validation_invalid_date"   // invented
	codeBadToken    = "err_invalid_page_token"        // invented
	codeUnknownAddr = "err_xdk_operation_forbidden_for_address"
	codeNoDomain    = "err_domain_not_found" // invented
	codeXDK         = "xdk_failure"
	msgInvalidToken = "0007 Invalid token"
	maxDomainItems  = 500
)

func failReply(f ...api.Fail) reply { return reply{fail: f} }

func emptyKey() json.RawMessage { return json.RawMessage(`{}`) }

// one checks that data holds exactly one item.
func one(c *call) (json.RawMessage, *reply) {
	switch len(c.data) {
	case 0:
		r := failReply(itemFail(emptyKey(), codeNull, "data must hold exactly one item"))
		return nil, &r
	case 1:
		return c.data[0], nil
	}
	r := failReply(itemFail(c.data[1], codeTooMany, "data must hold exactly one item"))
	return nil, &r
}

// decodeItem unmarshals a data item; a type mismatch is a validation failure.
func decodeItem(item json.RawMessage, v any) *reply {
	if err := json.Unmarshal(item, v); err != nil {
		r := failReply(itemFail(item, codeNotAllowed, "invalid data item: "+err.Error()))
		return &r
	}
	return nil
}

// windowBound is one bound of a request's time window: its name in the item, the value sent
// ("" = not sent) and where its time goes.
type windowBound struct {
	name, v string
	dst     *int64
}

// parseBounds sets each bound that was sent to its time, as unit gives it (seconds or
// milliseconds); one that does not parse is the item's failure, naming the bound.
func parseBounds(item json.RawMessage, unit func(time.Time) int64, bounds ...windowBound) *reply {
	for _, b := range bounds {
		if b.v == "" {
			continue
		}
		t, err := api.ParseTime(b.v)
		if err != nil {
			r := failReply(itemFail(item, codeBadDate, b.name+": "+err.Error()))
			return &r
		}
		*b.dst = unit(t)
	}
	return nil
}

// pageToken is the sealed content of meta.pagination.next. It binds the page to the
// endpoint, the client and a digest of the filter, and carries the resolved date window so
// later pages do not depend on the clock.
type pageToken struct {
	Endpoint string   `json:"p"`
	Client   string   `json:"c"`
	Filter   string   `json:"f"`
	Start    int64    `json:"ws,omitempty"`
	End      int64    `json:"we,omitempty"`
	After    *listKey `json:"k,omitempty"`
	AfterRow string   `json:"a,omitempty"`
}

func (s *Server) digest(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString(s.keys.mac(parts...)[:12])
}

// readToken opens the request's page token and checks its binding; nil if there is none.
func (s *Server) readToken(c *call, filter string) (*pageToken, *reply) {
	if c.pageToken == "" {
		return nil, nil
	}
	var t pageToken
	bad := func(msg string) (*pageToken, *reply) {
		return nil, &reply{status: http.StatusBadRequest, fail: []api.Fail{{Code: codeBadToken, Message: msg}}}
	}
	switch {
	case !s.keys.open("page", c.pageToken, &t) || t.Endpoint != c.r.URL.Path:
		return bad("The page token is invalid")
	case t.Client != s.digest("client", c.client):
		return bad("The page token was issued to another application")
	case t.Filter != filter:
		return bad("The page token does not match the request data")
	}
	return &t, nil
}

func (s *Server) sealToken(c *call, t pageToken) string {
	t.Endpoint, t.Client = c.r.URL.Path, s.digest("client", c.client)
	tok, err := s.keys.seal("page", t)
	if err != nil { // cannot happen for this struct
		return ""
	}
	return tok
}

func intPtr(n int) *int { return &n }

// POST /api/domain/get-internal-domain: data [] (or [{}]) lists every domain, otherwise one
// lookup per item; unknown domains give per-item failures next to the found ones.
func (s *Server) getInternalDomain(c *call) reply {
	all := s.arch.domainList()
	if len(c.data) > maxDomainItems {
		return failReply(itemFail(c.data[maxDomainItems], codeTooMany, "at most 500 items are allowed"))
	}
	var filters []api.DomainFilter
	for _, item := range c.data {
		var f api.DomainFilter
		if r := decodeItem(item, &f); r != nil {
			return *r
		}
		filters = append(filters, f)
	}
	if len(filters) == 0 || (len(filters) == 1 && filters[0].Domain == "") {
		data := make([]any, len(all))
		for i, d := range all {
			data[i] = s.domainRecord(d)
		}
		return reply{data: data}
	}
	rp := reply{data: []any{}}
	for i, f := range filters {
		found := false
		for _, d := range all {
			if strings.EqualFold(d.Domain, strings.TrimPrefix(f.Domain, "@")) {
				rp.data = append(rp.data, s.domainRecord(d))
				found = true
				break
			}
		}
		if !found {
			rp.fail = append(rp.fail, itemFail(c.data[i], codeNoDomain, "Domain not found"))
		}
	}
	return rp
}

// POST /api/user/get-internal-users: at most one item {domain}; paginated by address.
func (s *Server) getInternalUsers(c *call) reply {
	if len(c.data) > 1 {
		return failReply(itemFail(c.data[1], codeTooMany, "data must hold at most one item"))
	}
	var f api.UsersFilter
	if len(c.data) == 1 {
		if r := decodeItem(c.data[0], &f); r != nil {
			return *r
		}
	}
	dom := strings.ToLower(strings.TrimPrefix(f.Domain, "@"))
	filter := s.digest("users", dom)
	tok, bad := s.readToken(c, filter)
	if bad != nil {
		return *bad
	}
	after := ""
	if tok != nil {
		after = tok.AfterRow
	}
	size := s.effectivePageSize(c.pageSize)
	rows, total, more := s.arch.directory(dom, after, size)
	if rows == nil {
		rows = []api.User{}
	}
	pg := &api.Pagination{PageSize: size, TotalCount: intPtr(total)}
	switch {
	case more || (s.nextOnLast(filter, after) && len(rows) > 0):
		pg.Next = s.sealToken(c, pageToken{Filter: filter, AfterRow: rows[len(rows)-1].EmailAddress})
	case s.nextOnLast(filter, after):
		pg.Next = s.sealToken(c, pageToken{Filter: filter, AfterRow: after})
	}
	var page any = api.UsersPage{Users: rows, UserCount: total}
	if s.opts.ShapeVariants {
		page = s.varyUsersPage(api.UsersPage{Users: rows, UserCount: total})
	}
	return reply{data: []any{page}, pagination: pg}
}

// window resolves start/end: inclusive Unix seconds; defaults are the start of last
// calendar month and the end of the current day (UTC, per the simulator clock).
func (s *Server) window(item json.RawMessage, f api.MessageListFilter) (start, end int64, norm string, r *reply) {
	now := s.opts.Now().UTC()
	y, m, d := now.Date()
	start = time.Date(y, m-1, 1, 0, 0, 0, 0, time.UTC).Unix()
	end = time.Date(y, m, d, 23, 59, 59, 0, time.UTC).Unix()
	var ns, ne string
	if f.Start != "" {
		t, err := api.ParseTime(f.Start)
		if err != nil {
			rp := failReply(itemFail(item, codeBadDate, "start: "+err.Error()))
			return 0, 0, "", &rp
		}
		start = t.Unix() // second precision: sub-second parts are dropped
		ns = strconv.FormatInt(start, 10)
	}
	if f.End != "" {
		t, err := api.ParseTime(f.End)
		if err != nil {
			rp := failReply(itemFail(item, codeBadDate, "end: "+err.Error()))
			return 0, 0, "", &rp
		}
		end = t.Unix()
		ne = strconv.FormatInt(end, 10)
	}
	return start, end, ns + "|" + ne, nil
}

// POST /api/archive/get-message-list: one mailbox and view, newest first.
func (s *Server) getMessageList(c *call) reply {
	item, r := one(c)
	if r != nil {
		return *r
	}
	var f api.MessageListFilter
	if r := decodeItem(item, &f); r != nil {
		return *r
	}
	var view uint8
	switch f.View {
	case api.ViewInbox:
		view = viewInbox
	case api.ViewSent:
		view = viewSent
	case "":
		// The reference is unsure whether view defaults to INBOX; strict here so a client
		// that forgets it notices.
		return failReply(itemFail(item, codeNull, "view must not be null"))
	default:
		return failReply(itemFail(item, codeNotAllowed, "view must be INBOX or SENT"))
	}
	if f.Mailbox == "" {
		return failReply(itemFail(item, codeNull, "mailbox must not be null"))
	}
	start, end, norm, r := s.window(item, f)
	if r != nil {
		return *r
	}
	filter := s.digest("list", f.View, strings.ToLower(f.Mailbox), norm)
	tok, bad := s.readToken(c, filter)
	if bad != nil {
		return *bad
	}
	var after *listKey
	if tok != nil {
		start, end, after = tok.Start, tok.End, tok.After
	}
	size := s.effectivePageSize(c.pageSize)
	page, ok := s.arch.list(f.Mailbox, view, start, end, after, size)
	if !ok {
		return failReply(itemFail(item, codeUnknownAddr, "0003 Operation forbidden for address"))
	}
	data := make([]any, len(page.msgs))
	for i, m := range page.msgs {
		sum := s.summary(m, page.refs[i])
		switch bad := s.badRecord(m.seq); {
		case bad != 0:
			data[i] = malformed(sum, bad)
		case s.opts.ShapeVariants:
			data[i] = s.varySummary(sum)
		default:
			data[i] = sum
		}
	}
	pg := &api.Pagination{PageSize: size, TotalCount: intPtr(page.total)}
	next := pageToken{Filter: filter, Start: start, End: end, After: after}
	afterText := ""
	if n := len(page.msgs); n > 0 {
		next.After = &listKey{Received: page.msgs[n-1].received, Seq: page.msgs[n-1].seq}
		afterText = s.arch.messageID(page.msgs[n-1].seq)
	}
	if s.opts.ShapeVariants && len(page.msgs) > 0 {
		// Served out of order only after next is fixed from the newest-first order.
		s.shuffle(s.arch.messageID(page.msgs[0].seq), data)
	}
	if page.more || s.nextOnLast(filter, afterText) {
		pg.Next = s.sealToken(c, next)
	}
	return reply{data: data, pagination: pg}
}

// domainRecord is one get-internal-domain record, in a variant shape if asked for.
func (s *Server) domainRecord(d api.Domain) any {
	if s.opts.ShapeVariants {
		return s.varyDomain(d)
	}
	return d
}

func (s *Server) summary(m *message, ref msgRef) api.MessageSummary {
	c := s.arch.content(ref)
	return api.MessageSummary{
		ID: s.arch.messageID(m.seq), Status: "ARCHIVED", Received: api.FormatTime(ref.received),
		Subject: c.subject, Size: s.arch.size(m, ref), AttachmentCount: len(c.atts),
		From: c.from, To: c.to[0], Smash: c.smash, Read: c.read,
	}
}

// checkContext validates the optional context field.
func checkContext(item json.RawMessage, ctx string) *reply {
	switch ctx {
	case "", api.ContextDelivered, api.ContextReceived:
		return nil
	}
	r := failReply(itemFail(item, codeNotAllowed, "context must be DELIVERED or RECEIVED"))
	return &r
}

func invalidID(item json.RawMessage) reply {
	return failReply(itemFail(item, codeXDK, msgInvalidToken))
}

// POST /api/archive/get-message-detail.
func (s *Server) getMessageDetail(c *call) reply {
	item, r := one(c)
	if r != nil {
		return *r
	}
	var req api.MessageDetailRequest
	if r := decodeItem(item, &req); r != nil {
		return *r
	}
	if req.ID == "" {
		return failReply(itemFail(item, codeNull, "id must not be null"))
	}
	if r := checkContext(item, req.Context); r != nil {
		return *r
	}
	kind, seq, _, ok := s.keys.decodeID(req.ID)
	if !ok || kind != kindMessage {
		return invalidID(item)
	}
	m, ref, ok := s.arch.liveMessage(seq)
	if !ok {
		return invalidID(item)
	}
	if s.opts.ShapeVariants {
		return reply{data: []any{s.varyDetail(s.detail(m, ref))}}
	}
	return reply{data: []any{s.detail(m, ref)}}
}

func (s *Server) detail(m *message, ref msgRef) api.MessageDetail {
	c := s.arch.content(ref)
	atts := c.attachments(s.opts.Seed)
	size := m.size.Load()
	if size == 0 {
		size = c.measure(atts)
		m.size.Store(size)
	}
	d := api.MessageDetail{
		ID: s.arch.messageID(m.seq), Status: "ARCHIVED", Smash: c.smash, MimeMessageID: c.messageID,
		Subject: c.subject, Size: size, Received: api.FormatTime(ref.received),
		Processed: api.FormatTime(ref.received.Add(2 * time.Second)), HeaderDate: c.date.Format(rfc5322Date),
		From: c.from, EnvelopeFrom: c.from, ReplyTo: c.from, To: c.to, Cc: c.cc,
		HasHTMLBody: c.layout.hasHTML(), HasTextBody: c.layout.hasText(), MessageBodyPreview: c.preview(),
		Attachments: []api.Attachment{},
	}
	if d.Cc == nil {
		d.Cc = []api.Address{}
	}
	idx := map[string]int{}
	for _, h := range c.headers() {
		if i, ok := idx[h.name]; ok {
			d.Headers[i].Values = append(d.Headers[i].Values, h.value)
			continue
		}
		idx[h.name] = len(d.Headers)
		d.Headers = append(d.Headers, api.Header{Name: h.name, Values: []string{h.value}})
	}
	for _, a := range atts {
		d.Attachments = append(d.Attachments, api.Attachment{
			ID: s.keys.encodeID(kindAttachment, m.seq, a.spec.index), Filename: a.spec.filename,
			Size: int64(len(a.data)), ContentType: a.spec.contentType(), Extension: a.spec.ext(),
			BodyType: 5, SHA256: a.sha256,
		})
	}
	return d
}

// download describes what a pre-signed URL serves.
type download struct {
	Kind    string `json:"k"` // "file" or "part"
	ID      string `json:"id"`
	Type    string `json:"t,omitempty"`
	Expires int64  `json:"e"` // Unix milliseconds
}

// resolveFile finds the bytes behind a get-file id: an attachment or a whole message.
func (s *Server) resolveFile(id string) (*rawFile, bool) {
	kind, seq, part, ok := s.keys.decodeID(id)
	if !ok || (kind != kindMessage && kind != kindAttachment) {
		return nil, false
	}
	_, ref, ok := s.arch.liveMessage(seq)
	if !ok {
		return nil, false
	}
	c := s.arch.content(ref)
	if kind == kindMessage {
		raw, _ := c.rfc822(s.opts.Seed)
		return &rawFile{contentType: "message/rfc822", filename: "message.eml", body: raw}, true
	}
	if part < 0 || part >= len(c.atts) {
		return nil, false
	}
	a := c.atts[part]
	return &rawFile{contentType: a.contentType(), filename: a.filename, body: attachmentBytes(s.opts.Seed, seq, a)}, true
}

// fileExists is resolveFile without generating bytes.
func (s *Server) fileExists(id string) bool {
	kind, seq, part, ok := s.keys.decodeID(id)
	if !ok || (kind != kindMessage && kind != kindAttachment) {
		return false
	}
	_, ref, ok := s.arch.liveMessage(seq)
	if !ok {
		return false
	}
	return kind == kindMessage || (part >= 0 && part < len(s.arch.content(ref).atts))
}

// resolvePart renders one rendition of a message for get-message-part.
func (s *Server) resolvePart(id, typ string) (*rawFile, bool) {
	kind, seq, _, ok := s.keys.decodeID(id)
	if !ok || kind != kindMessage {
		return nil, false
	}
	_, ref, ok := s.arch.liveMessage(seq)
	if !ok {
		return nil, false
	}
	c := s.arch.content(ref)
	if typ == api.PartRFC822 {
		raw, _ := c.rfc822(s.opts.Seed)
		return &rawFile{contentType: "message/rfc822", filename: "message.eml", body: raw}, true
	}
	body, ctype := c.part(typ)
	return &rawFile{contentType: ctype, body: body}, true
}

// POST /api/archive/get-file: JSON {"urls":[...]} by default, bytes with StreamFiles.
func (s *Server) getFile(c *call) reply {
	item, r := one(c)
	if r != nil {
		return *r
	}
	var req api.FileRequest
	if r := decodeItem(item, &req); r != nil {
		return *r
	}
	if req.ID == "" {
		return failReply(itemFail(item, codeNull, "id must not be null"))
	}
	if s.opts.StreamFiles {
		f, ok := s.resolveFile(req.ID)
		if !ok {
			return invalidID(item)
		}
		return reply{raw: streamed(f)}
	}
	if !s.fileExists(req.ID) {
		return invalidID(item)
	}
	return reply{data: []any{api.FileURLs{URLs: []string{s.presign(c.r, download{Kind: "file", ID: req.ID})}}}}
}

// POST /api/archive/get-message-part: JSON {"url":...} by default, bytes with StreamFiles.
func (s *Server) getMessagePart(c *call) reply {
	item, r := one(c)
	if r != nil {
		return *r
	}
	var req api.MessagePartRequest
	if r := decodeItem(item, &req); r != nil {
		return *r
	}
	switch {
	case req.ID == "":
		return failReply(itemFail(item, codeNull, "id must not be null"))
	case req.Mailbox == "":
		return failReply(itemFail(item, codeNull, "mailbox must not be null"))
	case req.Type == "":
		return failReply(itemFail(item, codeNull, "type must not be null"))
	case req.Type != api.PartHTML && req.Type != api.PartPlain && req.Type != api.PartRFC822:
		return failReply(itemFail(item, codeNotAllowed, "type must be HTML, PLAIN or RFC822"))
	}
	if r := checkContext(item, req.Context); r != nil {
		return *r
	}
	f, ok := s.resolvePart(req.ID, req.Type)
	if !ok {
		return invalidID(item)
	}
	if s.opts.StreamFiles {
		return reply{raw: streamed(f)}
	}
	return reply{data: []any{api.FileURLs{URL: s.presign(c.r, download{Kind: "part", ID: req.ID, Type: req.Type})}}}
}

// streamed marks a file for the 1.0-style answer: never application/json, so clients can
// tell bytes from an envelope by Content-Type.
func streamed(f *rawFile) *rawFile {
	out := *f
	if strings.HasPrefix(out.contentType, "application/json") {
		out.contentType = "application/octet-stream"
	}
	return &out
}
