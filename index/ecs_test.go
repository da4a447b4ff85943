package index_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
)

// ecsFields are the definitions in ECS 8.11 (github.com/elastic/ecs, tag v8.11.0:
// schemas/base.yml, ecs.yml, event.yml, email.yml, file.yml reused at email.attachments.file,
// hash.yml, user.yml) of every ECS field the archive's documents use: the type, and the type
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
		for _, e := range ecsFields {
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
			case "@timestamp", "ecs", "event", "email", "user", "mimecast":
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
