package alerts

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Audit: the account's audit log (POST /api/audit/get-audit-events): administrator,
// login and configuration events, 60 days kept. An event source: each record is one document
// of logs-mimecrawl.audit-{namespace}, with event.kind "event".
const Audit Source = "audit"

// AuditDataset is data_stream.dataset and event.dataset of the audit events.
const AuditDataset = "mimecrawl.audit"

// AuditKind is the data stream of the audit events, logs-mimecrawl.audit-{namespace}.
var AuditKind = index.NewKind(index.Spec{Name: "audit", DataStream: AuditDataset, Mapping: AuditMapping})

// auditRetention is how far back the endpoint answers.
const auditRetention = 60 * 24 * time.Hour

// AuditReader reads one page of the audit log. Implemented by *mimecast.Client.
type AuditReader interface {
	AuditEvents(ctx context.Context, q mimecast.AuditQuery) (mimecast.Page, error)
}

var _ AuditReader = (*mimecast.Client)(nil)

var auditSpec = SourceSpec{
	Name: Audit, Endpoint: "POST /api/audit/get-audit-events", Permission: "Account | Logs | Read",
	Records: RecordEvents, Kind: AuditKind, Dataset: AuditDataset, Retention: auditRetention,
	// XSOAR pages with 500; the legacy endpoints take that much.
	pages: apiPages(500, func(r AuditReader, ctx context.Context, q WindowQuery) (mimecast.Page, error) {
		return r.AuditEvents(ctx, mimecast.AuditQuery{From: q.From, To: q.To, PageSize: q.PageSize, PageToken: q.Token})
	}),
	decode: decodeAudit,
}

// decodeAudit decodes one audit record, {id, auditType, user, eventTime, eventInfo,
// category}, into an ECS event (version ECSVersion):
//
//   - @timestamp: eventTime, in any form the public samples show (auditTime).
//   - event.kind "event"; event.category and event.type from the category (auditCategory);
//     event.action the auditType in lower case with dashes ("User Logged On" →
//     "user-logged-on", as Elastic's integration writes it); event.outcome "failure" when the
//     type says it failed, "success" for a logon.
//   - event.id: the record's id; message: eventInfo; user.email, user.name and user.domain
//     from user (a user without a domain is a name only); related.user.
//   - client.ip and related.ip: the "IP: ..." of eventInfo, when it is an IP address.
//   - mimecast.audit.type and .category as sent; event.original the record.
//
// The document id hashes the record's id together with its time, type, user, text and
// category: the public samples repeat one id on records that differ in their text, so the id
// alone would merge distinct events (inferred, as for impersonation ids).
func decodeAudit(raw json.RawMessage) (Event, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Event{}, err
	}
	t, err := auditTime(r)
	if err != nil {
		return Event{}, err
	}
	id, typ, user, info, category := r.str("id"), r.str("auditType"), r.str("user"), r.str("eventInfo"), r.str("category")
	ev := Event{Time: t, ID: hashID(Audit, id, idTime(t), typ, user, info, category)}
	d := doc{}
	d.set("@timestamp", t.Format(time.RFC3339Nano))
	d.set("ecs.version", ECSVersion)
	d.set("message", info)
	d.set("event.kind", "event")
	cat, types := auditCategory(category, typ)
	d.set("event.category", []string{cat})
	d.set("event.type", types)
	d.set("event.action", strings.Join(strings.Fields(strings.ToLower(typ)), "-"))
	d.set("event.outcome", auditOutcome(cat, typ))
	d.set("event.id", id)
	d.set("event.module", "mimecast")
	d.set("event.provider", string(Audit))
	d.set("event.original", string(raw))
	var related []string
	if name, domain, ok := strings.Cut(strings.ToLower(user), "@"); ok && name != "" && domain != "" {
		d.set("user.email", strings.ToLower(user))
		d.set("user.name", name)
		d.set("user.domain", domain)
		related = []string{name, strings.ToLower(user)}
	} else if user != "" {
		d.set("user.name", user)
		related = []string{user}
	}
	d.set("related.user", related)
	if ip := auditIP(info); ip != "" {
		d.set("client.ip", ip)
		d.set("related.ip", []string{ip})
	}
	d.set("mimecast.source", string(Audit))
	d.set("mimecast.audit.type", typ)
	d.set("mimecast.audit.category", category)
	ev.Body = d
	return ev, nil
}

// auditTimeZones are the zone names an eventTime may end with after a space ("yyyy-MM-dd'T'HH:mm:ss z"
// in Elastic's pipeline): only those whose offset is certain are read; another name is an
// unreadable time rather than a guess.
var auditTimeZones = map[string]bool{"UTC": true, "GMT": true, "Z": true}

// auditTime reads eventTime: every form parseTime reads (+0000, Z, +hh:mm, fractions of any
// length, epoch numbers), and a time followed by a space and an offset or a zone name.
func auditTime(r record) (time.Time, error) {
	t, err := r.timeField("eventTime")
	if err == nil {
		return t, nil
	}
	s := r.str("eventTime")
	clock, zone, ok := strings.Cut(s, " ")
	if !ok {
		return time.Time{}, err
	}
	if auditTimeZones[strings.ToUpper(zone)] {
		zone = "+0000"
	}
	for _, layout := range []string{"2006-01-02T15:04:05-0700", "2006-01-02T15:04:05Z07:00"} {
		if t, perr := time.Parse(layout, clock+zone); perr == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// auditCategory maps an audit category code to ECS event.category and event.type. Logons
// and the support access are authentication; user, role and group changes are iam; every
// other category configures the account (or reads it: searches, case reviews, reports).
func auditCategory(category, auditType string) (string, []string) {
	switch category {
	case "authentication_logs", "mimecast_access_logs":
		t := strings.ToLower(auditType)
		if strings.Contains(t, "log") || strings.Contains(t, "auth") {
			return "authentication", []string{"start"}
		}
		return "authentication", []string{"info"}
	case "user_account_and_role_logs":
		return "iam", []string{"user", "change"}
	case "profile_group_logs":
		return "iam", []string{"group", "change"}
	case "policy_logs", "account_logs", "integrations_and_apis", "archive_service_logs":
		return "configuration", []string{"change"}
	case "reporting_logs", "case_review_logs":
		return "configuration", []string{"access"}
	}
	return "configuration", []string{"info"}
}

// auditOutcome is event.outcome: failure when the type says so, success for a logon that
// did not fail; "" (left out) otherwise.
func auditOutcome(category, auditType string) string {
	t := strings.ToLower(auditType)
	switch {
	case strings.Contains(t, "fail"):
		return "failure"
	case category == "authentication" && (strings.Contains(t, "logged on") || strings.Contains(t, "login")):
		return "success"
	}
	return ""
}

// auditIPPattern finds the address eventInfo names ("IP: 1.2.3.4", "IP Address :1.2.3.4",
// "remote IP : 1.2.3.4").
var auditIPPattern = regexp.MustCompile(`(?i)\bIP(?: Address)?\s*:\s*([0-9A-Fa-f:.]+)`)

// auditIP returns the client address of eventInfo, when it names one that parses.
func auditIP(info string) string {
	m := auditIPPattern.FindStringSubmatch(info)
	if m == nil {
		return ""
	}
	return ipOrEmpty(strings.TrimRight(m[1], ".,:"))
}

// AuditMapping returns the explicit mapping of the audit events' data stream: every field
// decodeAudit and the poller write (a test checks both against a strict index), dynamic
// false like the alerts'.
func AuditMapping() map[string]any {
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp":  typ("date"),
			"message":     typ("text"),
			"ecs":         obj(map[string]any{"version": kw()}),
			"data_stream": obj(map[string]any{"type": kw(), "dataset": kw(), "namespace": kw()}),
			"event": obj(map[string]any{
				"kind": kw(), "category": kw(), "type": kw(), "action": kw(), "outcome": kw(),
				"created": typ("date"), "ingested": typ("date"), "provider": kw(), "module": kw(),
				"dataset": kw(), "id": kw(),
				"original": map[string]any{"type": "keyword", "index": false, "doc_values": false},
			}),
			"user":    obj(map[string]any{"email": kw(), "name": kw(), "domain": kw()}),
			"client":  obj(map[string]any{"ip": typ("ip")}),
			"related": obj(map[string]any{"user": kw(), "ip": typ("ip")}),
			"mimecast": obj(map[string]any{
				"source": kw(),
				"audit":  obj(map[string]any{"type": kw(), "category": kw()}),
			}),
		},
	}
}
