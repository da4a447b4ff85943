package alerts

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/mimecrawl/mimecrawl/config"
)

// ECSVersion is the version of the Elastic Common Schema the alert documents follow.
const ECSVersion = "8.11.0"

// Enrichment is what the poller learnt about an alert beyond its record: the recipient
// from the directory, the archived message from the messages index, and the console link.
type Enrichment struct {
	RecipientName, RecipientDomain, RecipientMailbox string
	ArchiveDocID, ArchiveIndex, ArchiveSubject       string
	DetailsURL                                       string
	// From content view (alerts.content_view), for messages not crawled yet: the archive's
	// id of the message, its sender, recipients and attachment names (ArchiveSubject too).
	ArchiveID          string
	ArchiveFrom        string
	ArchiveTo          []string
	ArchiveAttachments []string
	// Read is when the poller read the record and handed it on: event.created and
	// event.ingested (mimecrawl is both the agent and the pipeline). Zero leaves both out.
	Read time.Time
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

// malicious tells whether a verdict says the message carried a threat: the words the sources
// use for it (attachments malicious and unsafe, URLs malicious and suspicious, threats'
// analyses malware, phishing and suspicious). Spam, unwanted mail, DLP actions and clean
// verdicts are not threats.
func malicious(verdict string) bool {
	switch verdict {
	case "malicious", "unsafe", "suspicious", "malware", "phishing":
		return true
	}
	return false
}

// Categorize returns event.category and event.type of an alert, in ECS 8.11's allowed values:
// every alert is about email (type info); a threat verdict adds intrusion_detection, whose
// expected types include allowed and denied (what Mimecast did with the message), malware
// when the verdict or the files say so, and threat (type indicator) when the alert names the
// indicator, a file hash or a URL (threat.indicator).
func Categorize(a *Alert) (category, typ []string) {
	category, typ = []string{"email"}, []string{"info"}
	if !malicious(a.Verdict) {
		return category, typ
	}
	if a.Verdict == "malware" || (len(a.Files) > 0 && a.Verdict != "phishing") {
		category = append(category, "malware")
	}
	category = append(category, "intrusion_detection")
	switch a.Status {
	case "blocked", "rejected", "held", "bounced":
		typ = append(typ, "denied")
	case "delivered":
		typ = append(typ, "allowed")
	}
	if hasIndicator(a) {
		category = append(category, "threat")
		typ = append(typ, "indicator")
	}
	return category, typ
}

func hasIndicator(a *Alert) bool {
	if a.URL != "" {
		return true
	}
	for _, f := range a.Files {
		if f.SHA256 != "" || f.MD5 != "" || f.SHA1 != "" {
			return true
		}
	}
	return false
}

// AlertDocument returns the ECS document of a for the alerts data stream (without the
// data_stream fields, which the stream's writer adds). Empty values are left out. Every field
// it can write is in AlertsMapping (a test checks both against a strict index in
// Elasticsearch).
func AlertDocument(a *Alert, e Enrichment) map[string]any {
	d := doc{}
	d.set("@timestamp", a.Time.UTC().Format(time.RFC3339Nano))
	d.set("message", Summary(a))
	d.set("ecs.version", ECSVersion)

	category, eventType := Categorize(a)
	d.set("event.kind", "alert")
	d.set("event.category", category)
	d.set("event.type", eventType)
	d.set("event.action", strings.ToLower(a.Action))
	// Elastic Security's External Alerts rule maps these two to the alert's severity and
	// risk score.
	d.set("event.severity", Severity(a.Priority))
	if sev := Severity(a.Priority); sev != 0 {
		d.set("event.risk_score", float64(sev))
	}
	if !e.Read.IsZero() {
		read := e.Read.UTC().Format(time.RFC3339Nano)
		d.set("event.created", read)
		d.set("event.ingested", read)
	}
	d.set("event.module", "mimecast")
	d.set("event.dataset", Dataset)
	d.set("event.provider", string(a.Source))
	d.set("event.id", a.ID)
	if a.Raw != nil {
		if b, err := json.Marshal(a.Raw); err == nil {
			d.set("event.original", string(b))
		}
	}

	// The record's values first; what the archive says fills only what the record lacks.
	if sender := cmp.Or(a.Sender, e.ArchiveFrom); sender != "" {
		d.set("email.from.address", []string{sender})
	}
	if len(a.Recipients) > 0 {
		d.set("email.to.address", a.Recipients)
	} else {
		d.set("email.to.address", e.ArchiveTo)
	}
	d.set("email.subject", cmp.Or(a.Subject, e.ArchiveSubject))
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
	// The policy that fired; an alert without one is named by its source, so that rule.name
	// always says what raised it.
	d.set("rule.name", cmp.Or(a.Rule, "mimecast "+string(a.Source)))
	if malicious(a.Verdict) {
		setThreat(d, a)
	}
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
	d.set("mimecast.archive.mimecast_id", e.ArchiveID)
	d.set("mimecast.archive.from", e.ArchiveFrom)
	d.set("mimecast.archive.to", e.ArchiveTo)
	d.set("mimecast.archive.attachments", e.ArchiveAttachments)
	d.set("mimecast.recipient.name", e.RecipientName)
	d.set("mimecast.recipient.domain", e.RecipientDomain)
	d.set("mimecast.recipient.mailbox", e.RecipientMailbox)
	d.set("mimecast.details_url", e.DetailsURL)
	return map[string]any(d)
}

// setThreat writes threat.* for an alert with a threat verdict: the technique, Phishing
// (MITRE ATT&CK T1566, tactic Initial Access) with its sub-technique by what carried it, the
// indicator (the first file's hashes, else the URL) in threat.indicator, and every file and
// URL of the alert as one entry of threat.enrichments each, naming the field of this alert
// that holds it, so that a search or rule on indicators finds each of them.
func setThreat(d doc, a *Alert) {
	d.set("threat.framework", "MITRE ATT&CK")
	d.set("threat.tactic.id", []string{"TA0001"})
	d.set("threat.tactic.name", []string{"Initial Access"})
	d.set("threat.tactic.reference", []string{"https://attack.mitre.org/tactics/TA0001/"})
	d.set("threat.technique.id", []string{"T1566"})
	d.set("threat.technique.name", []string{"Phishing"})
	d.set("threat.technique.reference", []string{"https://attack.mitre.org/techniques/T1566/"})
	switch {
	case len(a.Files) > 0:
		d.set("threat.technique.subtechnique.id", []string{"T1566.001"})
		d.set("threat.technique.subtechnique.name", []string{"Spearphishing Attachment"})
	case a.URL != "":
		d.set("threat.technique.subtechnique.id", []string{"T1566.002"})
		d.set("threat.technique.subtechnique.name", []string{"Spearphishing Link"})
	}

	var indicators []doc
	for _, f := range a.Files {
		if f.SHA256 == "" && f.MD5 == "" && f.SHA1 == "" {
			continue
		}
		in := indicator(a, "file")
		in.set("file.name", f.Name)
		in.set("file.hash.sha256", f.SHA256)
		in.set("file.hash.md5", f.MD5)
		in.set("file.hash.sha1", f.SHA1)
		if f.Size > 0 {
			in.set("file.size", f.Size)
		}
		field, atomic := "email.attachments.file.hash.sha256", f.SHA256
		switch {
		case f.SHA256 == "" && f.SHA1 != "":
			field, atomic = "email.attachments.file.hash.sha1", f.SHA1
		case f.SHA256 == "":
			field, atomic = "email.attachments.file.hash.md5", f.MD5
		}
		indicators = append(indicators, doc{"indicator": map[string]any(in), "matched": map[string]any{"atomic": atomic, "field": field}})
	}
	if a.URL != "" {
		in := indicator(a, "url")
		in.set("url.original", a.URL)
		if u, err := url.Parse(a.URL); err == nil && u.Host != "" {
			in.set("url.domain", strings.ToLower(u.Hostname()))
		}
		indicators = append(indicators, doc{"indicator": map[string]any(in), "matched": map[string]any{"atomic": a.URL, "field": "url.original"}})
	}
	if len(indicators) == 0 {
		return
	}
	d.set("threat.indicator", indicators[0]["indicator"])
	list := make([]any, len(indicators))
	for i, in := range indicators {
		list[i] = map[string]any(in)
	}
	d.set("threat.enrichments", list)
}

// indicator starts a threat.indicator object of type typ (ECS 8.11: file, url).
func indicator(a *Alert, typ string) doc {
	in := doc{}
	in.set("type", typ)
	in.set("provider", "Mimecast")
	in.set("description", a.Verdict)
	in.set("first_seen", a.Time.UTC().Format(time.RFC3339Nano))
	return in
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

// NewDetailsTemplate compiles s (config.ParseDetailsURL, the one way it is parsed); "" gives a
// template that renders nothing.
func NewDetailsTemplate(s string) (*DetailsTemplate, error) {
	if s == "" {
		return &DetailsTemplate{}, nil
	}
	t, err := config.ParseDetailsURL(s)
	if err != nil {
		return nil, fmt.Errorf("alerts.details_url: %w", err)
	}
	return &DetailsTemplate{t: t}, nil
}

// DetailsTemplateOf returns the details template of the alerts section a: the one its
// validation compiled, or, for a section that was not validated, one compiled now.
func DetailsTemplateOf(a config.Alerts) (*DetailsTemplate, error) {
	if t := a.DetailsTemplate(); t != nil {
		return &DetailsTemplate{t: t}, nil
	}
	return NewDetailsTemplate(a.DetailsURL)
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
	indicator := func() map[string]any {
		return obj(map[string]any{
			"type": kw(), "provider": kw(), "description": kw(), "first_seen": typ("date"),
			"file": obj(map[string]any{"name": kw(), "size": typ("long"),
				"hash": obj(map[string]any{"sha256": kw(), "md5": kw(), "sha1": kw()})}),
			"url": obj(map[string]any{"original": map[string]any{"type": "keyword", "ignore_above": 8191}, "domain": kw()}),
		})
	}
	attack := func(extra map[string]any) map[string]any {
		p := map[string]any{"id": kw(), "name": kw(), "reference": kw()}
		for k, v := range extra {
			p[k] = v
		}
		return obj(p)
	}
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": typ("date"),
			"message":    typ("text"),
			"ecs":        obj(map[string]any{"version": kw()}),
			// keyword, not ECS's constant_keyword: that type needs x-pack.
			"data_stream": obj(map[string]any{"type": kw(), "dataset": kw(), "namespace": kw()}),
			"event": obj(map[string]any{
				"kind": kw(), "category": kw(), "type": kw(), "action": kw(), "severity": typ("long"),
				"risk_score": typ("float"), "created": typ("date"), "ingested": typ("date"), "provider": kw(),
				"module": kw(), "dataset": kw(), "id": kw(),
				"original": map[string]any{"type": "keyword", "index": false, "doc_values": false},
			}),
			"email": obj(map[string]any{
				"from": obj(map[string]any{"address": kw()}),
				"to":   obj(map[string]any{"address": kw()}),
				// ECS's shape, as in the messages index: a keyword with full text in .text, so
				// that one data view over both indices has one type for email.subject.
				"subject":     map[string]any{"type": "keyword", "ignore_above": 1024, "fields": map[string]any{"text": typ("text")}},
				"message_id":  kw(),
				"direction":   kw(),
				"attachments": map[string]any{"type": "nested", "properties": map[string]any{"file": file}},
			}),
			"url": obj(map[string]any{
				"original": map[string]any{"type": "keyword", "ignore_above": 8191, "fields": map[string]any{"text": typ("text")}},
				"scheme":   kw(), "domain": kw(), "path": kw(), "query": kw(),
			}),
			"source": obj(map[string]any{"ip": typ("ip")}),
			"rule":   obj(map[string]any{"name": kw()}),
			"threat": obj(map[string]any{
				"framework": kw(),
				"tactic":    attack(nil),
				"technique": attack(map[string]any{"subtechnique": attack(nil)}),
				"indicator": indicator(),
				"enrichments": map[string]any{"type": "nested", "properties": map[string]any{
					"indicator": indicator(),
					"matched":   obj(map[string]any{"atomic": kw(), "field": kw()}),
				}},
			}),
			"user":    obj(map[string]any{"email": kw()}),
			"related": obj(map[string]any{"user": kw(), "ip": typ("ip"), "hash": kw(), "hosts": kw()}),
			"mimecast": obj(map[string]any{
				"source": kw(), "verdict": kw(), "type": kw(), "status": kw(), "route": kw(), "action": kw(),
				"priority": kw(), "priority_rule": kw(), "group_id": kw(), "group_key": kw(),
				"details": typ("text"),
				"archive": obj(map[string]any{"id": kw(), "index": kw(), "subject": text(), "mimecast_id": kw(),
					"from": kw(), "to": kw(), "attachments": kw()}),
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
