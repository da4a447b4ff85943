package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
		ArchiveDocID: "doc1", ArchiveIndex: "mimecast-messages", ArchiveSubject: "Login now", DetailsURL: "https://console.example/x",
		ArchiveID: "eNoarchive", ArchiveFrom: "x@phish.example", ArchiveTo: []string{"a@corp.example"}, ArchiveAttachments: []string{"a.pdf"},
		Read: time.Date(2024, 3, 1, 11, 5, 0, 0, time.UTC)}
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
		"@timestamp": "2024-03-01T11:00:00.005Z", "event.kind": "alert",
		"event.category": []any{"email", "malware", "intrusion_detection", "threat"},
		"event.type":     []any{"info", "denied", "indicator"}, "event.action": "block", "event.severity": float64(73),
		"event.risk_score": float64(73), "event.created": "2024-03-01T11:05:00Z", "event.ingested": "2024-03-01T11:05:00Z",
		"event.dataset": "mimecrawl.alerts", "event.module": "mimecast", "event.provider": "url_protection",
		"threat.framework": "MITRE ATT&CK", "threat.technique.id": []any{"T1566"}, "threat.tactic.id": []any{"TA0001"},
		"threat.technique.subtechnique.id": []any{"T1566.001"},
		"threat.indicator.type":            "file", "threat.indicator.file.hash.sha256": "ff", "threat.indicator.provider": "Mimecast", "event.id": a.ID, "ecs.version": "8.11.0",
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
		return mtype == "long" || mtype == "integer" || mtype == "float"
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
	check("alert", withStream(AlertDocument(a, e), "default"), AlertsMapping())
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
	}{{"alerts", AlertsMapping(), withStream(AlertDocument(a, e), "default")}, {"alert-groups", GroupsMapping(), &g}} {
		es := &rawES{base: base, index: prefix + "-" + c.suffix, c: &http.Client{Timeout: 30 * time.Second}}
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

// rawES sends requests to one index of the real Elasticsearch, bypassing the index package.
type rawES struct {
	base  string
	index string
	c     *http.Client
}

func (e *rawES) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := e.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// ecsCategories is ECS 8.11's event.category allowed values, each with its expected
// event.type values (https://www.elastic.co/guide/en/ecs/8.11/ecs-allowed-values-event-category.html),
// for the categories an alert may carry.
var ecsCategories = map[string][]string{
	"email":               {"info"},
	"malware":             {"info"},
	"intrusion_detection": {"allowed", "denied", "info"},
	"threat":              {"indicator"},
}

// TestECSFields asserts the fields Elastic Security's rules and views rely on against ECS 8.11:
// event.kind, event.category and event.type from the allowed values (every type expected by
// one of the categories), event.severity and event.risk_score, event.created and
// event.ingested, event.dataset = data_stream.dataset, rule.name, and threat.* for a threat.
func TestECSFields(t *testing.T) {
	read := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	file := []File{{Name: "inv.doc", SHA256: "e3b0c442"}}
	cases := []struct {
		name       string
		a          Alert
		categories []string
		types      []string
		indicator  map[string]any // threat.indicator.* leaves; nil: no threat fields
		rule       string
	}{
		{"malicious attachment held", Alert{Source: AttachmentProtection, Verdict: "malicious", Status: "held", Files: file, Rule: "Default Attachment", Priority: High},
			[]string{"email", "malware", "intrusion_detection", "threat"}, []string{"info", "denied", "indicator"},
			map[string]any{"type": "file", "file.hash.sha256": "e3b0c442", "file.name": "inv.doc", "provider": "Mimecast"}, "Default Attachment"},
		{"malicious URL delivered", Alert{Source: URLProtection, Verdict: "malicious", Status: "delivered", URL: "https://bad.example/x", Priority: Medium},
			[]string{"email", "intrusion_detection", "threat"}, []string{"info", "allowed", "indicator"},
			map[string]any{"type": "url", "url.original": "https://bad.example/x", "url.domain": "bad.example"}, "mimecast url_protection"},
		{"impersonation without indicator", Alert{Source: Impersonation, Verdict: "malicious", Status: "held", Rule: "Impersonation", Priority: High},
			[]string{"email", "intrusion_detection"}, []string{"info", "denied"}, nil, "Impersonation"},
		{"threat feed malware", Alert{Source: Threats, Verdict: "malware", Status: "blocked", Files: file, Priority: High},
			[]string{"email", "malware", "intrusion_detection", "threat"}, []string{"info", "denied", "indicator"},
			map[string]any{"type": "file"}, "mimecast threats"},
		{"threat feed phishing link", Alert{Source: Threats, Verdict: "phishing", URL: "https://p.example/", Priority: Medium},
			[]string{"email", "intrusion_detection", "threat"}, []string{"info", "indicator"}, map[string]any{"type": "url"}, "mimecast threats"},
		{"spam is no threat", Alert{Source: Threats, Verdict: "spam", Status: "blocked", Priority: Low},
			[]string{"email"}, []string{"info"}, nil, "mimecast threats"},
		{"dlp", Alert{Source: DLP, Verdict: "hold", Status: "held", Rule: "PCI", Priority: Medium},
			[]string{"email"}, []string{"info"}, nil, "PCI"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.a.ID, c.a.Time = "id1", read.Add(-time.Hour)
			b, _ := json.Marshal(withStream(AlertDocument(&c.a, Enrichment{Read: read}), "ns1"))
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			flat := map[string]any{}
			flatten("", m, flat)
			if got := fmt.Sprint(flat["event.category"]); got != fmt.Sprint(c.categories) {
				t.Errorf("event.category = %s, want %v", got, c.categories)
			}
			if got := fmt.Sprint(flat["event.type"]); got != fmt.Sprint(c.types) {
				t.Errorf("event.type = %s, want %v", got, c.types)
			}
			for _, typ := range c.types {
				ok := false
				for _, cat := range c.categories {
					allowed, known := ecsCategories[cat]
					if !known {
						t.Errorf("event.category %s is not among ECS 8.11's allowed values used here", cat)
					}
					for _, a := range allowed {
						ok = ok || a == typ
					}
				}
				if !ok {
					t.Errorf("event.type %s is expected by none of the categories %v (ECS 8.11)", typ, c.categories)
				}
			}
			want := map[string]any{
				"event.kind": "alert", "event.severity": float64(Severity(c.a.Priority)), "event.risk_score": float64(Severity(c.a.Priority)),
				"event.created": "2024-03-01T12:00:00Z", "event.ingested": "2024-03-01T12:00:00Z",
				"event.dataset": Dataset, "data_stream.dataset": Dataset, "data_stream.type": "logs", "data_stream.namespace": "ns1",
				"rule.name": c.rule, "ecs.version": "8.11.0",
			}
			for k, v := range c.indicator {
				want["threat.indicator."+k] = v
			}
			for k, v := range want {
				if fmt.Sprint(flat[k]) != fmt.Sprint(v) {
					t.Errorf("%s = %#v, want %#v", k, flat[k], v)
				}
			}
			if _, ok := flat["message"].(string); !ok {
				t.Errorf("no message")
			}
			_, threat := m["threat"]
			if threat != (c.indicator != nil || malicious(c.a.Verdict)) {
				t.Errorf("threat present = %v, want %v", threat, c.indicator != nil)
			}
			if c.indicator != nil && flat["threat.enrichments.matched.atomic"] == nil {
				t.Errorf("threat.enrichments lack matched.atomic")
			}
		})
	}
}
