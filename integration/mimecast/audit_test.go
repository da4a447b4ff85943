package mimecast_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// The audit log read page by page to the end, with each paging variant of the legacy logs:
// every record of the truth once, the stated total, newest first.
func TestAuditEventsPageToTheEnd(t *testing.T) {
	for name, pg := range map[string]simulator.AlertPaging{"documented": {}, "empty pages with next": {EmptyPages: true}} {
		t.Run(name, func(t *testing.T) {
			e, clk := alertEnv(t, func(o *simulator.Options) { o.Alerts.Audit = 23; o.Alerts.Paging = pg })
			c := e.client(t, nil)
			want := truthRecords(e.sim, simulator.SourceAudit)
			if len(want) != 23 {
				t.Fatalf("%d seeded audit events, want 23", len(want))
			}
			q := mimecast.AuditQuery{From: clk.Now().Add(-11 * time.Hour), To: clk.Now(), PageSize: 5}
			var got []string
			var last time.Time
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatal("paging does not end")
				}
				p, err := c.AuditEvents(context.Background(), q)
				if err != nil {
					t.Fatalf("page %d: %v", pages, err)
				}
				if p.Total != len(want) {
					t.Errorf("Total = %d, want %d", p.Total, len(want))
				}
				for _, r := range p.Records {
					got = append(got, string(r))
					var rec struct {
						ID, AuditType, EventTime, Category string
					}
					if err := json.Unmarshal(r, &rec); err != nil || rec.ID == "" || rec.AuditType == "" || rec.Category == "" {
						t.Fatalf("record %s: %v", r, err)
					}
					ts, err := time.Parse(time.RFC3339, strings.Replace(rec.EventTime, "+0000", "Z", 1))
					if err != nil {
						t.Fatalf("eventTime %q: %v", rec.EventTime, err)
					}
					if !last.IsZero() && ts.After(last) {
						t.Errorf("%s after %s: want newest first", ts, last)
					}
					last = ts
				}
				if p.Next == "" {
					break
				}
				q.PageToken = p.Next
			}
			if g := sorted(got); strings.Join(g, "\n") != strings.Join(want, "\n") {
				t.Errorf("read %d records, want the truth's %d", len(got), len(want))
			}
		})
	}
}

// The request carries startDateTime and endDateTime (the endpoint refuses it without), in
// data[0], with the categories when given; a 403 names the permission.
func TestAuditEventsRequestAndForbidden(t *testing.T) {
	var item map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":1800}`))
			return
		}
		var req struct {
			Data []map[string]any `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Data) != 1 {
			t.Errorf("request body: %v, %d items", err, len(req.Data))
		} else {
			item = req.Data[0]
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"meta":{"status":200,"pagination":{"pageSize":2,"totalCount":2}},"data":[{"id":"a"},null],"fail":[]}`))
	}))
	defer srv.Close()
	c, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret", MaxRetries: 1, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	p, err := c.AuditEvents(context.Background(), mimecast.AuditQuery{From: from, To: from.Add(time.Hour), Categories: []string{"policy_logs"}})
	if err != nil {
		t.Fatal(err)
	}
	if item["startDateTime"] != "2026-03-01T10:00:00+0000" || item["endDateTime"] != "2026-03-01T11:00:00+0000" {
		t.Errorf("data[0] = %v; want startDateTime and endDateTime in the legacy form", item)
	}
	if cats, _ := item["categories"].([]any); len(cats) != 1 || cats[0] != "policy_logs" {
		t.Errorf("categories = %v", item["categories"])
	}
	// A null record is the decoder's to refuse, alone: the page keeps both.
	if len(p.Records) != 2 || p.Total != 2 || p.Next != "" || !p.CaughtUp {
		t.Errorf("page = %d records, total %d, next %q", len(p.Records), p.Total, p.Next)
	}
	if _, err := c.AuditEvents(context.Background(), mimecast.AuditQuery{To: from}); err == nil {
		t.Error("a query without a start was sent")
	}

	e, clk := alertEnv(t, func(o *simulator.Options) { o.Alerts.Audit = 3 })
	e.sim.SetForbidden([]string{"/api/audit/get-audit-events"})
	_, err = e.client(t, nil).AuditEvents(context.Background(), mimecast.AuditQuery{From: clk.Now().Add(-time.Hour), To: clk.Now()})
	var me *mimecast.Error
	if !mimecast.IsForbidden(err) || !errors.As(err, &me) || me.Permission != "Account | Logs | Read" {
		t.Errorf("403: %v; want forbidden naming Account | Logs | Read", err)
	}
}
