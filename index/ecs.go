package index

import (
	"net/mail"
	"path"
	"strings"
	"time"
)

// The rules that derive ECS values from the archive's, shared by the crawler (new documents)
// and the migration (documents of older releases), so both write the same.

// Direction returns email.direction for an archive view: the inbox holds inbound mail, the
// sent folder outbound; any other view gives "". Organisation.Direction tells internal mail
// apart as well; this rule alone serves where the addresses' domains are not known (documents
// of older releases being migrated).
func Direction(view string) string {
	switch strings.ToUpper(view) {
	case "INBOX":
		return "inbound"
	case "SENT":
		return "outbound"
	}
	return ""
}

// Organisation is the set of the organisation's mail domains (all of the account's internal
// domains, whatever the crawl rules keep: a message does not turn external because its
// recipient's domain is not crawled). The zero value and nil know no domain.
type Organisation struct {
	domains map[string]bool
}

// NewOrganisation returns the organisation of these domains, compared without regard to case.
// A domain holds its own addresses only, not those of its subdomains, as Mimecast's internal
// domains are listed one by one.
func NewOrganisation(domains ...string) *Organisation {
	o := &Organisation{domains: make(map[string]bool, len(domains))}
	for _, d := range domains {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			o.domains[d] = true
		}
	}
	return o
}

// Holds reports whether addr is an address in one of the organisation's domains.
func (o *Organisation) Holds(addr string) bool {
	if o == nil {
		return false
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	return o.domains[strings.ToLower(strings.TrimSpace(addr[at+1:]))]
}

// Direction returns email.direction of a message archived in view with the addresses of e:
// "internal" when its author (email.from), its envelope sender (email.sender, when known) and
// every recipient (email.to and email.cc, at least one) are in the organisation's domains;
// otherwise what the view says (Direction). This is the one rule; the crawler applies it to
// every message and its attachments.
func (o *Organisation) Direction(view string, e *Email) string {
	if o.internal(e) {
		return "internal"
	}
	return Direction(view)
}

func (o *Organisation) internal(e *Email) bool {
	if o == nil || len(o.domains) == 0 || e.From == nil || len(e.From.Address) == 0 {
		return false
	}
	all := func(g *Addresses) bool {
		for _, a := range g.Address {
			if !o.Holds(a) {
				return false
			}
		}
		return true
	}
	if !all(e.From) || (e.Sender != nil && !all(e.Sender)) {
		return false
	}
	recipients := 0
	for _, g := range []*Addresses{e.To, e.Cc} {
		if g != nil {
			if !all(g) {
				return false
			}
			recipients += len(g.Address)
		}
	}
	return recipients > 0
}

// Extension returns file.extension for a file name: lowercase, without the dot, "" when the
// name has none or it is implausibly long.
func Extension(name string) string {
	ext := strings.TrimPrefix(path.Ext(strings.TrimSpace(name)), ".")
	if ext == "" || len(ext) > 16 || strings.ContainsAny(ext, " \t/\\") {
		return ""
	}
	return strings.ToLower(ext)
}

// maxAuthResults bounds the results kept per method, whatever a hostile header lists.
const maxAuthResults = 16

// ParseAuthResults reads the spf, dkim and dmarc results of Authentication-Results header
// values (RFC 8601: "authserv-id; method=result prop=value; ..."), lowercase, each result once
// per method, in order. Unknown methods and malformed parts are skipped; nil when none found.
func ParseAuthResults(values []string) *Auth {
	var a Auth
	for _, v := range values {
		parts := strings.Split(v, ";")
		// The first part is the authserv-id (and version), not a result.
		for _, part := range parts[min(1, len(parts)):] {
			method, result, ok := authResult(part)
			if !ok {
				continue
			}
			switch method {
			case "spf":
				a.SPF = appendResult(a.SPF, result)
			case "dkim":
				a.DKIM = appendResult(a.DKIM, result)
			case "dmarc":
				a.DMARC = appendResult(a.DMARC, result)
			}
		}
	}
	if a.SPF == nil && a.DKIM == nil && a.DMARC == nil {
		return nil
	}
	return &a
}

// authResult reads "method[/version]=result ..." at the start of one resinfo.
func authResult(part string) (method, result string, ok bool) {
	fields := strings.Fields(part)
	if len(fields) == 0 {
		return "", "", false
	}
	method, result, ok = strings.Cut(fields[0], "=")
	if !ok {
		return "", "", false
	}
	method, _, _ = strings.Cut(method, "/")
	method, result = strings.ToLower(method), strings.ToLower(strings.Trim(result, `"`))
	if result == "" || len(result) > 32 {
		return "", "", false
	}
	return method, result, true
}

func appendResult(rs []string, r string) []string {
	for _, have := range rs {
		if have == r {
			return rs
		}
	}
	if len(rs) >= maxAuthResults {
		return rs
	}
	return append(rs, r)
}

// OriginationTime parses the first Date header among values (email.origination_timestamp);
// nil when there is none that parses.
func OriginationTime(values []string) *time.Time {
	for _, v := range values {
		if t, ok := parseDate(strings.TrimSpace(v)); ok {
			t = t.UTC()
			return &t
		}
	}
	return nil
}

// parseDate parses a Date header as mail.ParseDate does. mail.ParseDate tries its layouts in
// an order that puts the form nearly every mailer writes (RFC 5322's "Mon, 02 Jan 2006
// 15:04:05 -0700") after dozens of others, and each failed layout allocates its error: about
// 80 allocations per message. That form is tried first; anything else goes to mail.ParseDate.
func parseDate(v string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC1123Z, v); err == nil {
		return t, true
	}
	t, err := mail.ParseDate(v)
	return t, err == nil
}

// AddressGroup returns the ECS address group of addresses, nil when there are none.
func AddressGroup(addrs ...string) *Addresses {
	var out []string
	for _, a := range addrs {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			out = append(out, a)
		}
	}
	if out == nil {
		return nil
	}
	return &Addresses{Address: out}
}

// NameGroup returns the display names of an address group, nil when none has one.
func NameGroup(names ...string) *Names {
	var out []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	if out == nil {
		return nil
	}
	return &Names{Name: out}
}
