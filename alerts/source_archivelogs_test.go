package alerts

import "testing"

// ECS fields of the archive access audit, against ECS 8.11 (ecs.version 8.11.0): event.kind
// event, event.category api, event.type access; user.*, related.user; vendor fields under
// mimecast.search_details / mimecast.view_details.
func TestArchiveSearchLogECS(t *testing.T) {
	runEventTable(t, decodeArchiveSearchLog, []eventCase{
		{name: "search by a user, legacy time", raw: `{"createTime":"2024-05-02T09:15:07+0000","emailAddr":"Legal.Admin@corp.example",
			"source":"archive","searchText":"<abc123@mail.example>","searchReason":"court order 17","description":"Message Tracking Search"}`,
			want: map[string]any{"@timestamp": "2024-05-02T09:15:07Z", "ecs.version": "8.11.0", "event.kind": "event",
				"event.category": []any{"api"}, "event.type": []any{"access"}, "event.action": "archive-search",
				"event.module": "mimecast", "event.provider": "archive_search_logs", "event.reason": "court order 17",
				"user.email": "legal.admin@corp.example", "user.name": "legal.admin", "user.domain": "corp.example",
				"related.user":                        []any{"legal.admin@corp.example", "legal.admin"},
				"message":                             "Message Tracking Search: <abc123@mail.example>",
				"mimecast.search_details.text":        "<abc123@mail.example>",
				"mimecast.search_details.source":      "archive",
				"mimecast.search_details.description": "Message Tracking Search"},
			absent: []string{"mimecast.search_details.path"}},
		{name: "system search with a path, RFC 3339 time", raw: `{"createTime":"2024-05-02T09:15:08Z","emailAddr":"<>","source":"archive",
			"searchText":"","searchReason":"","description":"Audit [Page 1] - Depth 100","searchPath":"/legal"}`,
			want: map[string]any{"@timestamp": "2024-05-02T09:15:08Z", "message": "Audit [Page 1] - Depth 100",
				"mimecast.search_details.path": "/legal", "mimecast.search_details.user": "<>"},
			absent: []string{"user.email", "related.user", "event.reason", "mimecast.search_details.text"}},
		{name: "offset time", raw: `{"createTime":"2024-05-02T11:15:09+02:00","emailAddr":"a@corp.example"}`,
			want: map[string]any{"@timestamp": "2024-05-02T09:15:09Z", "message": "Archive search"}},
		{name: "no time", raw: `{"emailAddr":"a@corp.example","searchText":"x"}`, reason: ReasonNoTime},
		{name: "bad time", raw: `{"createTime":"yesterday"}`, reason: ReasonBadTime},
		{name: "not an object", raw: `["createTime"]`, reason: ReasonNotObject},
	})
	// Searches that differ in any field are distinct events; the same search read with
	// another time layout is the same event.
	distinctIDs(t, decodeArchiveSearchLog,
		`{"createTime":"2024-05-02T09:15:07+0000","emailAddr":"a@corp.example","searchText":"x"}`,
		`{"createTime":"2024-05-02T09:15:07+0000","emailAddr":"a@corp.example","searchText":"y"}`,
		`{"createTime":"2024-05-02T09:15:07+0000","emailAddr":"b@corp.example","searchText":"x"}`,
		`{"createTime":"2024-05-02T09:15:08+0000","emailAddr":"a@corp.example","searchText":"x"}`)
	a, _ := decodeArchiveSearchLog([]byte(`{"createTime":"2024-05-02T09:15:07+0000","emailAddr":"a@corp.example"}`))
	b, _ := decodeArchiveSearchLog([]byte(`{"emailAddr":"a@corp.example","createTime":"2024-05-02T09:15:07Z"}`))
	if a.ID != b.ID {
		t.Error("one search gets two ids when its time is written another way")
	}
	c, _ := decodeArchiveSearches([]byte(`{"createTime":"2024-05-02T09:15:07+0000","emailAddr":"a@corp.example"}`))
	if c.ID == a.ID || c.Body["event"].(map[string]any)["provider"] != "archive_searches" {
		t.Error("the two search logs share ids or provider")
	}
}

func TestArchiveViewLogECS(t *testing.T) {
	runEventTable(t, decodeArchiveViewLog, []eventCase{
		{name: "view", raw: `{"viewed":"2024-05-03T10:00:00+0000","viewer":"auditor@corp.example","source":"Archive",
			"subject":"Q2 numbers","from":"cfo@corp.example","to":"board@corp.example","discoveryCase":true,"contentViewed":false}`,
			want: map[string]any{"@timestamp": "2024-05-03T10:00:00Z", "event.kind": "event", "event.category": []any{"api"},
				"event.type": []any{"access"}, "event.action": "archive-message-view", "event.provider": "archive_view_logs",
				"user.email": "auditor@corp.example", "email.subject": "Q2 numbers",
				"email.from.address": []any{"cfo@corp.example"}, "email.to.address": []any{"board@corp.example"},
				"related.user":                         []any{"auditor@corp.example", "auditor", "cfo@corp.example", "board@corp.example"},
				"message":                              "Archived message viewed: Q2 numbers",
				"mimecast.view_details.discovery_case": true, "mimecast.view_details.content_viewed": false,
				"mimecast.view_details.source": "Archive"}},
		{name: "view with createTime and emailAddr", raw: `{"createTime":"2024-05-03T10:00:01Z","emailAddr":"x@corp.example"}`,
			want:   map[string]any{"@timestamp": "2024-05-03T10:00:01Z", "user.email": "x@corp.example", "message": "Archived message viewed"},
			absent: []string{"email.subject", "mimecast.view_details.discovery_case"}},
		{name: "no time", raw: `{"viewer":"x@corp.example"}`, reason: ReasonNoTime},
	})
}
