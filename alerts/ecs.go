package alerts

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"time"
)

// ECSVersion is the version of the Elastic Common Schema the alert documents follow.
const ECSVersion = "8.11.0"

// Enrichment is what the poller learnt about an alert beyond its record: the recipient
// from the directory, the archived message from the messages index, and the console link.
type Enrichment struct {
	RecipientName, RecipientDomain, RecipientMailbox string
	ArchiveDocID, ArchiveIndex, ArchiveSubject       string
	DetailsURL                                       string
}

// Severity returns event.severity for a priority: Elastic Security's default risk scores
// of its severity levels (low 21, medium 47, high 73), so that its views sort and colour
// these alerts as they do their own. Unset gives 0.
func Severity(p Priority) int {
	switch p {
	case High:
		return 73
	case Medium:
		return 47
	case Low:
		return 21
	}
	return 0
}

// AlertDocument returns the ECS document of a for {prefix}-alerts. Empty values are left
// out. Every field it can write is in AlertsMapping (a test checks both against a strict
// index in Elasticsearch).
func AlertDocument(a *Alert, e Enrichment) map[string]any {
	d := doc{}
	d.set("@timestamp", a.Time.UTC().Format(time.RFC3339Nano))
	d.set("message", Summary(a))
	d.set("ecs.version", ECSVersion)

	eventType := []string{"info"}
	switch a.Status {
	case "blocked", "rejected", "held", "bounced":
		eventType = append(eventType, "denied")
	case "delivered":
		eventType = append(eventType, "allowed")
	}
	d.set("event.kind", "alert")
	d.set("event.category", []string{"email"})
	d.set("event.type", eventType)
	d.set("event.action", strings.ToLower(a.Action))
	d.set("event.severity", Severity(a.Priority))
	d.set("event.module", "mimecast")
	d.set("event.dataset", "mimecast."+string(a.Source))
	d.set("event.id", a.ID)
	if a.Raw != nil {
		if b, err := json.Marshal(a.Raw); err == nil {
			d.set("event.original", string(b))
		}
	}

	if a.Sender != "" {
		d.set("email.from.address", []string{a.Sender})
	}
	d.set("email.to.address", a.Recipients)
	d.set("email.subject", a.Subject)
	d.set("email.message_id", a.MessageID)
	d.set("email.direction", a.Route)
	var atts []any
	var hashes []string
	for _, f := range a.Files {
		fd := doc{}
		fd.set("file.name", f.Name)
		fd.set("file.mime_type", f.MimeType)
		fd.set("file.extension", f.Extension)
		fd.set("file.hash.sha256", f.SHA256)
		fd.set("file.hash.md5", f.MD5)
		fd.set("file.hash.sha1", f.SHA1)
		if f.Size > 0 {
			fd.set("file.size", f.Size)
		}
		atts = append(atts, map[string]any(fd))
		hashes = append(hashes, f.SHA256, f.MD5, f.SHA1)
	}
	if len(atts) > 0 {
		d.set("email.attachments", atts)
	}

	var hosts []string
	if a.URL != "" {
		d.set("url.original", a.URL)
		if u, err := url.Parse(a.URL); err == nil && u.Host != "" {
			d.set("url.scheme", strings.ToLower(u.Scheme))
			d.set("url.domain", strings.ToLower(u.Hostname()))
			d.set("url.path", u.EscapedPath())
			d.set("url.query", u.RawQuery)
			hosts = append(hosts, strings.ToLower(u.Hostname()))
		}
	}
	d.set("source.ip", a.SourceIP)
	d.set("rule.name", a.Rule)
	if len(a.Recipients) > 0 {
		d.set("user.email", a.Recipients[0])
	}
	d.set("related.user", distinct(append([]string{a.Sender}, a.Recipients...)))
	if a.SourceIP != "" {
		d.set("related.ip", []string{a.SourceIP})
	}
	d.set("related.hash", distinct(hashes))
	d.set("related.hosts", distinct(hosts))

	d.set("mimecast.source", string(a.Source))
	d.set("mimecast.verdict", a.Verdict)
	d.set("mimecast.type", a.Type)
	d.set("mimecast.status", a.Status)
	d.set("mimecast.route", a.Route)
	d.set("mimecast.action", a.Action)
	d.set("mimecast.priority", a.Priority.String())
	d.set("mimecast.priority_rule", a.PriorityRule)
	if a.GroupKey != "" {
		d.set("mimecast.group_id", GroupID(a.GroupKey))
		d.set("mimecast.group_key", a.GroupKey)
	}
	d.set("mimecast.details", a.Details)
	d.set("mimecast.archive.id", e.ArchiveDocID)
	d.set("mimecast.archive.index", e.ArchiveIndex)
	d.set("mimecast.archive.subject", e.ArchiveSubject)
	d.set("mimecast.recipient.name", e.RecipientName)
	d.set("mimecast.recipient.domain", e.RecipientDomain)
	d.set("mimecast.recipient.mailbox", e.RecipientMailbox)
	d.set("mimecast.details_url", e.DetailsURL)
	return map[string]any(d)
}

// Summary is the one-line human summary of an alert (the document's message), e.g.
// "high: malicious attachment invoice.pdf from a@x to b@y (held) [attachment_protection]".
func Summary(a *Alert) string {
	var b strings.Builder
	if p := a.Priority.String(); p != "" {
		b.WriteString(p + ": ")
	}
	if a.Verdict != "" {
		b.WriteString(a.Verdict + " ")
	}
	switch {
	case len(a.Files) > 0:
		b.WriteString("attachment " + quoteShort(a.Files[0].Name))
		if len(a.Files) > 1 {
			fmt.Fprintf(&b, " and %d more", len(a.Files)-1)
		}
	case a.URL != "":
		b.WriteString("URL " + quoteShort(a.URL))
	case a.Rule != "":
		b.WriteString(string(a.Source) + " " + quoteShort(a.Rule))
	default:
		b.WriteString(string(a.Source) + " event")
	}
	if a.Sender != "" {
		b.WriteString(" from " + a.Sender)
	}
	if len(a.Recipients) > 0 {
		b.WriteString(" to " + a.Recipients[0])
		if len(a.Recipients) > 1 {
			fmt.Fprintf(&b, " and %d more", len(a.Recipients)-1)
		}
	}
	if a.Status != "" {
		b.WriteString(" (" + a.Status + ")")
	}
	b.WriteString(" [" + string(a.Source) + "]")
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, b.String())
}

func quoteShort(s string) string {
	if len([]rune(s)) > 80 {
		s = string([]rune(s)[:80]) + "..."
	}
	return s
}

func distinct(vs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range vs {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// doc is a document under construction; set writes a dotted path as nested objects and
// leaves out empty values, so that absent fields are absent rather than "".
type doc map[string]any

func (d doc) set(path string, v any) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return
		}
	case []string:
		if len(x) == 0 {
			return
		}
	case int:
		if x == 0 {
			return
		}
	}
	m := map[string]any(d)
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// DetailsTemplate is alerts.details_url compiled: a text/template over the Alert (e.g.
// https://login.mimecast.com/...?id={{.MessageID | urlquery}}).
type DetailsTemplate struct{ t *template.Template }

// NewDetailsTemplate compiles s; "" gives a template that renders nothing.
func NewDetailsTemplate(s string) (*DetailsTemplate, error) {
	if s == "" {
		return &DetailsTemplate{}, nil
	}
	t, err := template.New("details_url").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("alerts.details_url: %w", err)
	}
	return &DetailsTemplate{t: t}, nil
}

// Render returns the link of one alert.
func (d *DetailsTemplate) Render(a *Alert) (string, error) {
	if d == nil || d.t == nil {
		return "", nil
	}
	var b strings.Builder
	if err := d.t.Execute(&b, a); err != nil {
		return "", fmt.Errorf("render alerts.details_url: %w", err)
	}
	return b.String(), nil
}

// Mapping helpers.
func kw() map[string]any                  { return map[string]any{"type": "keyword", "ignore_above": 1024} }
func typ(t string) map[string]any         { return map[string]any{"type": t} }
func obj(p map[string]any) map[string]any { return map[string]any{"properties": p} }

// AlertsMapping returns the explicit mapping of {prefix}-alerts. Fields outside it are
// kept in _source but not indexed (dynamic: false). Only core field types are used
// (keyword and text where ECS suggests wildcard and match_only_text), so the mapping works
// on every distribution, including clusters without the x-pack and mapper-extras modules.
func AlertsMapping() map[string]any {
	text := func() map[string]any {
		return map[string]any{"type": "text", "fields": map[string]any{"keyword": kw()}}
	}
	file := obj(map[string]any{
		"name": kw(), "mime_type": kw(), "extension": kw(), "size": typ("long"),
		"hash": obj(map[string]any{"sha256": kw(), "md5": kw(), "sha1": kw()}),
	})
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": typ("date"),
			"message":    typ("text"),
			"ecs":        obj(map[string]any{"version": kw()}),
			"event": obj(map[string]any{
				"kind": kw(), "category": kw(), "type": kw(), "action": kw(), "severity": typ("long"),
				"module": kw(), "dataset": kw(), "id": kw(),
				"original": map[string]any{"type": "keyword", "index": false, "doc_values": false},
			}),
			"email": obj(map[string]any{
				"from":        obj(map[string]any{"address": kw()}),
				"to":          obj(map[string]any{"address": kw()}),
				"subject":     text(),
				"message_id":  kw(),
				"direction":   kw(),
				"attachments": map[string]any{"type": "nested", "properties": map[string]any{"file": file}},
			}),
			"url": obj(map[string]any{
				"original": map[string]any{"type": "keyword", "ignore_above": 8191, "fields": map[string]any{"text": typ("text")}},
				"scheme":   kw(), "domain": kw(), "path": kw(), "query": kw(),
			}),
			"source":  obj(map[string]any{"ip": typ("ip")}),
			"rule":    obj(map[string]any{"name": kw()}),
			"user":    obj(map[string]any{"email": kw()}),
			"related": obj(map[string]any{"user": kw(), "ip": typ("ip"), "hash": kw(), "hosts": kw()}),
			"mimecast": obj(map[string]any{
				"source": kw(), "verdict": kw(), "type": kw(), "status": kw(), "route": kw(), "action": kw(),
				"priority": kw(), "priority_rule": kw(), "group_id": kw(), "group_key": kw(),
				"details":     typ("text"),
				"archive":     obj(map[string]any{"id": kw(), "index": kw(), "subject": text()}),
				"recipient":   obj(map[string]any{"name": kw(), "domain": kw(), "mailbox": kw()}),
				"details_url": map[string]any{"type": "keyword", "index": false},
			}),
		},
	}
}

// GroupsMapping returns the explicit mapping of {prefix}-alert-groups (the fields of Group).
func GroupsMapping() map[string]any {
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": typ("date"), "key": kw(), "kind": kw(), "sha256": kw(),
			"url":        kw(),
			"file_names": kw(), "file_types": kw(), "recipients": kw(), "recipient_count": typ("long"),
			"recipients_truncated": typ("boolean"), "senders": kw(), "sources": kw(),
			"alert_ids": kw(), "alert_count": typ("long"), "alerts_truncated": typ("boolean"),
			"first_seen": typ("date"), "last_seen": typ("date"), "priority": kw(), "priority_rank": typ("integer"),
			"latest_time": typ("date"), "latest_alert_id": kw(), "latest_action": kw(), "latest_status": kw(),
		},
	}
}
