package mimecast_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// standIn answers like an independent Mimecast stand-in written from the public
// documentation: the shapes our simulator does not use by default.
func standIn(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var listCalls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/oauth/token":
			io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":"1799","scope":""}`)
		case "/api/archive/get-message-list":
			listCalls.Add(1)
			if strings.Contains(string(body), "NEXT2") {
				// A final page with no records and yet another next (as in public fixtures).
				io.WriteString(w, `{"meta":{"status":200,"pagination":{"pageSize":"7","next":"NEXT3"}},"data":[],"fail":[]}`)
				return
			}
			io.WriteString(w, `{"meta":{"status":200,"pagination":{"pageSize":7,"totalCount":"6","next":"NEXT2"}},"data":[
				{"id":"eNoGood1","received":"2015-11-16T14:49:18+0000","subject":"secret subject one","size":"123",
				 "from":{"emailAddress":"a@b.c","displayableName":"A"},"to":[{"emailAddress":"d@e.f","displayableName":"D"}],"read":"false"},
				{"id":"eNoGood2","received":"2015-11-16T14:49:19.000Z","subject":"secret subject two",
				 "from":"A <a@b.c>","to":[{"emailAddress":"x@y.z"}],"ccm":false},
				"secret string record",
				{"id":{"secureId":"secret"},"received":"2015-11-16T14:49:18+0000"},
				{"id":"eNoNoTime","subject":"secret subject three"},
				{"id":"eNoBadTime","received":"secret yesterday"}
			],"fail":[]}`)
		case "/api/archive/get-message-detail":
			io.WriteString(w, `{"meta":{"status":"200"},"data":[{"id":"eNoGood1","subject":"S","size":"99",
				"from":[{"emailAddress":"a@b.c"}],"to":{"emailAddress":"d@e.f"},"cc":null,
				"headers":[{"name":"Subject","values":"S"}],"hasHtmlBody":"true",
				"attachments":[{"id":"att1","size":"10","bodyType":"5","filename":"a.pdf"}]}],"fail":[]}`)
		case "/api/user/get-internal-users":
			io.WriteString(w, `{"meta":{"status":200},"data":[{"users":[{"emaiLAddress":"a@x.com","alias":"false"},
				{"emailAddress":"alias@x.com","alias":"true"},{"name":"no address"},{"emailAddress":"b@x.com"}],"usercount":"3"}],"fail":[]}`)
		case "/api/domain/get-internal-domain":
			io.WriteString(w, `{"meta":{"status":200},"data":[{"id":"d1","domain":"x.com","local":"false","sendOnly":"false"},
				{"id":"d2"},"junk",{"id":"d3","domain":"local.x.com","local":1}],"fail":[]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &listCalls
}

func standInClient(t *testing.T, url string, logs *syncBuffer) *mimecast.Client {
	t.Helper()
	c, err := mimecast.New(mimecast.Config{BaseURL: url, ClientID: "id", ClientSecret: "secret-xyz",
		MinBackoff: time.Millisecond, MaxRetries: -1, Logger: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// The contract the crawler relies on: a record with Problem set has ID == "" or a Received
// that api.ParseTime rejects; a record without Problem has both.
func checkContract(t *testing.T, m api.MessageSummary) {
	t.Helper()
	_, terr := api.ParseTime(m.Received)
	usable := m.ID != "" && terr == nil
	if usable == (m.Problem != nil) {
		t.Errorf("record %q received %q problem %v: usable %v disagrees with Problem", m.ID, m.Received, m.Problem, usable)
	}
}

func TestListMessagesToleratesAStandIn(t *testing.T) {
	srv, listCalls := standIn(t)
	logs := &syncBuffer{}
	c := standInClient(t, srv.URL, logs)
	var got []api.MessageSummary
	err := c.ListMessages(context.Background(), api.MessageListFilter{View: api.ViewInbox, Mailbox: "a@b.c"}, 7,
		func(page []api.MessageSummary) error { got = append(got, page...); return nil })
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	if n := listCalls.Load(); n != 2 {
		t.Errorf("%d list calls, want 2 (the walk stops at the empty page despite its next)", n)
	}
	if len(got) != 6 {
		t.Fatalf("%d records, want 6 (one bad record fails only itself)", len(got))
	}
	for _, m := range got {
		checkContract(t, m)
	}
	want := []struct {
		id  string
		bad bool
	}{{"eNoGood1", false}, {"eNoGood2", false}, {"", true}, {"", true}, {"eNoNoTime", true}, {"eNoBadTime", true}}
	for i, w := range want {
		if got[i].ID != w.id || (got[i].Problem != nil) != w.bad {
			t.Errorf("record %d: id %q problem %v; want id %q bad %v", i, got[i].ID, got[i].Problem, w.id, w.bad)
		}
	}
	if g := got[0]; g.To.EmailAddress != "d@e.f" || g.Size != 123 || g.From.DisplayableName != "A" {
		t.Errorf("first record decoded as %+v", g)
	}
	if g := got[1]; g.From != (api.Address{EmailAddress: "a@b.c", DisplayableName: "A"}) {
		t.Errorf("second record's from = %+v", g.From)
	}

	// One warning per endpoint and field, naming the kind and never the content.
	out := logs.String()
	if n := strings.Count(out, `"field":"to"`); n != 1 {
		t.Errorf("%d warnings about to, want 1:\n%s", n, out)
	}
	for _, field := range []string{`"field":"size","kind":"string"`, `"field":"from","kind":"string"`, `"field":"read","kind":"string"`, `"field":"id","kind":"object"`} {
		if !strings.Contains(out, field) {
			t.Errorf("no warning with %s:\n%s", field, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("a log line carries record content:\n%s", out)
	}

	// The registry belongs to the client: a second list of the same shapes warns no more,
	// another client warns afresh.
	logs2 := &syncBuffer{}
	c2 := standInClient(t, srv.URL, logs2)
	_ = c2.ListMessages(context.Background(), api.MessageListFilter{View: api.ViewInbox, Mailbox: "a@b.c"}, 7,
		func([]api.MessageSummary) error { return nil })
	if !strings.Contains(logs2.String(), `"field":"to"`) {
		t.Errorf("a second client did not warn about to:\n%s", logs2)
	}
}

func TestDetailUsersDomainsTolerateAStandIn(t *testing.T) {
	srv, _ := standIn(t)
	logs := &syncBuffer{}
	c := standInClient(t, srv.URL, logs)
	ctx := context.Background()
	d, err := c.MessageDetail(ctx, "eNoGood1")
	if err != nil {
		t.Fatalf("MessageDetail: %v", err)
	}
	if d.Size != 99 || d.From.EmailAddress != "a@b.c" || len(d.To) != 1 || d.To[0].EmailAddress != "d@e.f" || d.Cc != nil ||
		len(d.Headers) != 1 || len(d.Headers[0].Values) != 1 || !d.HasHTMLBody ||
		len(d.Attachments) != 1 || d.Attachments[0].Size != 10 || d.Attachments[0].BodyType != 5 {
		t.Errorf("detail decoded as %+v", d)
	}
	users, err := c.InternalUsers(ctx, "x.com", 10)
	if err != nil {
		t.Fatalf("InternalUsers: %v", err)
	}
	var addrs []string
	for _, u := range users {
		addrs = append(addrs, u.EmailAddress)
	}
	if strings.Join(addrs, ",") != "a@x.com,b@x.com" {
		t.Errorf("users %v, want a@x.com and b@x.com (the alias and the row without address skipped)", addrs)
	}
	domains, err := c.InternalDomains(ctx)
	if err != nil {
		t.Fatalf("InternalDomains: %v", err)
	}
	if len(domains) != 2 || domains[0].Domain != "x.com" || domains[0].Local || domains[1].Domain != "local.x.com" || !domains[1].Local {
		t.Errorf("domains %+v, want x.com and local.x.com (local)", domains)
	}
	if !strings.Contains(logs.String(), `"op":"POST /api/archive/get-message-detail","field":"to","kind":"object"`) {
		t.Errorf("no warning about detail to as an object:\n%s", logs)
	}
}

// A detail whose attachment has no id cannot build its attachment documents: that message
// fails, with an error naming the endpoint.
func TestDetailAttachmentWithoutIDFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth/token" {
			io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":1799}`)
			return
		}
		io.WriteString(w, `{"meta":{"status":200},"data":[{"id":"m","attachments":[{"filename":"a.pdf"}]}],"fail":[]}`)
	}))
	defer srv.Close()
	c := standInClient(t, srv.URL, &syncBuffer{})
	_, err := c.MessageDetail(context.Background(), "m")
	if err == nil || !strings.Contains(err.Error(), "malformed response from POST /api/archive/get-message-detail") ||
		!strings.Contains(err.Error(), "attachments[0]") {
		t.Errorf("error = %v; want a malformed detail naming attachments[0]", err)
	}
}

// Against the simulator in shape-variant mode the client reads the same archive as the truth.
func TestClientReadsShapeVariantsLikeTruth(t *testing.T) {
	e := newEnv(t, simulator.Options{Domains: 2, Mailboxes: 3, Messages: 15, ShapeVariants: true})
	c := e.client(t, nil)
	ctx := context.Background()
	tr := e.sim.Truth()
	checked := 0
	for _, mb := range tr.Mailboxes {
		if mb.Alias || mb.Type != simulator.TypeMailbox {
			continue
		}
		for _, view := range []string{api.ViewInbox, api.ViewSent} {
			want := map[string]simulator.TruthMessage{}
			for _, m := range mb.Messages {
				if m.View == view {
					want[m.ID] = m
				}
			}
			got := map[string]bool{}
			f := api.MessageListFilter{View: view, Mailbox: mb.Address, Start: "2000-01-01T00:00:00Z", End: "2100-01-01T00:00:00+00:00"}
			err := c.ListMessages(ctx, f, 4, func(page []api.MessageSummary) error {
				for _, m := range page {
					checkContract(t, m)
					if m.Problem != nil {
						t.Errorf("record %q unusable: %v", m.ID, m.Problem)
						continue
					}
					if got[m.ID] {
						t.Errorf("message %s listed twice", m.ID)
					}
					got[m.ID] = true
					tm, ok := want[m.ID]
					if !ok {
						t.Errorf("message %s not in the truth", m.ID)
						continue
					}
					rt, _ := api.ParseTime(m.Received)
					wt, _ := api.ParseTime(tm.Received)
					if !rt.Equal(wt) || m.Subject != tm.Subject {
						t.Errorf("message %s: received %s subject %q, want %s %q", m.ID, m.Received, m.Subject, tm.Received, tm.Subject)
					}
					d, err := c.MessageDetail(ctx, m.ID)
					if err != nil {
						t.Errorf("detail %s: %v", m.ID, err)
						continue
					}
					if d.Subject != tm.Subject || len(d.Attachments) != len(tm.Attachments) || d.From.EmailAddress == "" {
						t.Errorf("detail %s: subject %q, %d attachments, from %q; want %q, %d", m.ID, d.Subject, len(d.Attachments), d.From.EmailAddress, tm.Subject, len(tm.Attachments))
					}
					for i, a := range d.Attachments {
						if i < len(tm.Attachments) && (a.ID != tm.Attachments[i].ID || a.Size != tm.Attachments[i].Size || a.SHA256 != tm.Attachments[i].SHA256) {
							t.Errorf("detail %s attachment %d: %+v, want %+v", m.ID, i, a, tm.Attachments[i])
						}
					}
					checked++
				}
				return nil
			})
			if err != nil {
				t.Fatalf("list %s %s: %v", mb.Address, view, err)
			}
			if len(got) != len(want) {
				t.Errorf("%s %s: listed %d messages, truth has %d", mb.Address, view, len(got), len(want))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no message checked")
	}
	var warned []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "unexpected shape in an answer; read tolerantly" {
			warned = append(warned, m)
		}
	}
	if len(warned) == 0 {
		t.Errorf("no unexpected shape was warned about")
	}
	seen := map[string]bool{}
	for _, w := range warned {
		k := w["op"].(string) + " " + w["field"].(string)
		if seen[k] {
			t.Errorf("warned twice about %s", k)
		}
		seen[k] = true
	}
}
