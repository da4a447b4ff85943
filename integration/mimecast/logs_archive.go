package mimecast

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Archive access audit and held-message release logs: legacy POST endpoints that take a
// window {start, end} and answer records under a named array in data[0], like the security
// logs (alerts.go). One page per call; Records are returned as served.
//
// Where the shapes come from (restated, not copied):
//   - get-archive-search-logs: data [{query?, start?, end?}] (at most one item) → data[0].logs[]
//     of {createTime, emailAddr, source, searchText, searchReason, description}; Elastic's
//     integration (data stream archive_search_logs) reads the same path, wrapper and time
//     field, and its test samples add an occasional searchPath. [D][C]
//   - get-search-logs and get-view-logs: named in the Postman collection of the API 2.0
//     reference with start, end and query [M]; the view log's fields (viewed, viewer,
//     subject, from, to, source, discoveryCase, contentViewed) come from a third-party parser
//     of the same log (Exabeam's "Archive Message View Logs") [C]; their wrapper is not
//     documented: logs is assumed (inferred), and a flat data[] is accepted too.
//   - get-held-release-logs: data [{start, end}] → data[0].heldReleaseLogs[] (Elastic's
//     message_release_logs data stream; its samples show released as +00:00, not +0000,
//     and one record without released at all). [C]
//
// Some endpoints document the records flat in data[] rather than wrapped (reference §2.1);
// nothing says which these use in every version, so both are accepted: a data[0] holding
// one of the known wrapper keys is wrapped, any other data[] is a flat list of records.

// ArchiveLogKind names one archive access audit endpoint.
type ArchiveLogKind string

// The archive access audit logs.
const (
	ArchiveSearchLogs ArchiveLogKind = "archive_search" // POST /api/archive/get-archive-search-logs
	SearchLogs        ArchiveLogKind = "search"         // POST /api/archive/get-search-logs
	ViewLogs          ArchiveLogKind = "view"           // POST /api/archive/get-view-logs
)

// Paths of the archive access audit and release log endpoints, each with the role
// permission it needs.
// None of these permission names is in the scraped 2.0 reference: each follows the console's
// "area | function | Read" naming of its neighbours (inferred), so a 403's message says
// "needs" a name an administrator can find, not a verified string.
var (
	pathArchiveSearchLogs = needs("/api/archive/get-archive-search-logs", "Archive | Search Logs | Read")
	pathSearchLogs        = needs("/api/archive/get-search-logs", "Archive | Search Logs | Read")
	pathViewLogs          = needs("/api/archive/get-view-logs", "Archive | View Logs | Read")
	pathHeldReleaseLogs   = needs("/api/gateway/get-held-release-logs", "Gateway | Held Messages | Read")
)

var archiveLogPaths = map[ArchiveLogKind]string{
	ArchiveSearchLogs: pathArchiveSearchLogs,
	SearchLogs:        pathSearchLogs,
	ViewLogs:          pathViewLogs,
}

// logsWrappers are the keys data[0] may hold archive log records under: logs is documented
// for the archive search log; the others are guesses for the search and view logs.
var logsWrappers = []string{"logs", "searchLogs", "viewLogs"}

// heldReleaseWrappers are the keys data[0] may hold release log records under.
var heldReleaseWrappers = []string{"heldReleaseLogs"}

// WindowQuery selects one page of a legacy log read by time window.
type WindowQuery struct {
	Start, End time.Time // sent as start/end in the legacy layout (+0000); zero = omitted
	Query      string    // archive logs only: a free-text filter; "" = omitted
	PageSize   int       // 0 = the server's default
	PageToken  string    // "" = first page
}

// ArchiveLogs reads one page of an archive access audit log. Next is meta.pagination.next
// as served; Total is meta.pagination.totalCount, or -1; CaughtUp is Next == "".
func (c *Client) ArchiveLogs(ctx context.Context, kind ArchiveLogKind, q WindowQuery) (Page, error) {
	path, ok := archiveLogPaths[kind]
	if !ok {
		return Page{}, fmt.Errorf("archive logs: unknown kind %q", kind)
	}
	return c.windowLogs(ctx, "read "+string(kind)+" logs", path, logsWrappers, q, true)
}

// HeldReleaseLogs reads one page of POST /api/gateway/get-held-release-logs: held messages
// released or rejected, by whom. Same page rules as ArchiveLogs.
func (c *Client) HeldReleaseLogs(ctx context.Context, q WindowQuery) (Page, error) {
	return c.windowLogs(ctx, "read held release logs", pathHeldReleaseLogs, heldReleaseWrappers, q, false)
}

func (c *Client) windowLogs(ctx context.Context, what, path string, wrappers []string, q WindowQuery, query bool) (Page, error) {
	item := map[string]any{}
	if !q.Start.IsZero() {
		item["start"] = api.FormatTime(q.Start)
	}
	if !q.End.IsZero() {
		item["end"] = api.FormatTime(q.End)
	}
	if query && q.Query != "" {
		item["query"] = q.Query
	}
	return c.legacyPage(ctx, what, path, item, q.PageSize, q.PageToken, func(op string, env *api.Response) (Page, error) {
		return decodeWrappedOrFlat(op, wrappers, env)
	})
}

// decodeWrappedOrFlat reads the records of a legacy log answer: data[0].<wrapper>[] when
// data[0] is an object holding one of wrappers (the first present), else every item of
// data[] as one record (the flat shape). A lone empty object in data[] is an empty page.
// Items are kept as served; one that is not an object is still a record, for the decoder
// to fail on its own (one record, never the page).
func decodeWrappedOrFlat(op string, wrappers []string, env *api.Response) (Page, error) {
	page := legacyPageMeta(env)
	if len(env.Data) == 0 {
		return page, nil
	}
	var first map[string]json.RawMessage
	if json.Unmarshal(env.Data[0], &first) == nil {
		for _, w := range wrappers {
			if _, ok := first[w]; !ok {
				continue
			}
			if len(env.Data) > 1 {
				return Page{}, malformed(op, fmt.Errorf("%d data items for one query", len(env.Data)))
			}
			if err := page.fillWrapped(op, w, first); err != nil {
				return Page{}, err
			}
			return page, nil
		}
		if len(env.Data) == 1 && len(first) == 0 {
			return page, nil
		}
	}
	page.Records = append(page.Records, env.Data...)
	return page, nil
}
