package alerts

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// The archive access audit: who searched the archive (get-archive-search-logs, and
// get-search-logs where the API offers it) and who opened archived mail (get-view-logs).
// For records and legal teams this is the audit trail of the archive mimecrawl indexes, so
// its records are events (event.kind event), ECS category api with type access (ECS 8.11:
// "api" covers a user or system calling an interface; access is reading a resource).
// Elastic's integration files the same log under api too.
//
// Fields (restated from the shapes listed in integration/mimecast/logs_archive.go):
//   - search logs: createTime, emailAddr (the searching user; "<>" for a system search),
//     source, searchText, searchReason, description, sometimes searchPath;
//   - view logs: viewed, viewer, source, subject, from, to, discoveryCase, contentViewed
//     (from a third-party parser; the time may as well come as createTime, and the user as
//     emailAddr, which are accepted).
//
// Neither log has an id: the id hashes every field that says what happened, so the same
// search read twice (overlapping windows) is written once; two identical searches by the
// same user in the same second cannot be told apart and are one event.

// Archive access audit sources.
const (
	ArchiveSearchLogs Source = "archive_search_logs" // POST /api/archive/get-archive-search-logs
	ArchiveSearches   Source = "archive_searches"    // POST /api/archive/get-search-logs
	ArchiveViewLogs   Source = "archive_view_logs"   // POST /api/archive/get-view-logs
)

// decodeArchiveSearchLog decodes one record of get-archive-search-logs.
func decodeArchiveSearchLog(raw json.RawMessage) (Event, error) {
	return decodeSearchLog(ArchiveSearchLogs, raw)
}

// decodeArchiveSearches decodes one record of get-search-logs (the same shape, inferred).
func decodeArchiveSearches(raw json.RawMessage) (Event, error) {
	return decodeSearchLog(ArchiveSearches, raw)
}

func decodeSearchLog(src Source, raw json.RawMessage) (Event, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Event{}, err
	}
	at, err := r.timeField("createTime", "searchTime", "eventTime", "date")
	if err != nil {
		return Event{}, err
	}
	user := r.str("emailAddr", "emailAddress", "user")
	text, reason, desc := r.str("searchText"), r.str("searchReason"), r.str("description")
	d := eventBody(src, raw, at, "event", []string{"api"}, []string{"access"})
	d.set("event.action", "archive-search")
	var related []string
	d.setUser(user, &related)
	d.set("related.user", related)
	d.set("event.reason", reason)
	msg := "Archive search"
	if desc != "" {
		msg = desc
	}
	if text != "" {
		msg += ": " + text
	}
	d.set("message", msg)
	d.set("mimecast.search_details.text", text)
	d.set("mimecast.search_details.description", desc)
	d.set("mimecast.search_details.reason", reason)
	d.set("mimecast.search_details.source", r.str("source"))
	d.set("mimecast.search_details.path", r.str("searchPath"))
	d.set("mimecast.search_details.user", user)
	id := hashID(src, idTime(at), user, r.str("source"), text, reason, desc, r.str("searchPath"))
	return Event{ID: id, Time: at, Body: d}, nil
}

// decodeArchiveViewLog decodes one record of get-view-logs.
func decodeArchiveViewLog(raw json.RawMessage) (Event, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Event{}, err
	}
	at, err := r.timeField("viewed", "createTime", "viewTime", "eventTime", "date")
	if err != nil {
		return Event{}, err
	}
	viewer := r.str("viewer", "emailAddr", "emailAddress", "user")
	subject := r.str("subject")
	from := r.addresses("from", "sender", "fromAddress")
	to := r.addresses("to", "recipients", "toAddress")
	d := eventBody(ArchiveViewLogs, raw, at, "event", []string{"api"}, []string{"access"})
	d.set("event.action", "archive-message-view")
	var related []string
	d.setUser(viewer, &related)
	d.setParties(related, from, nil, to)
	d.set("email.subject", subject)
	msg := "Archived message viewed"
	if subject != "" {
		msg += ": " + subject
	}
	d.set("message", msg)
	d.set("mimecast.view_details.source", r.str("source"))
	d.set("mimecast.view_details.viewer", viewer)
	if _, ok := r["discoveryCase"]; ok {
		d.set("mimecast.view_details.discovery_case", r.boolean("discoveryCase"))
	}
	if v, ok := r["contentViewed"]; ok {
		if m, isObj := v.(map[string]any); isObj {
			d.set("mimecast.view_details.content_viewed", plain(m))
		} else {
			d.set("mimecast.view_details.content_viewed", r.boolean("contentViewed"))
		}
	}
	id := hashID(ArchiveViewLogs, idTime(at), strings.ToLower(viewer), r.str("source"), subject,
		strings.Join(from, ","), strings.Join(to, ","))
	return Event{ID: id, Time: at, Body: d}, nil
}

// Datasets and data streams of the archive access audit: logs-{dataset}-{namespace}.
const (
	ArchiveSearchLogsDataset = "mimecrawl.archive_search_logs"
	ArchiveSearchesDataset   = "mimecrawl.archive_searches"
	ArchiveViewLogsDataset   = "mimecrawl.archive_view_logs"
)

var (
	ArchiveSearchLogsKind = index.NewKind(index.Spec{Name: "archive-search-logs", DataStream: ArchiveSearchLogsDataset, Mapping: ArchiveLogsMapping})
	ArchiveSearchesKind   = index.NewKind(index.Spec{Name: "archive-searches", DataStream: ArchiveSearchesDataset, Mapping: ArchiveLogsMapping})
	ArchiveViewLogsKind   = index.NewKind(index.Spec{Name: "archive-view-logs", DataStream: ArchiveViewLogsDataset, Mapping: ArchiveLogsMapping})
)

// ArchiveLogsMapping is the explicit mapping of the archive access audit's data streams.
func ArchiveLogsMapping() map[string]any {
	return eventMapping(map[string]any{
		"email": emailMapping(),
		"mimecast": obj(map[string]any{
			"search_details": obj(map[string]any{"text": kw(), "description": kw(), "reason": kw(), "source": kw(), "path": kw(), "user": kw()}),
			"view_details":   obj(map[string]any{"source": kw(), "viewer": kw(), "discovery_case": typ("boolean"), "content_viewed": stored()}),
		}),
	})
}

// ArchiveLogReader reads one page of an archive access audit log. Implemented by
// *mimecast.Client.
type ArchiveLogReader interface {
	ArchiveLogs(ctx context.Context, kind mimecast.ArchiveLogKind, q mimecast.WindowQuery) (mimecast.Page, error)
}

var _ ArchiveLogReader = (*mimecast.Client)(nil)

var (
	archiveSearchLogsSpec = archiveLogSpec(ArchiveSearchLogs, mimecast.ArchiveSearchLogs, "/api/archive/get-archive-search-logs",
		ArchiveSearchLogsKind, ArchiveSearchLogsDataset, decodeArchiveSearchLog)
	archiveSearchesSpec = archiveLogSpec(ArchiveSearches, mimecast.SearchLogs, "/api/archive/get-search-logs",
		ArchiveSearchesKind, ArchiveSearchesDataset, decodeArchiveSearches)
	archiveViewLogsSpec = archiveLogSpec(ArchiveViewLogs, mimecast.ViewLogs, "/api/archive/get-view-logs",
		ArchiveViewLogsKind, ArchiveViewLogsDataset, decodeArchiveViewLog)
)

// archiveLogSpec is the spec of one archive access audit log: a time window (start, end)
// read through ArchiveLogReader, pages of up to 500 (as the other legacy logs), no
// documented retention.
func archiveLogSpec(name Source, kind mimecast.ArchiveLogKind, path string, k index.Kind, dataset string, dec func(json.RawMessage) (Event, error)) SourceSpec {
	return SourceSpec{
		Name: name, Endpoint: "POST " + path, Permission: mimecast.PermissionOf(path),
		Records: RecordEvents, Kind: k, Dataset: dataset,
		pages: apiPages(500, func(r ArchiveLogReader, ctx context.Context, q WindowQuery) (mimecast.Page, error) {
			return r.ArchiveLogs(ctx, kind, mimecast.WindowQuery{Start: q.From, End: q.To, PageSize: q.PageSize, PageToken: q.Token})
		}),
		decode: dec,
	}
}
