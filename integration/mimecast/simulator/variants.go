package simulator

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math/rand/v2"
	"net/mail"
	"strconv"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Shape variants (Options.ShapeVariants). The public sources disagree about the shape of
// several fields (../shared/mimecast-api.md §2, §5.1, §7), and the client and this simulator
// share their wire types, so they would agree by construction. In variant mode each record
// is re-rendered, deterministically from the seed and the record, in one of the shapes a
// real server might send. Every variant carries the same information as the documented
// shape, so a tolerant client builds the same documents and /_sim/truth is unchanged.
//
// Malformed records (Options.BadRecords) are different: they carry too little to be used,
// and the client must fail those messages alone.

// rng returns a generator seeded by the simulator's seed and parts, so that a record or a
// page gets the same variant on every request.
func (s *Server) rng(parts ...string) *rand.Rand {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(s.opts.Seed))
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	x := h.Sum64()
	return rand.New(rand.NewPCG(x, x^0x9e3779b97f4a7c15))
}

// asMap renders v as a JSON object to mutate; numbers stay json.Number so they print back
// unchanged.
func asMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return map[string]any{}
	}
	return m
}

// varyAddress re-renders the address object under key as an object, a one-element array,
// a bare address or "Name <address>"; with nullable also as null.
func varyAddress(m map[string]any, key string, r *rand.Rand, nullable bool) {
	obj, ok := m[key].(map[string]any)
	if !ok {
		return
	}
	n := 4
	if nullable {
		n = 5
	}
	switch r.IntN(n) {
	case 1:
		m[key] = []any{obj}
	case 2:
		m[key] = obj["emailAddress"]
	case 3:
		m[key] = addressText(obj)
	case 4:
		m[key] = nil
	}
}

// addressText renders {emailAddress, displayableName} as RFC 5322 text.
func addressText(obj map[string]any) string {
	addr, _ := obj["emailAddress"].(string)
	name, _ := obj["displayableName"].(string)
	if name == "" {
		return addr
	}
	return (&mail.Address{Name: name, Address: addr}).String()
}

// varyAddressList re-renders an array of address objects: as is, as one object when it has
// one element, as a comma-separated string, or as null/absent when empty.
func varyAddressList(m map[string]any, key string, r *rand.Rand) {
	list, ok := m[key].([]any)
	if !ok {
		return
	}
	switch c := r.IntN(4); {
	case c == 1 && len(list) == 1:
		m[key] = list[0]
	case c == 2 && len(list) > 0:
		var b bytes.Buffer
		for i, x := range list {
			if obj, ok := x.(map[string]any); ok {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(addressText(obj))
			}
		}
		m[key] = b.String()
	case c == 3 && len(list) == 0:
		if r.IntN(2) == 0 {
			m[key] = nil
		} else {
			delete(m, key)
		}
	}
}

// varyTime re-renders a +0000 time as Z, +00:00, another offset (same instant), or with
// fractional seconds.
func varyTime(m map[string]any, key string, r *rand.Rand) {
	v, ok := m[key].(string)
	if !ok {
		return
	}
	t, err := time.Parse(api.TimeLayout, v)
	if err != nil {
		return
	}
	t = t.UTC()
	switch r.IntN(6) {
	case 1:
		m[key] = t.Format("2006-01-02T15:04:05Z")
	case 2:
		m[key] = t.Format("2006-01-02T15:04:05+00:00")
	case 3:
		m[key] = t.In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339)
	case 4:
		m[key] = t.Format("2006-01-02T15:04:05.000-0700")
	case 5:
		m[key] = t.Format("2006-01-02T15:04:05.000Z07:00")
	}
}

// varyNumber renders a number as a string half of the time.
func varyNumber(m map[string]any, key string, r *rand.Rand) {
	if n, ok := m[key].(json.Number); ok && r.IntN(2) == 0 {
		m[key] = n.String()
	}
}

// varyBool renders a boolean as "true"/"false" half of the time.
func varyBool(m map[string]any, key string, r *rand.Rand) {
	if b, ok := m[key].(bool); ok && r.IntN(2) == 0 {
		m[key] = strconv.FormatBool(b)
	}
}

// dropOrNull removes each optional key, or sets it to null, a third of the time each.
func dropOrNull(m map[string]any, r *rand.Rand, keys ...string) {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			continue
		}
		switch r.IntN(3) {
		case 1:
			delete(m, k)
		case 2:
			m[k] = nil
		}
	}
}

// extras adds fields no client knows (some the real API has, some invented).
func extras(m map[string]any, r *rand.Rand) {
	switch r.IntN(3) {
	case 1:
		m["ccm"], m["recalled"], m["expired"] = false, "false", nil
	case 2:
		m["x-simulator-extra"] = map[string]any{"nested": []any{1, "two", nil}, "when": "2026-01-01T00:00:00Z"}
	}
}

// varySummary renders one get-message-list record in a variant shape. id and received are
// never dropped (the crawler needs them); subject and from are kept in some shape because
// the crawler may fall back to them.
func (s *Server) varySummary(sum api.MessageSummary) any {
	r := s.rng("summary", sum.ID)
	m := asMap(sum)
	varyAddress(m, "from", r, false)
	varyAddress(m, "to", r, true)
	varyTime(m, "received", r)
	varyNumber(m, "size", r)
	varyNumber(m, "attachmentCount", r)
	varyBool(m, "read", r)
	dropOrNull(m, r, "status", "smash", "read", "attachmentCount")
	extras(m, r)
	return m
}

// varyDetail renders a get-message-detail record in a variant shape. Fields that reach the
// documents are only re-shaped, never dropped.
func (s *Server) varyDetail(d api.MessageDetail) any {
	r := s.rng("detail", d.ID)
	m := asMap(d)
	varyAddress(m, "from", r, false)
	varyAddress(m, "envelopeFrom", r, true)
	varyAddress(m, "replyTo", r, false)
	varyAddressList(m, "to", r)
	varyAddressList(m, "cc", r)
	varyTime(m, "received", r)
	varyTime(m, "processed", r)
	varyNumber(m, "size", r)
	for _, k := range []string{"hasHtmlBody", "hasTextBody", "isPassthrough"} {
		varyBool(m, k, r)
	}
	dropOrNull(m, r, "status", "processed", "isPassthrough", "messageBodyPreview", "hasHtmlBody", "hasTextBody", "envelopeFrom")
	if hs, ok := m["headers"].([]any); ok {
		for _, h := range hs {
			if obj, ok := h.(map[string]any); ok {
				if vs, ok := obj["values"].([]any); ok && len(vs) == 1 && r.IntN(2) == 0 {
					obj["values"] = vs[0]
				}
			}
		}
	}
	if as, ok := m["attachments"].([]any); ok {
		for _, a := range as {
			if obj, ok := a.(map[string]any); ok {
				varyNumber(obj, "size", r)
				varyNumber(obj, "bodyType", r)
				dropOrNull(obj, r, "extension", "contentId", "bodyType")
				extras(obj, r)
			}
		}
	}
	extras(m, r)
	return m
}

// varyUsersPage renders data[0] of get-internal-users in a variant shape: userCount spelt
// as in the reference's sample ("usercount"), as a string or absent; user rows with alias as
// a string or absent when false, names absent or null, the doc sample's "emaiLAddress".
func (s *Server) varyUsersPage(p api.UsersPage) any {
	first := ""
	if len(p.Users) > 0 {
		first = p.Users[0].EmailAddress
	}
	r := s.rng("users", first)
	m := asMap(p)
	switch r.IntN(4) {
	case 1:
		m["usercount"] = m["userCount"]
		delete(m, "userCount")
	case 2:
		m["userCount"] = strconv.Itoa(p.UserCount)
	case 3:
		delete(m, "userCount")
	}
	users, _ := m["users"].([]any)
	for i, u := range users {
		obj, ok := u.(map[string]any)
		if !ok {
			continue
		}
		r := s.rng("user", p.Users[i].EmailAddress)
		if r.IntN(4) == 0 {
			obj["emaiLAddress"] = obj["emailAddress"]
			delete(obj, "emailAddress")
		}
		if obj["alias"] == false && r.IntN(3) == 0 {
			delete(obj, "alias")
		}
		varyBool(obj, "alias", r)
		if obj["addressType"] != api.AddressTypeDistributionList {
			dropOrNull(obj, r, "addressType")
		}
		dropOrNull(obj, r, "name", "domain")
		extras(obj, r)
	}
	return m
}

// varyDomain renders one internal domain: booleans as strings, inboundType absent or null.
func (s *Server) varyDomain(d api.Domain) any {
	r := s.rng("domain", d.Domain)
	m := asMap(d)
	varyBool(m, "sendOnly", r)
	varyBool(m, "local", r)
	dropOrNull(m, r, "inboundType", "sendOnly")
	extras(m, r)
	return m
}

// shuffled reports whether a page of records starting with first is served out of order,
// and shuffles data if so. The next token is computed from the newest-first order before,
// so paging stays consistent whatever order a page is served in.
func (s *Server) shuffle(first string, data []any) {
	r := s.rng("order", first)
	if len(data) > 1 && r.IntN(2) == 0 {
		r.Shuffle(len(data), func(i, j int) { data[i], data[j] = data[j], data[i] })
	}
}

// nextOnLast reports whether the final page of a listing carries a next token anyway (which
// then leads to an empty page), as fixtures of public integrations show.
func (s *Server) nextOnLast(filter string, after string) bool {
	return s.opts.EmptyLastPage || (s.opts.ShapeVariants && s.rng("last", filter, after).IntN(2) == 0)
}

// tokenBody is the answer of /oauth/token; in variant mode expires_in is sometimes a string
// (as at least one OAuth2 provider sends it).
func (s *Server) tokenBody(tok string) any {
	t := api.Token{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.opts.TokenTTL / time.Second), Scope: ""}
	if !s.opts.ShapeVariants || s.rng("token", tok).IntN(2) == 0 {
		return t
	}
	m := asMap(t)
	m["expires_in"] = strconv.Itoa(t.ExpiresIn)
	return m
}

// badRecord reports whether message seq is served malformed (Options.BadRecords), and in
// which way: 1 a JSON string instead of an object, 2 an id that is an object, 3 no received
// time, 4 a received time that is not a time.
func (s *Server) badRecord(seq uint32) int {
	if s.opts.BadRecords <= 0 {
		return 0
	}
	r := s.rng("bad", strconv.FormatUint(uint64(seq), 10))
	if r.Float64() >= s.opts.BadRecords {
		return 0
	}
	return 1 + r.IntN(4)
}

// malformed renders a summary in bad way k (see badRecord).
func malformed(sum api.MessageSummary, k int) any {
	m := asMap(sum)
	switch k {
	case 1:
		return "message " + sum.Subject
	case 2:
		m["id"] = map[string]any{"secureId": sum.ID}
	case 3:
		delete(m, "received")
	default:
		m["received"] = "yesterday"
	}
	return m
}

// MalformedIDs returns the ids of the messages that get-message-list serves malformed under
// Options.BadRecords, in no particular order. Truth still lists them: they exist, the API
// just describes them badly.
func (s *Server) MalformedIDs() []string {
	if s.opts.BadRecords <= 0 {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, mb := range s.TruthOf(TruthQuery{SkipAttachments: true}).Mailboxes {
		for _, m := range mb.Messages {
			if _, seq, _, ok := s.keys.decodeID(m.ID); ok && !seen[m.ID] && s.badRecord(seq) != 0 {
				seen[m.ID] = true
				out = append(out, m.ID)
			}
		}
	}
	return out
}
