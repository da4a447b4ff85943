package mimecast

import (
	"context"
	"fmt"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// pathAuditEvents is the account's audit log (reference §4.4, "Audit events").
var pathAuditEvents = needs("/api/audit/get-audit-events", "Account | Logs | Read")

// AuditQuery selects one page of the audit log. The endpoint keeps 60 days.
type AuditQuery struct {
	// From and To are startDateTime and endDateTime, both required by the endpoint.
	From, To time.Time
	// Categories, when set, selects by category code (account_logs, authentication_logs, ...).
	Categories []string
	PageSize   int    // 0 = the server's default
	PageToken  string // "" = first page
}

// AuditEvents reads one page of POST /api/audit/get-audit-events: admin, login and
// configuration events. The records are the flat data[] of the answer, each as served (no
// wrapper key, unlike the security logs), a record that is not an object included: it is
// the decoder's to refuse, alone. Next is meta.pagination.next, Total its totalCount. HTTP
// 200 with fail[] is an error (a *Error).
func (c *Client) AuditEvents(ctx context.Context, q AuditQuery) (Page, error) {
	const what = "read audit events"
	if q.From.IsZero() || q.To.IsZero() {
		return Page{}, fmt.Errorf("%s: a start and an end are required", what)
	}
	item := map[string]any{"startDateTime": api.FormatTime(q.From), "endDateTime": api.FormatTime(q.To)}
	if len(q.Categories) > 0 {
		item["categories"] = q.Categories
	}
	return c.legacyPage(ctx, what, pathAuditEvents, item, q.PageSize, q.PageToken, func(_ string, env *api.Response) (Page, error) {
		page := legacyPageMeta(env)
		page.Records = env.Data
		return page, nil
	})
}
