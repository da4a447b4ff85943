package simulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// The audit log: POST /api/audit/get-audit-events (reference §4.4, "Audit events"). One data
// item {startDateTime, endDateTime (both required), categories[], query}; records are the flat
// data[] of {id, auditType, user, eventTime, eventInfo, category}, newest first (as the public
// fixtures are), paged with meta.pagination next and totalCount like the security logs, with
// the same paging variants (AlertPaging, EmptyLastPage). 60 days are kept.

// SourceAudit is the audit log's source name.
const SourceAudit = "audit"

const pathAuditEvents = "/api/audit/get-audit-events"

// auditSim is the audit log's spec (sources.go). Its events are drawn from the original
// alert sources' generator, after theirs: the same seed gives the same events as before the
// table.
var auditSim = simSource{name: SourceAudit, timeField: "eventTime", format: formatAuditTime, inTruth: true,
	api:   map[string]func(*Server) endpoint{pathAuditEvents: func(s *Server) endpoint { return s.auditEvents }},
	count: func(a AlertOptions) int { return a.Audit },
	gen:   fromAlertGen((*alertGen).audit),
}

// formatAuditTime writes the fixtures' +0000 form and, every odd second, the Z form with
// milliseconds: the public pipeline accepts both.
func formatAuditTime(o AlertOptions, t time.Time) any {
	if t.Unix()%2 == 1 {
		return formatMillisZ(o, t)
	}
	return api.FormatTime(t)
}

// auditRetention is how far back the audit log answers (inferred from the 60-day lookback the
// reference gives; older windows are answered empty, not refused).
const auditRetention = 60 * 24 * time.Hour

// auditItem is the data item of an audit request.
type auditItem struct {
	StartDateTime string   `json:"startDateTime"`
	EndDateTime   string   `json:"endDateTime"`
	Categories    []string `json:"categories"`
	Query         string   `json:"query"`
}

// auditCategories are the category codes (POST /api/audit/get-categories) the seeded events
// use; a request may name others, which then match nothing.
var auditCategories = []string{"authentication_logs", "account_logs", "policy_logs", "user_account_and_role_logs",
	"archive_service_logs", "integrations_and_apis", "reporting_logs", "case_review_logs", "mimecast_access_logs", "profile_group_logs"}

func (s *Server) auditEvents(c *call) reply {
	item, f, r := alertItem[auditItem](s, c)
	if r != nil {
		return *r
	}
	var fails []api.Fail
	if f.StartDateTime == "" {
		fails = append(fails, itemFail(item, codeNull, "startDateTime must not be null"))
	}
	if f.EndDateTime == "" {
		fails = append(fails, itemFail(item, codeNull, "endDateTime must not be null"))
	}
	if len(fails) > 0 {
		return failReply(fails...)
	}
	from, err := api.ParseTime(f.StartDateTime)
	if err != nil {
		return failReply(itemFail(item, codeBadDate, "startDateTime: "+err.Error()))
	}
	to, err := api.ParseTime(f.EndDateTime)
	if err != nil {
		return failReply(itemFail(item, codeBadDate, "endDateTime: "+err.Error()))
	}
	if len(f.Categories) > maxLogFilterList {
		return failReply(itemFail(item, codeTooMany, "too many categories"))
	}
	start := max(from.Unix(), s.opts.Now().Add(-auditRetention).Unix())
	norm := f
	norm.StartDateTime, norm.EndDateTime = "", ""
	slices.Sort(norm.Categories)
	js, _ := json.Marshal(norm)
	filter := s.digest("auditlogs", SourceAudit, string(js))
	var match func(*alertRec) bool
	if len(f.Categories) > 0 || f.Query != "" {
		match = func(r *alertRec) bool {
			if len(f.Categories) > 0 && !slices.Contains(f.Categories, str(r.fields, "category")) {
				return false
			}
			if f.Query == "" {
				return true
			}
			q := strings.ToLower(f.Query)
			return strings.Contains(strings.ToLower(str(r.fields, "user")), q) || strings.Contains(strings.ToLower(str(r.fields, "eventInfo")), q) ||
				strings.Contains(strings.ToLower(str(r.fields, "auditType")), q)
		}
	}
	recs, pg, _, bad := s.legacyPage(c, legacyWindow{source: SourceAudit, start: start, end: to.Unix(), filter: filter, match: match})
	if bad != nil {
		return *bad
	}
	data := make([]any, len(recs))
	for i, r := range recs {
		data[i] = r
	}
	return reply{data: data, pagination: pg}
}

// auditKinds are the seeded events: an auditType with its category and the eventInfo it
// carries (shapes of the public fixtures: "<what>, Date: ..., Time: ..., IP: ..., Application: ...").
var auditKinds = []struct{ typ, category, info string }{
	{"User Logged On", "authentication_logs", "Successful authentication for %[1]s <%[2]s>, Date: %[3]s, Time: %[4]s, IP: %[5]s, Application: Administration Console, Method: Cloud"},
	{"Logon Authentication Failed", "authentication_logs", "Failed authentication for %[1]s <%[2]s>, Date: %[3]s, Time: %[4]s, IP: %[5]s, Application: mimecast-moa, Method: Office 365, Reason: Wrong password"},
	{"Mimecast Support Login", "mimecast_access_logs", "Action Performed - %[1]s logged into this account. by %[1]s<%[1]s> Date: %[3]s Time: %[4]s IP: %[5]s Application: Administration Console"},
	{"Policy Definition Changed", "policy_logs", "Policy updated - Attachment Protection: Default, Date: %[3]s, Time: %[4]s, IP: %[5]s, Application: Administration Console"},
	{"User Password Changed", "user_account_and_role_logs", "Password reset for user: %[1]s User Password Changed, Remote IP is null"},
	{"Folder Log Entry", "profile_group_logs", "Action Performed - Deleted New Folder by %[1]s<%[2]s> Date: %[3]s Time: %[4]s IP: %[5]s Application: Administration Console"},
	{"Completed Directory Sync", "account_logs", "No changes found."},
	{"Archive Mailbox Export Download", "archive_service_logs", "Mailbox export downloaded by %[1]s, Date: %[3]s, Time: %[4]s, IP: %[5]s, Application: Administration Console"},
	{"Connectors Management", "integrations_and_apis", "Connector creation for Microsoft O365\nName: Sync and Recover - 365, Success: true, Date: %[3]s, Time: %[4]s, IP: %[5]s, Application: Administration Console"},
	{"Search Action", "case_review_logs", "Executed Search - Source: Search, Search Criteria: {\"keywords\":\"invoice\"}, Date: %[3]s, Time: %[4]s, IP: %[5]s, Application: mimecast-case-review"},
	{"Threat Intel Feed Download", "reporting_logs", "Threat intel multiple feeds download - malware_customer_csv.zip, Date: %[3]s, Time: %[4]s, IP: %[5]s, Application: Integrations"},
}

// audit builds seeded audit event i: the user an internal mailbox (the directory sync has
// none, as in the fixtures; every seventh a user name without a domain), the id an opaque
// token as the real ones are (base64 of the event's position, so the same seed gives the same
// ids).
func (g *alertGen) audit(i, n int, at time.Time) map[string]any {
	k := auditKinds[i%len(auditKinds)]
	user := g.internal[i%len(g.internal)]
	switch {
	case k.category == "account_logs":
		user = ""
	case i%7 == 6:
		user, _, _ = strings.Cut(user, "@")
	}
	name, _, _ := strings.Cut(user, "@")
	ip := fmt.Sprintf("198.51.100.%d", 1+i%250)
	info := k.info
	if strings.Contains(info, "%") {
		info = fmt.Sprintf(info, user, name, at.UTC().Format(time.DateOnly), at.UTC().Format("15:04:05-0700"), ip)
	}
	id := "eNq" + base64.RawURLEncoding.EncodeToString([]byte(g.hash("audit", fmt.Sprint(i))[:48]))
	return map[string]any{"id": id, "auditType": k.typ, "user": user, "eventInfo": info, "category": k.category}
}
