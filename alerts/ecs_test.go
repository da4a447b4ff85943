package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// fullAlert has every field set, so that its document has every field AlertDocument writes.
func fullAlert() (*Alert, Enrichment) {
	a := &Alert{
		Source: URLProtection, ID: strings.Repeat("ab", 32), Time: time.Date(2024, 3, 1, 11, 0, 0, 5e6, time.UTC),
		Verdict: "malicious", Type: "Phishing & Fraud", Status: "blocked", Route: "inbound", Action: "Block",
		Sender: "x@phish.example", Recipients: []string{"a@corp.example", "b@corp.example"}, Subject: "Login\r\nnow",
		MessageID: "<m@phish.example>", URL: "https://Phish.example/login?next=%2Fhome",
		Files:    []File{{Name: "a.pdf", MimeType: "application/pdf", Extension: "pdf", SHA256: "ff", MD5: "aa", SHA1: "bb", Size: 12}},
		SourceIP: "192.0.2.1", Rule: "Default URL", Details: "User Click",
		Raw:      map[string]any{"date": "2024-03-01T11:00:00+0000", "n": int64(3)},
		Priority: High, PriorityRule: "alerts.priority.high[0]: malicious", GroupKey: "file:ff",
	}
	e := Enrichment{RecipientName: "Alice", RecipientDomain: "corp.example", RecipientMailbox: "alice@corp.example",
		ArchiveDocID: "doc1", ArchiveIndex: "mimecast-messages", ArchiveSubject: "Login now", DetailsURL: "https://console.example/x"}
	return a, e
}

func TestAlertDocument(t *testing.T) {
	a, e := fullAlert()
	d := AlertDocument(a, e)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	flat := map[string]any{}
	flatten("", got, flat)
	want := map[string]any{
		"@timestamp": "2024-03-01T11:00:00.005Z", "event.kind": "alert", "event.category": []any{"email"},
		"event.type": []any{"info", "denied"}, "event.action": "block", "event.severity": float64(73),
		"event.dataset": "mimecast.url_protection", "event.id": a.ID, "ecs.version": "8.11.0",
		"email.from.address": []any{"x@phish.example"}, "email.to.address": []any{"a@corp.example", "b@corp.example"},
		"email.message_id": "<m@phish.example>", "email.direction": "inbound",
		"url.original": a.URL, "url.domain": "phish.example", "url.path": "/login", "url.scheme": "https", "url.query": "next=%2Fhome",
		"source.ip": "192.0.2.1", "rule.name": "Default URL", "user.email": "a@corp.example",
		"related.ip": []any{"192.0.2.1"}, "related.hash": []any{"ff", "aa", "bb"}, "related.hosts": []any{"phish.example"},
		"related.user":    []any{"x@phish.example", "a@corp.example", "b@corp.example"},
		"mimecast.source": "url_protection", "mimecast.priority": "high", "mimecast.group_id": GroupID("file:ff"),
		"mimecast.priority_rule": "alerts.priority.high[0]: malicious", "mimecast.archive.id": "doc1",
		"mimecast.recipient.mailbox": "alice@corp.example", "mimecast.details_url": "https://console.example/x",
		"message": "high: malicious attachment a.pdf from x@phish.example to a@corp.example and 1 more (blocked) [url_protection]",
	}
	for k, v := range want {
		if fmt.Sprint(flat[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %#v, want %#v", k, flat[k], v)
		}
	}
	att := got["email"].(map[string]any)["attachments"].([]any)[0].(map[string]any)["file"].(map[string]any)
	if att["name"] != "a.pdf" || att["hash"].(map[string]any)["sha256"] != "ff" || att["size"] != float64(12) {
		t.Errorf("attachment = %v", att)
	}
	if strings.ContainsAny(flat["message"].(string), "\r\n") {
		t.Errorf("message is not one line")
	}

	// Empty values are left out.
	bare := AlertDocument(&Alert{Source: DLP, ID: "x", Time: time.Unix(0, 0)}, Enrichment{})
	if _, ok := bare["url"]; ok {
		t.Errorf("document of an alert without URL has url: %v", bare["url"])
	}
	if _, ok := bare["source"]; ok {
		t.Errorf("document of an alert without IP has source")
	}
}

// flatten writes the leaves of a decoded JSON object under dotted paths (lists of objects
// are walked as their elements).
func flatten(prefix string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, e, out)
		}
	case []any:
		if len(x) > 0 {
			if _, ok := x[0].(map[string]any); ok {
				for _, e := range x {
					flatten(prefix, e, out)
				}
				return
			}
		}
		out[prefix] = x
	default:
		out[prefix] = x
	}
}

// mappedType returns the mapping type of a dotted path, "" when it is not mapped.
func mappedType(mapping map[string]any, path string) string {
	props, _ := mapping["properties"].(map[string]any)
	parts := strings.Split(path, ".")
	for i, p := range parts {
		f, ok := props[p].(map[string]any)
		if !ok {
			return ""
		}
		if i == len(parts)-1 {
			if t, ok := f["type"].(string); ok {
				return t
			}
			return "object"
		}
		props, _ = f["properties"].(map[string]any)
	}
	return ""
}

// compatible says whether a JSON value can go into a field of the mapping type.
func compatible(v any, mtype string) bool {
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if !compatible(e, mtype) {
				return false
			}
		}
		return true
	}
	switch v.(type) {
	case string:
		return map[string]bool{"keyword": true, "wildcard": true, "match_only_text": true, "text": true, "date": true, "ip": true}[mtype]
	case float64:
		return mtype == "long" || mtype == "integer"
	case bool:
		return mtype == "boolean"
	}
	return false
}

func TestMappingsCoverDocuments(t *testing.T) {
	a, e := fullAlert()
	check := func(name string, d any, mapping map[string]any) {
		b, _ := json.Marshal(d)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		flat := map[string]any{}
		flatten("", m, flat)
		var paths []string
		for p := range flat {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			mt := mappedType(mapping, p)
			if mt == "" {
				t.Errorf("%s: field %s is not in the mapping", name, p)
			} else if !compatible(flat[p], mt) {
				t.Errorf("%s: field %s = %#v does not fit mapping type %s", name, p, flat[p], mt)
			}
		}
	}
	check("alert", AlertDocument(a, e), AlertsMapping())
	var g Group
	g.Add(a)
	check("group", &g, GroupsMapping())
	u := *a
	u.Files, u.GroupKey = nil, ""
	var gu Group
	gu.Add(&u)
	check("url group", &gu, GroupsMapping())
}

// TestMappingsInElasticsearch indexes full documents into indices whose mappings are
// AlertsMapping and GroupsMapping made strict: Elasticsearch rejects any field the mapping
// lacks and any value its type cannot hold.
func TestMappingsInElasticsearch(t *testing.T) {
	base := indextest.URL(t)
	prefix := indextest.Prefix(t, base)
	a, e := fullAlert()
	var g Group
	g.Add(a)
	for _, c := range []struct {
		suffix  string
		mapping map[string]any
		doc     any
	}{{"alerts", AlertsMapping(), AlertDocument(a, e)}, {"alert-groups", GroupsMapping(), &g}} {
		es := &esGroups{t: t, base: base, index: prefix + "-" + c.suffix, c: &http.Client{Timeout: 30 * time.Second}}
		c.mapping["dynamic"] = "strict"
		body, _ := json.Marshal(map[string]any{"mappings": c.mapping})
		if status, b, err := es.do(context.Background(), http.MethodPut, "/"+es.index, body); err != nil || status != http.StatusOK {
			t.Fatalf("create %s: %d %s %v", es.index, status, b, err)
		}
		doc, _ := json.Marshal(c.doc)
		if status, b, err := es.do(context.Background(), http.MethodPut, "/"+es.index+"/_doc/1", doc); err != nil || status >= 300 {
			t.Errorf("index a full document into %s: %d %s %v", es.index, status, b, err)
		}
	}
}

func TestSeverity(t *testing.T) {
	for p, want := range map[Priority]int{High: 73, Medium: 47, Low: 21, PriorityUnset: 0} {
		if got := Severity(p); got != want {
			t.Errorf("Severity(%v) = %d, want %d", p, got, want)
		}
	}
}

func TestDetailsTemplate(t *testing.T) {
	d, err := NewDetailsTemplate("https://console.example/find?mid={{.MessageID | urlquery}}&src={{.Source}}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Render(&Alert{MessageID: "<a b@x>", Source: DLP})
	if want := "https://console.example/find?mid=%3Ca+b%40x%3E&src=dlp"; err != nil || got != want {
		t.Errorf("Render = %q, %v; want %q", got, err, want)
	}
	if _, err := NewDetailsTemplate("{{.ID"); err == nil {
		t.Errorf("a broken template compiled")
	}
	bad, _ := NewDetailsTemplate("{{.Nope}}")
	if _, err := bad.Render(&Alert{}); err == nil {
		t.Errorf("a template naming a missing field rendered")
	}
}
