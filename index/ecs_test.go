package index_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
)

// ecsFields are the definitions in ECS 8.11 (github.com/elastic/ecs, tag v8.11.0:
// schemas/base.yml, ecs.yml, event.yml, email.yml, file.yml reused at email.attachments.file,
// hash.yml, user.yml, related.yml) of every ECS field the archive's documents use: the type, and the type
// of a multi-field where ECS defines one.
var ecsFields = []struct {
	name, typ, multi string
}{
	{"@timestamp", "date", ""},
	{"ecs.version", "keyword", ""},
	{"event.kind", "keyword", ""},
	{"event.category", "keyword", ""},
	{"event.type", "keyword", ""},
	{"event.module", "keyword", ""},
	{"event.dataset", "keyword", ""},
	{"event.ingested", "date", ""},
	{"email.message_id", "wildcard", ""},
	{"email.local_id", "keyword", ""},
	{"email.subject", "keyword", "match_only_text"},
	{"email.from.address", "keyword", ""},
	{"email.sender.address", "keyword", ""},
	{"email.to.address", "keyword", ""},
	{"email.cc.address", "keyword", ""},
	{"email.reply_to.address", "keyword", ""},
	{"email.direction", "keyword", ""},
	{"email.origination_timestamp", "date", ""},
	{"email.delivery_timestamp", "date", ""},
	{"email.attachments", "nested", ""},
	{"email.attachments.file.name", "keyword", ""},
	{"email.attachments.file.mime_type", "keyword", ""},
	{"email.attachments.file.extension", "keyword", ""},
	{"email.attachments.file.size", "long", ""},
	{"email.attachments.file.hash.sha256", "keyword", ""},
	{"user.email", "keyword", ""},
	{"related.hash", "keyword", ""},
	{"related.user", "keyword", ""},
}

// ecsAttachmentFields are the ECS 8.11 fields only attachment documents have (schemas/file.yml
// and hash.yml at the top level).
var ecsAttachmentFields = []struct {
	name, typ, multi string
}{
	{"file.name", "keyword", ""},
	{"file.mime_type", "keyword", ""},
	{"file.extension", "keyword", ""},
	{"file.size", "long", ""},
	{"file.hash.sha256", "keyword", ""},
}

// family is the type we map an ECS type to: ECS's wildcard and match_only_text need modules
// that not every cluster has, and keyword and text answer the same queries.
func family(ecsType string) string {
	switch ecsType {
	case "wildcard", "constant_keyword":
		return "keyword"
	case "match_only_text":
		return "text"
	}
	return ecsType
}

// mappedField finds a dotted field in a mapping value of package index.
func mappedField(m map[string]any, name string) map[string]any {
	props, _ := m["properties"].(map[string]any)
	var f map[string]any
	for _, part := range strings.Split(name, ".") {
		f, _ = props[part].(map[string]any)
		if f == nil {
			return nil
		}
		props, _ = f["properties"].(map[string]any)
	}
	return f
}

func TestMappingsFollowECS(t *testing.T) {
	if index.ECSVersion != "8.11.0" {
		t.Fatalf("ECSVersion = %s; the table in this test is ECS 8.11's: check it against the new version", index.ECSVersion)
	}
	for _, kind := range []index.Kind{index.Messages, index.Attachments} {
		m := index.Mapping(kind)
		fields := ecsFields
		if kind == index.Attachments {
			fields = append(slices.Clip(fields), ecsAttachmentFields...)
		}
		for _, e := range fields {
			f := mappedField(m, e.name)
			if f == nil {
				t.Errorf("%s: ECS field %s is not mapped", kind, e.name)
				continue
			}
			got, _ := f["type"].(string)
			want := family(e.typ)
			if e.typ == "nested" && kind == index.Attachments {
				// One file per attachment document: a plain object, so Lens can use it.
				want = ""
			}
			if got != want && !(got == "" && want == "object") {
				t.Errorf("%s: %s is %q, ECS 8.11 defines %s (want %q)", kind, e.name, got, e.typ, want)
			}
			if e.multi != "" {
				fields, _ := f["fields"].(map[string]any)
				text, _ := fields["text"].(map[string]any)
				if text["type"] != family(e.multi) {
					t.Errorf("%s: %s has no .text multi-field of the %s family: %v", kind, e.name, e.multi, fields)
				}
			}
		}
		// Everything else is ours and lives under mimecast.*.
		props := m["properties"].(map[string]any)
		for top := range props {
			switch top {
			case "@timestamp", "ecs", "event", "email", "user", "related", "mimecast":
			case "file":
				if kind != index.Attachments {
					t.Errorf("%s: top-level file is for attachment documents only", kind)
				}
			default:
				t.Errorf("%s: top-level field %s is neither ECS nor under mimecast.*", kind, top)
			}
		}
	}
}

func TestECSValueRules(t *testing.T) {
	if got := index.Direction("INBOX"); got != "inbound" {
		t.Errorf("Direction(INBOX) = %q", got)
	}
	if got := index.Direction("SENT"); got != "outbound" {
		t.Errorf("Direction(SENT) = %q", got)
	}
	if got := index.Direction("ARCHIVE"); got != "" {
		t.Errorf("Direction(ARCHIVE) = %q, want none", got)
	}
	for name, want := range map[string]string{"Report.PDF": "pdf", "a.tar.gz": "gz", "noext": "", "x.": "", "trailing.ext with space": ""} {
		if got := index.Extension(name); got != want {
			t.Errorf("Extension(%q) = %q, want %q", name, got, want)
		}
	}
	a := index.ParseAuthResults([]string{
		"mx.example.com; spf=pass smtp.mailfrom=a@b.example; dkim=pass header.d=b.example; dkim=FAIL (bad sig) header.d=c.example; dmarc=none",
		"other.example; SPF/1=softfail; arc=pass; dkim=pass; malformed; =pass; dmarc=",
	})
	if a == nil || strings.Join(a.SPF, ",") != "pass,softfail" || strings.Join(a.DKIM, ",") != "pass,fail" || strings.Join(a.DMARC, ",") != "none" {
		t.Errorf("ParseAuthResults = %+v", a)
	}
	if a := index.ParseAuthResults([]string{"mx.example.com; none"}); a != nil {
		t.Errorf("no results parsed as %+v", a)
	}
	var hostile []string
	for i := range 40 {
		hostile = append(hostile, fmt.Sprintf("mx; dkim=r%d", i))
	}
	if a := index.ParseAuthResults(hostile); a == nil || len(a.DKIM) != 16 {
		t.Errorf("40 distinct dkim results parsed as %+v, want the first 16", a)
	}
	got := index.OriginationTime([]string{"not a date", "Fri, 01 Mar 2024 13:00:00 +0100"})
	if want := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC); got == nil || !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("OriginationTime = %v, want %v in UTC", got, want)
	}
	if index.OriginationTime([]string{"garbage"}) != nil {
		t.Error("an unparseable Date gave a time")
	}
}

// Mail is internal when its author, envelope sender and every recipient are in the
// organisation's domains; otherwise the view decides.
func TestOrganisationDirection(t *testing.T) {
	org := index.NewOrganisation("Example.com", " corp.example ", "")
	group := index.AddressGroup
	tests := []struct {
		name  string
		view  string
		email index.Email
		want  string
	}{
		{"colleague to colleague", "INBOX", index.Email{From: group("Ann@EXAMPLE.com"), To: group("bo@example.com")}, "internal"},
		{"sent between two of our domains", "SENT", index.Email{From: group("ann@example.com"), Sender: group("ann@example.com"), To: group("cy@corp.example"), Cc: group("di@example.com")}, "internal"},
		{"one outside recipient", "SENT", index.Email{From: group("ann@example.com"), To: group("bo@example.com"), Cc: group("x@partner.example")}, "outbound"},
		{"outside author", "INBOX", index.Email{From: group("x@partner.example"), To: group("bo@example.com")}, "inbound"},
		{"outside envelope sender", "INBOX", index.Email{From: group("ann@example.com"), Sender: group("bounce@mailer.example"), To: group("bo@example.com")}, "inbound"},
		{"subdomain is not the domain", "INBOX", index.Email{From: group("ann@mail.example.com"), To: group("bo@example.com")}, "inbound"},
		{"no recipient", "SENT", index.Email{From: group("ann@example.com")}, "outbound"},
		{"no author", "INBOX", index.Email{To: group("bo@example.com")}, "inbound"},
		{"unknown view", "ARCHIVE", index.Email{From: group("x@partner.example"), To: group("bo@example.com")}, ""},
	}
	for _, tt := range tests {
		if got := org.Direction(tt.view, &tt.email); got != tt.want {
			t.Errorf("%s: Direction = %q, want %q", tt.name, got, tt.want)
		}
	}
	var none *index.Organisation
	if got := none.Direction("INBOX", &index.Email{From: group("a@example.com"), To: group("b@example.com")}); got != "inbound" {
		t.Errorf("no organisation: Direction = %q, want inbound", got)
	}
	if !org.Holds("x@CORP.example") || org.Holds("nobody") || org.Holds("x@") {
		t.Error("Holds")
	}
}

// The pivot fields repeat what the document says elsewhere: every address once (mailbox
// first), every attachment hash once; an attachment's top-level file is its own copy.
func TestSetPivots(t *testing.T) {
	h1, h2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	email := index.Email{
		From: index.AddressGroup("x@partner.example"), Sender: index.AddressGroup("bounce@partner.example"),
		To: index.AddressGroup("ann@example.com", "bo@example.com"), Cc: index.AddressGroup("X@Partner.example"),
		ReplyTo: index.AddressGroup("reply@partner.example"),
		Attachments: []index.EmailAttachment{
			{File: index.File{Name: "a.pdf", Hash: &index.Hash{SHA256: h1}}},
			{File: index.File{Name: "copy.pdf", Hash: &index.Hash{SHA256: h1}}},
			{File: index.File{Name: "b.txt", Hash: &index.Hash{SHA256: h2}}},
			{File: index.File{Name: "unread.bin"}},
		},
	}
	m := index.MessageDoc{Email: email, User: index.User{Email: "ann@example.com"}}
	m.SetPivots()
	if got, want := strings.Join(m.Related.User, " "), "ann@example.com x@partner.example bounce@partner.example bo@example.com reply@partner.example"; got != want {
		t.Errorf("message related.user = %s, want %s", got, want)
	}
	if got, want := strings.Join(m.Related.Hash, " "), h1+" "+h2; got != want {
		t.Errorf("message related.hash = %s, want %s", got, want)
	}

	a := index.AttachmentDoc{Email: email, User: m.User}
	a.Email.Attachments = []index.EmailAttachment{{File: index.File{Name: "b.txt", MimeType: "text/plain", Size: 12, Hash: &index.Hash{SHA256: h2}}}}
	a.SetPivots()
	if a.File == nil || a.File.Name != "b.txt" || a.File.MimeType != "text/plain" || a.File.Size != 12 || a.File.Hash == nil || a.File.Hash.SHA256 != h2 {
		t.Fatalf("attachment file = %+v", a.File)
	}
	if strings.Join(a.Related.Hash, " ") != h2 || len(a.Related.User) != 5 {
		t.Errorf("attachment related = %+v", a.Related)
	}
	a.AttachedFile().Hash.SHA256 = h1
	if a.File.Hash.SHA256 != h2 {
		t.Error("the top-level file shares its hash with email.attachments: a later change would show in both")
	}
}
