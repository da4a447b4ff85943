package simulator

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// rawPage is one get-message-list answer with its records left raw.
type rawPage struct {
	records []json.RawMessage
	next    string
}

// walkRaw lists one view page by page and returns the raw pages.
func (h *harness) walkRaw(tok string, f api.MessageListFilter, pageSize int) []rawPage {
	h.t.Helper()
	var pages []rawPage
	next := ""
	for n := 1; ; n++ {
		r := h.call(tok, listPath, pageSize, next, f)
		if r.status != http.StatusOK || len(r.env.Fail) > 0 {
			h.t.Fatalf("page %d: %d %s", n, r.status, r.body)
		}
		p := rawPage{records: r.env.Data}
		if r.env.Meta.Pagination != nil {
			p.next = r.env.Meta.Pagination.Next
		}
		pages = append(pages, p)
		if p.next == "" || len(p.records) == 0 {
			return pages
		}
		if n > 1000 {
			h.t.Fatal("pagination does not end")
		}
		next = p.next
	}
}

// fieldsOf decodes a raw record into its fields; a record that is not an object gives nil.
func fieldsOf(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// shapeOf names the variant of a field: its JSON kind, refined for strings and times.
func shapeOf(field string, raw json.RawMessage) string {
	if raw == nil {
		return "absent"
	}
	k := string(api.KindOf(raw))
	if k != string(api.KindString) {
		return k
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	switch field {
	case "received", "processed":
		switch {
		case strings.Contains(s, "."):
			return "time-fraction"
		case strings.HasSuffix(s, "Z"):
			return "time-Z"
		case strings.HasSuffix(s, "+0000"):
			return "time-+0000"
		case strings.HasSuffix(s, "+00:00"):
			return "time-+00:00"
		default:
			return "time-other-offset"
		}
	case "from", "to", "cc", "replyTo":
		if strings.Contains(s, "<") {
			return "string-named"
		}
		return "string-bare"
	}
	return k
}

type shapeCount map[string]map[string]int // field → shape → count

func (c shapeCount) add(field, shape string) {
	if c[field] == nil {
		c[field] = map[string]int{}
	}
	c[field][shape]++
}

func (c shapeCount) want(t *testing.T, field string, shapes ...string) {
	t.Helper()
	for _, s := range shapes {
		if c[field][s] == 0 {
			t.Errorf("%s: shape %q never served (seen %v)", field, s, c[field])
		}
	}
}

func variantArchive() Options {
	return Options{Seed: 5, Domains: 2, Mailboxes: 4, Messages: 40, ShapeVariants: true}
}

func TestShapeVariantsMessageList(t *testing.T) {
	h := newHarness(t, variantArchive())
	tok := h.token()
	tr := h.sim.Truth()
	seen := shapeCount{}
	shuffled, finalEmpty, walks := 0, 0, 0
	for _, mb := range tr.Mailboxes {
		if mb.Type != TypeMailbox || mb.Alias {
			continue
		}
		for _, view := range []string{api.ViewInbox, api.ViewSent} {
			f := wide(mb.Address, view)
			pages := h.walkRaw(tok, f, 7)
			walks++
			if last := pages[len(pages)-1]; len(last.records) == 0 && len(pages) > 1 {
				finalEmpty++
			}
			var ids []string
			for _, p := range pages {
				var times []time.Time
				for _, raw := range p.records {
					m := fieldsOf(raw)
					if m == nil {
						t.Fatalf("record %s is not an object", raw)
					}
					var id, received string
					_ = json.Unmarshal(m["id"], &id)
					_ = json.Unmarshal(m["received"], &received)
					ts, err := api.ParseTime(received)
					if id == "" || err != nil {
						t.Fatalf("record without a usable id or received time: %s", raw)
					}
					ids = append(ids, id)
					times = append(times, ts)
					for _, k := range []string{"from", "to", "received", "size", "attachmentCount", "read", "status", "smash"} {
						seen.add(k, shapeOf(k, m[k]))
					}
					if m["ccm"] != nil || m["x-simulator-extra"] != nil {
						seen.add("extra", "present")
					}
				}
				if !sort.SliceIsSorted(times, func(i, j int) bool { return times[i].After(times[j]) }) {
					shuffled++
				}
			}
			// Shuffled or not, paging lists every message of the view once.
			want := truthIDs(mb, view)
			sort.Strings(ids)
			sort.Strings(want)
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("%s %s: listed %d ids, truth has %d (or they differ)", mb.Address, view, len(ids), len(want))
			}
			// The same request gives the same pages in the same order.
			if again := h.walkRaw(tok, f, 7); len(again) != len(pages) || (len(pages) > 0 && len(pages[0].records) > 0 && string(again[0].records[0]) != string(pages[0].records[0])) {
				t.Errorf("%s %s: a second walk served different pages", mb.Address, view)
			}
		}
	}
	seen.want(t, "to", "object", "array", "string-bare", "string-named", "null")
	seen.want(t, "from", "object", "array", "string-bare", "string-named")
	seen.want(t, "received", "time-+0000", "time-Z", "time-+00:00", "time-other-offset", "time-fraction")
	seen.want(t, "size", "number", "string")
	seen.want(t, "attachmentCount", "number", "string", "absent", "null")
	seen.want(t, "read", "bool", "string", "absent")
	seen.want(t, "status", "string", "absent", "null")
	seen.want(t, "smash", "string", "null")
	seen.want(t, "extra", "present")
	if shuffled == 0 {
		t.Errorf("no page was served out of newest-first order")
	}
	if finalEmpty == 0 || finalEmpty == walks {
		t.Errorf("%d of %d walks ended with an empty page that had been announced by next; want some, not all", finalEmpty, walks)
	}
}

func TestShapeVariantsDetailUsersDomainsToken(t *testing.T) {
	h := newHarness(t, variantArchive())
	tok := h.token()
	tr := h.sim.Truth()
	seen := shapeCount{}
	for _, mb := range tr.Mailboxes {
		for _, m := range mb.Messages {
			r := h.call(tok, "/api/archive/get-message-detail", 0, "", api.MessageDetailRequest{ID: m.ID})
			if r.status != http.StatusOK || len(r.env.Data) != 1 {
				t.Fatalf("detail %s: %d %s", m.ID, r.status, r.body)
			}
			d := fieldsOf(r.env.Data[0])
			for _, k := range []string{"to", "cc", "from", "replyTo", "received", "size", "hasHtmlBody", "messageBodyPreview"} {
				seen.add(k, shapeOf(k, d[k]))
			}
			var headers []map[string]json.RawMessage
			_ = json.Unmarshal(d["headers"], &headers)
			for _, hd := range headers {
				seen.add("headers[].values", shapeOf("values", hd["values"]))
			}
			var atts []map[string]json.RawMessage
			_ = json.Unmarshal(d["attachments"], &atts)
			for _, a := range atts {
				seen.add("attachments[].size", shapeOf("size", a["size"]))
				seen.add("attachments[].extension", shapeOf("extension", a["extension"]))
			}
		}
	}
	seen.want(t, "to", "array", "object", "string-named")
	seen.want(t, "cc", "array", "null", "absent")
	seen.want(t, "from", "object", "array", "string-bare", "string-named")
	seen.want(t, "received", "time-+0000", "time-Z", "time-fraction")
	seen.want(t, "size", "number", "string")
	seen.want(t, "hasHtmlBody", "bool", "string", "absent", "null")
	seen.want(t, "messageBodyPreview", "string", "absent", "null")
	seen.want(t, "headers[].values", "array", "string")
	seen.want(t, "attachments[].size", "number", "string")
	seen.want(t, "attachments[].extension", "string", "absent", "null")

	users := shapeCount{}
	domains := h.call(tok, "/api/domain/get-internal-domain", 0, "")
	for _, raw := range domains.env.Data {
		users.add("local", shapeOf("local", fieldsOf(raw)["local"]))
		var d api.Domain
		if err := json.Unmarshal(raw, &d); err != nil || d.Domain == "" {
			t.Fatalf("domain %s: %v", raw, err)
		}
		for pageToken, n := "", 0; n < 100; n++ {
			r := h.call(tok, "/api/user/get-internal-users", 1, pageToken, api.UsersFilter{Domain: d.Domain})
			if r.status != http.StatusOK || len(r.env.Data) != 1 {
				t.Fatalf("users: %d %s", r.status, r.body)
			}
			page := fieldsOf(r.env.Data[0])
			switch {
			case page["userCount"] != nil:
				users.add("userCount", shapeOf("userCount", page["userCount"]))
			case page["usercount"] != nil:
				users.add("userCount", "usercount")
			default:
				users.add("userCount", "absent")
			}
			var rows []map[string]json.RawMessage
			_ = json.Unmarshal(page["users"], &rows)
			for _, u := range rows {
				if u["emaiLAddress"] != nil {
					users.add("emailAddress", "emaiLAddress")
				}
				users.add("alias", shapeOf("alias", u["alias"]))
			}
			if r.env.Meta.Pagination == nil || r.env.Meta.Pagination.Next == "" || len(rows) == 0 {
				break
			}
			pageToken = r.env.Meta.Pagination.Next
		}
	}
	users.want(t, "local", "bool", "string")
	users.want(t, "userCount", "number", "string", "usercount", "absent")
	users.want(t, "emailAddress", "emaiLAddress")
	users.want(t, "alias", "bool", "string", "absent")

	expires := map[api.Kind]int{}
	for range 20 {
		r, _ := h.tokenFor(h.sim.opts.ClientID, h.sim.opts.ClientSecret)
		expires[api.KindOf(fieldsOf(r.body)["expires_in"])]++
	}
	if expires[api.KindNumber] == 0 || expires[api.KindString] == 0 {
		t.Errorf("expires_in kinds %v: want numbers and strings", expires)
	}
}

// Variants change how records are spelt, never the archive.
func TestShapeVariantsKeepTruthAndDefaultShapes(t *testing.T) {
	plain, err := New(Options{Seed: 5, Domains: 2, Mailboxes: 4, Messages: 40})
	if err != nil {
		t.Fatal(err)
	}
	varied, err := New(variantArchive())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plain.Truth(), varied.Truth()) {
		t.Errorf("the truth differs with shape variants on")
	}

	// Off by default: the documented shapes only.
	h := newHarness(t, Options{Seed: 5, Domains: 2, Mailboxes: 4, Messages: 40})
	tok := h.token()
	mb := firstMailbox(t, h.sim.Truth())
	for _, p := range h.walkRaw(tok, wide(mb.Address, api.ViewInbox), 7) {
		for _, raw := range p.records {
			m := fieldsOf(raw)
			if shapeOf("to", m["to"]) != "object" || shapeOf("received", m["received"]) != "time-+0000" || shapeOf("size", m["size"]) != "number" {
				t.Fatalf("default mode served a variant: %s", raw)
			}
		}
	}
}

func TestBadRecords(t *testing.T) {
	o := variantArchive()
	o.BadRecords = 0.2
	h := newHarness(t, o)
	tok := h.token()
	bad := map[string]bool{}
	for _, id := range h.sim.MalformedIDs() {
		bad[id] = true
	}
	if len(bad) == 0 {
		t.Fatal("no malformed message at rate 0.2")
	}
	kinds := map[string]int{}
	good := 0
	for _, mb := range h.sim.Truth().Mailboxes {
		if mb.Type != TypeMailbox || mb.Alias {
			continue
		}
		for _, view := range []string{api.ViewInbox, api.ViewSent} {
			for _, p := range h.walkRaw(tok, wide(mb.Address, view), 7) {
				for _, raw := range p.records {
					m := fieldsOf(raw)
					var id, received string
					_ = json.Unmarshal(m["id"], &id)
					_ = json.Unmarshal(m["received"], &received)
					_, terr := api.ParseTime(received)
					switch {
					case m == nil:
						kinds["string record"]++
					case api.KindOf(m["id"]) == api.KindObject:
						kinds["object id"]++
					case m["received"] == nil:
						kinds["no received"]++
						if !bad[id] {
							t.Errorf("message %s served without received but not named malformed", id)
						}
					case terr != nil:
						kinds["bad received"]++
						if !bad[id] {
							t.Errorf("message %s served with a bad received time but not named malformed", id)
						}
					default:
						good++
						if bad[id] {
							t.Errorf("message %s named malformed but served well", id)
						}
					}
				}
			}
		}
	}
	for _, k := range []string{"string record", "object id", "no received", "bad received"} {
		if kinds[k] == 0 {
			t.Errorf("malformed kind %q never served (%v)", k, kinds)
		}
	}
	if good == 0 {
		t.Errorf("every record was malformed")
	}
	if _, err := New(Options{BadRecords: 1.5}); err == nil {
		t.Errorf("BadRecords 1.5 accepted")
	}
}
