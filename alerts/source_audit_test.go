package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// auditRecord builds an audit record of the endpoint's shape (reference §4.4; field names and
// value forms as in Elastic's integration test samples of the audit_events data stream).
func auditRecord(id, typ, user, eventTime, info, category string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"id": id, "auditType": typ, "user": user, "eventTime": eventTime, "eventInfo": info, "category": category})
	return b
}

// The ECS fields of an audit event, against ECS 8.11 (ECSVersion): event.kind, event.category
// and the event.type values ECS allows for that category, event.action, event.outcome,
// user.*, related.*, client.ip, message, event.id and @timestamp.
func TestAuditECS(t *testing.T) {
	cases := []struct {
		name string
		raw  json.RawMessage
		want map[string]any // flattened fields that must be present, with their values
		not  []string       // fields that must be absent
	}{
		{"logon", auditRecord("eNqA1", "User Logged On", "Admin@Example.com", "2026-10-11T17:17:30+0000",
			"Successful authentication for admin@example.com <Admin>, Date: 2026-10-11, Time: 18:17:30 BST, IP: 203.0.113.9, Application: Administration Console", "authentication_logs"),
			map[string]any{
				"@timestamp": "2026-10-11T17:17:30Z", "ecs.version": "8.11.0",
				"event.kind": "event", "event.category": []any{"authentication"}, "event.type": []any{"start"},
				"event.action": "user-logged-on", "event.outcome": "success", "event.id": "eNqA1",
				"event.module": "mimecast", "event.provider": "audit",
				"user.email": "admin@example.com", "user.name": "admin", "user.domain": "example.com",
				"related.user": []any{"admin", "admin@example.com"}, "client.ip": "203.0.113.9", "related.ip": []any{"203.0.113.9"},
				"message":             "Successful authentication for admin@example.com <Admin>, Date: 2026-10-11, Time: 18:17:30 BST, IP: 203.0.113.9, Application: Administration Console",
				"mimecast.audit.type": "User Logged On", "mimecast.audit.category": "authentication_logs", "mimecast.source": "audit",
			}, nil},
		{"failed logon", auditRecord("eNqA2", "Logon Authentication Failed", "admin@example.com", "2026-10-12T08:47:55+0000",
			"Failed authentication for admin@example.com, IP: 203.0.113.10, Reason: Wrong password", "authentication_logs"),
			map[string]any{"event.category": []any{"authentication"}, "event.type": []any{"start"}, "event.outcome": "failure",
				"event.action": "logon-authentication-failed"}, nil},
		{"password change", auditRecord("eNqA3", "User Password Changed", "admin@example.com", "2026-10-12T19:56:55+0000",
			"Password reset for user: admin@example.com User Password Changed, Remote IP is null", "user_account_and_role_logs"),
			map[string]any{"event.category": []any{"iam"}, "event.type": []any{"user", "change"}}, []string{"event.outcome", "client.ip"}},
		{"group change", auditRecord("eNqA4", "Folder Log Entry", "admin@example.com", "2026-10-11T18:23:10+0000",
			"Action Performed - Deleted New Folder by admin@example.com<Admin> Date: 2026-10-11 Time: 19:23:10 +0100 IP: 203.0.113.11 Application: Administration Console", "profile_group_logs"),
			map[string]any{"event.category": []any{"iam"}, "event.type": []any{"group", "change"}, "client.ip": "203.0.113.11"}, nil},
		{"policy change", auditRecord("eNqA5", "Policy Definition Changed", "admin@example.com", "2026-10-12T09:00:00+0000", "Policy updated", "policy_logs"),
			map[string]any{"event.category": []any{"configuration"}, "event.type": []any{"change"}}, nil},
		{"directory sync without a user", auditRecord("eNqA6", "Completed Directory Sync", "", "2026-10-11T13:21:06+0000", "No changes found.", "account_logs"),
			map[string]any{"event.category": []any{"configuration"}, "event.type": []any{"change"}, "message": "No changes found."},
			[]string{"user.email", "user.name", "related.user"}},
		{"a user without a domain", auditRecord("eNqA7", "Threat Intel Feed Download", "admin@example", "2026-10-10T22:51:57+0000",
			"Threat intel feed download, IP: 203.0.113.12, Application: Integrations", "reporting_logs"),
			map[string]any{"user.email": "admin@example", "user.name": "admin", "user.domain": "example", "event.category": []any{"configuration"}, "event.type": []any{"access"}}, nil},
		{"a name only", auditRecord("eNqA8", "Search Action", "jdoe", "2026-10-11T15:35:53+0000", "Executed Search", "case_review_logs"),
			map[string]any{"user.name": "jdoe", "related.user": []any{"jdoe"}}, []string{"user.email", "user.domain"}},
		{"an unknown category", auditRecord("eNqA9", "Something New", "admin@example.com", "2026-10-11T15:35:53+0000", "x", "brand_new_logs"),
			map[string]any{"event.category": []any{"configuration"}, "event.type": []any{"info"}, "mimecast.audit.category": "brand_new_logs"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode(Audit, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(ev.Body)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			flat := map[string]any{}
			flatten("", m, flat)
			for k, want := range tc.want {
				if got := flat[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
			for _, k := range tc.not {
				if v, ok := flat[k]; ok {
					t.Errorf("%s = %#v, want it absent", k, v)
				}
			}
			if len(ev.ID) != 64 {
				t.Errorf("id %q: want 64 hex digits", ev.ID)
			}
		})
	}
}

// eventTime in every form the public samples and the integration's pipeline accept; a zone
// whose offset is uncertain, or no time, fails the record alone, with its reason.
func TestAuditTime(t *testing.T) {
	want := time.Date(2026, 10, 11, 15, 39, 17, 0, time.UTC)
	for _, s := range []string{"2026-10-11T15:39:17+0000", "2026-10-11T15:39:17Z", "2026-10-11T16:39:17+01:00",
		"2026-10-11T15:39:17 +0000", "2026-10-11T16:39:17 +0100", "2026-10-11T15:39:17 UTC", "2026-10-11T15:39:17 GMT",
		"2026-10-11T15:39:17 Z", "1791733157", "1791733157000"} {
		ev, err := Decode(Audit, auditRecord("i", "User Logged On", "a@b.example", s, "x", "authentication_logs"))
		if err != nil || !ev.Time.Equal(want) {
			t.Errorf("eventTime %q: %v, %v; want %v", s, ev.Time, err, want)
		}
	}
	for _, s := range []string{"2026-10-11T15:39:17.1+0000", "2026-10-11T15:39:17.123Z", "2026-10-11T15:39:17.123456789+0000"} {
		ev, err := Decode(Audit, auditRecord("i", "User Logged On", "a@b.example", s, "x", "authentication_logs"))
		if err != nil || ev.Time.Truncate(time.Second) != want {
			t.Errorf("eventTime %q: %v, %v; want %v and its fraction", s, ev.Time, err, want)
		}
	}
	for _, c := range []struct {
		raw    string
		reason string
	}{
		{`{"id":"i","eventTime":"2026-10-11T15:39:17 BST"}`, ReasonBadTime},
		{`{"id":"i","eventTime":"yesterday"}`, ReasonBadTime},
		{`{"id":"i","auditType":"User Logged On"}`, ReasonNoTime},
		{`[]`, ReasonNotObject},
		{`null`, ReasonNotObject},
	} {
		_, err := Decode(Audit, json.RawMessage(c.raw))
		var re *RecordError
		if !errors.As(err, &re) || re.Reason != c.reason {
			t.Errorf("%s: error %v; want reason %q", c.raw, err, c.reason)
		}
	}
}

// The document id is the same for the same record served again in another key order, and
// differs for records that share an id but not their content (the public samples have them).
func TestAuditID(t *testing.T) {
	a := `{"id":"eNqX","auditType":"Logon Authentication Failed","user":"a@b.example","eventTime":"2026-10-12T08:47:55+0000","eventInfo":"Failed, Reason: Account Locked","category":"authentication_logs"}`
	b := `{"category":"authentication_logs","eventInfo":"Failed, Reason: Account Locked","eventTime":"2026-10-12T08:47:55Z","user":"a@b.example","auditType":"Logon Authentication Failed","id":"eNqX"}`
	c := `{"id":"eNqX","auditType":"Logon Authentication Failed","user":"a@b.example","eventTime":"2026-10-12T08:47:55+0000","eventInfo":"Failed, Reason: Wrong Password","category":"authentication_logs"}`
	ea, _ := Decode(Audit, json.RawMessage(a))
	eb, _ := Decode(Audit, json.RawMessage(b))
	ec, _ := Decode(Audit, json.RawMessage(c))
	if ea.ID == "" || ea.ID != eb.ID {
		t.Errorf("the same record served twice: ids %q and %q", ea.ID, eb.ID)
	}
	if ea.ID == ec.ID {
		t.Errorf("two events sharing a record id got one document id")
	}
}

// fullAuditDocument is an audit event with every field the decoder and the poller write.
func fullAuditDocument() map[string]any {
	ev, err := Decode(Audit, auditRecord("eNqA1", "User Logged On", "admin@example.com", "2026-10-11T17:17:30+0000",
		"Successful authentication, IP: 203.0.113.9", "authentication_logs"))
	if err != nil {
		panic(err)
	}
	return eventDocument(&ev, AuditDataset, "default", time.Date(2026, 10, 11, 17, 20, 0, 0, time.UTC))
}

// Every field of an audit document is in AuditMapping, with a type that holds its value.
func TestAuditMappingCoversDocument(t *testing.T) {
	b, _ := json.Marshal(fullAuditDocument())
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	flat := map[string]any{}
	flatten("", m, flat)
	paths := make([]string, 0, len(flat))
	for p := range flat {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if mt := mappedType(AuditMapping(), p); mt == "" {
			t.Errorf("field %s is not in the mapping", p)
		} else if !compatible(flat[p], mt) {
			t.Errorf("field %s = %#v does not fit mapping type %s", p, flat[p], mt)
		}
	}
	for _, k := range []string{"data_stream.dataset", "event.dataset", "event.ingested", "event.created"} {
		if _, ok := flat[k]; !ok {
			t.Errorf("the poller did not add %s", k)
		}
	}
}

// The same, by Elasticsearch itself: a full audit document goes into an index whose mapping
// is AuditMapping made strict.
func TestAuditMappingInElasticsearch(t *testing.T) {
	base := indextest.URL(t)
	prefix := indextest.Prefix(t, base)
	es := &rawES{base: base, index: prefix + "-audit", c: &http.Client{Timeout: 30 * time.Second}}
	mapping := AuditMapping()
	mapping["dynamic"] = "strict"
	body, _ := json.Marshal(map[string]any{"mappings": mapping})
	if status, b, err := es.do(context.Background(), http.MethodPut, "/"+es.index, body); err != nil || status != http.StatusOK {
		t.Fatalf("create %s: %d %s %v", es.index, status, b, err)
	}
	doc, _ := json.Marshal(fullAuditDocument())
	if status, b, err := es.do(context.Background(), http.MethodPut, "/"+es.index+"/_doc/1", doc); err != nil || status >= 300 {
		t.Errorf("index a full audit document: %d %s %v", status, b, err)
	}
}
