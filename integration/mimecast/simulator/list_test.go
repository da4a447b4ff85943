package simulator

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

const listPath = "/api/archive/get-message-list"

// wide is a window that holds every seeded message.
func wide(mailbox, view string) api.MessageListFilter {
	return api.MessageListFilter{View: view, Mailbox: mailbox, Start: "2000-01-01T00:00:00+0000", End: "2100-01-01T00:00:00+0000"}
}

// truthIDs lists the ids of one view of a mailbox in truth order.
func truthIDs(mb TruthMailbox, view string) []string {
	var ids []string
	for _, m := range mb.Messages {
		if m.View == view {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// listAll walks every page and returns the ids and the number of pages.
func (h *harness) listAll(tok string, f api.MessageListFilter, pageSize int) ([]string, int) {
	h.t.Helper()
	var ids []string
	next := ""
	for pages := 1; ; pages++ {
		r := h.call(tok, listPath, pageSize, next, f)
		if r.status != 200 || len(r.env.Fail) > 0 {
			h.t.Fatalf("page %d: %d %s", pages, r.status, r.body)
		}
		for _, m := range decodeData[api.MessageSummary](h.t, r) {
			ids = append(ids, m.ID)
		}
		if r.env.Meta.Pagination == nil || r.env.Meta.Pagination.Next == "" {
			return ids, pages
		}
		next = r.env.Meta.Pagination.Next
		if pages > 1000 {
			h.t.Fatal("pagination does not end")
		}
	}
}

func TestMessageListPagination(t *testing.T) {
	h := newHarness(t, Options{Seed: 3, Messages: 60, PageCap: 10, ExtraClients: map[string]string{"other": "pw"}})
	tok := h.token()
	mb := firstMailbox(t, h.sim.Truth())

	for _, view := range []string{api.ViewInbox, api.ViewSent} {
		t.Run("all pages "+view, func(t *testing.T) {
			want := truthIDs(mb, view)
			got, pages := h.listAll(tok, wide(mb.Address, view), 7)
			if !slices.Equal(got, want) {
				t.Fatalf("ids differ from truth:\n got %v\nwant %v", got, want)
			}
			if wantPages := (len(want) + 6) / 7; pages != wantPages {
				t.Errorf("pages %d, want %d", pages, wantPages)
			}
		})
	}

	t.Run("newest first and summary fields", func(t *testing.T) {
		r := h.call(tok, listPath, 10, "", wide(mb.Address, api.ViewInbox))
		msgs := decodeData[api.MessageSummary](t, r)
		var prev time.Time
		for i, m := range msgs {
			ts, err := api.ParseTime(m.Received)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 && ts.After(prev) {
				t.Errorf("record %d newer than the one before", i)
			}
			prev = ts
			if m.Status != "ARCHIVED" || m.Size <= 0 || len(m.Smash) != 40 || m.From.EmailAddress == "" || m.To.EmailAddress == "" {
				t.Errorf("summary %+v", m)
			}
		}
		if tc := r.env.Meta.Pagination.TotalCount; tc == nil || *tc != len(truthIDs(mb, api.ViewInbox)) {
			t.Errorf("totalCount %v", tc)
		}
	})

	t.Run("page size cap and default", func(t *testing.T) {
		r := h.call(tok, listPath, 50, "", wide(mb.Address, api.ViewInbox))
		if len(r.env.Data) != 10 || r.env.Meta.Pagination.PageSize != 10 {
			t.Errorf("capped page: %d records, pageSize %d", len(r.env.Data), r.env.Meta.Pagination.PageSize)
		}
		big := newHarness(t, Options{Seed: 3, Messages: 60})
		r = big.call(big.token(), listPath, 0, "", wide(mb.Address, api.ViewInbox))
		if len(r.env.Data) != 25 || r.env.Meta.Pagination.PageSize != 25 {
			t.Errorf("default page: %d records", len(r.env.Data))
		}
	})

	t.Run("token binding", func(t *testing.T) {
		f := wide(mb.Address, api.ViewInbox)
		next := h.call(tok, listPath, 5, "", f).env.Meta.Pagination.Next
		if next == "" {
			t.Fatal("no next")
		}
		other := h.sim.Truth().Mailboxes
		otherBox := ""
		for _, m := range other {
			if m.Type == TypeMailbox && m.Address != mb.Address {
				otherBox = m.Address
			}
		}
		_, otherTok := h.tokenFor("other", "pw")
		sent := wide(mb.Address, api.ViewSent)
		shifted := f
		shifted.Start = "2000-01-01T00:00:01+0000"
		cases := []struct {
			name   string
			tok    string
			filter api.MessageListFilter
			page   string
			status int
		}{
			{"same filter", tok, f, next, 200},
			{"same filter other date form", tok, api.MessageListFilter{View: f.View, Mailbox: f.Mailbox, Start: "2000-01-01T00:00:00Z", End: "2100-01-01T00:00:00+00:00"}, next, 200},
			{"other view", tok, sent, next, 400},
			{"other window", tok, shifted, next, 400},
			{"other mailbox", tok, wide(otherBox, api.ViewInbox), next, 400},
			{"other client", otherTok.AccessToken, f, next, 400},
			{"tampered", tok, f, next[:len(next)-2] + "xx", 400},
			{"garbage", tok, f, "NDY6bnVsbA==", 400},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := h.call(tc.tok, listPath, 5, tc.page, tc.filter)
				if r.status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
				}
				if tc.status == 400 && (len(r.env.Fail) == 0 || r.env.Fail[0].Code != codeBadToken || r.env.Meta.Status != 400) {
					t.Errorf("body %s", r.body)
				}
			})
		}
	})

	t.Run("delete between pages neither repeats nor skips", func(t *testing.T) {
		h := newHarness(t, Options{Seed: 3, Messages: 30})
		tok := h.token()
		mb := firstMailbox(t, h.sim.Truth())
		want := truthIDs(mb, api.ViewInbox)
		f := wide(mb.Address, api.ViewInbox)
		r := h.call(tok, listPath, 5, "", f)
		got := []string{}
		for _, m := range decodeData[api.MessageSummary](t, r) {
			got = append(got, m.ID)
		}
		if err := h.sim.DeleteMessage(want[6]); err != nil {
			t.Fatal(err)
		}
		if err := h.sim.DeleteMessage(want[4]); err != nil { // already returned
			t.Fatal(err)
		}
		next := r.env.Meta.Pagination.Next
		for next != "" {
			r = h.call(tok, listPath, 5, next, f)
			for _, m := range decodeData[api.MessageSummary](t, r) {
				got = append(got, m.ID)
			}
			next = r.env.Meta.Pagination.Next
		}
		want = slices.Delete(slices.Clone(want), 6, 7)
		if !slices.Equal(got, want) {
			t.Errorf("got %v\nwant %v", got, want)
		}
	})
}

func TestMessageListEmptyLastPage(t *testing.T) {
	h := newHarness(t, Options{Seed: 3, Messages: 30, EmptyLastPage: true})
	tok := h.token()
	mb := firstMailbox(t, h.sim.Truth())
	want := truthIDs(mb, api.ViewInbox)
	f := wide(mb.Address, api.ViewInbox)
	var got []string
	next := ""
	for page := 0; page < 100; page++ {
		r := h.call(tok, listPath, 5, next, f)
		msgs := decodeData[api.MessageSummary](t, r)
		if r.env.Meta.Pagination.Next == "" {
			t.Fatalf("page %d without next", page)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			got = append(got, m.ID)
		}
		next = r.env.Meta.Pagination.Next
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %d ids, want %d", len(got), len(want))
	}

	r := h.call(tok, "/api/user/get-internal-users", 500, "")
	users := decodeData[api.UsersPage](t, r)[0].Users
	if r.env.Meta.Pagination.Next == "" {
		t.Fatal("users: last page without next")
	}
	r = h.call(tok, "/api/user/get-internal-users", 500, r.env.Meta.Pagination.Next)
	if len(decodeData[api.UsersPage](t, r)[0].Users) != 0 || r.env.Meta.Pagination.Next == "" || len(users) == 0 {
		t.Errorf("users: final page %s", r.body)
	}
}

func TestMessageListWindows(t *testing.T) {
	h := newHarness(t, Options{Seed: 5, Messages: 40})
	tok := h.token()
	mb := firstMailbox(t, h.sim.Truth())
	var target TruthMessage
	for _, m := range mb.Messages {
		if m.View == api.ViewInbox {
			target = m
			break
		}
	}
	at, err := api.ParseTime(target.Received)
	if err != nil {
		t.Fatal(err)
	}
	plus2 := time.FixedZone("", 2*3600)
	forms := map[string]func(time.Time) string{
		"+0000":  func(t time.Time) string { return t.UTC().Format(api.TimeLayout) },
		"Z":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"+hh:mm": func(t time.Time) string { return t.In(plus2).Format(time.RFC3339) },
	}
	for name, format := range forms {
		t.Run(name, func(t *testing.T) {
			cases := []struct {
				name       string
				start, end time.Time
				want       bool
			}{
				{"exact second both bounds", at, at, true},
				{"start inclusive", at, at.Add(time.Hour), true},
				{"end inclusive", at.Add(-time.Hour), at, true},
				{"start one second later", at.Add(time.Second), at.Add(time.Hour), false},
				{"end one second earlier", at.Add(-time.Hour), at.Add(-time.Second), false},
			}
			for _, tc := range cases {
				f := api.MessageListFilter{View: api.ViewInbox, Mailbox: mb.Address, Start: format(tc.start), End: format(tc.end)}
				r := h.call(tok, listPath, 100, "", f)
				found := false
				for _, m := range decodeData[api.MessageSummary](t, r) {
					found = found || m.ID == target.ID
					ts, _ := api.ParseTime(m.Received)
					if ts.Before(tc.start) || ts.After(tc.end) {
						t.Errorf("%s: %s outside the window", tc.name, m.Received)
					}
				}
				if found != tc.want {
					t.Errorf("%s (%s .. %s): found %v, want %v", tc.name, f.Start, f.End, found, tc.want)
				}
			}
		})
	}

	t.Run("defaults: last calendar month to end of today", func(t *testing.T) {
		ids, err := h.sim.AddMessages(mb.Address, 4)
		if err != nil {
			t.Fatal(err)
		}
		r := h.call(tok, listPath, 100, "", api.MessageListFilter{View: api.ViewInbox, Mailbox: mb.Address})
		got := decodeData[api.MessageSummary](t, r)
		// Seeded messages are from 2025; the clock is in March 2026: only the added ones.
		if len(got) != 2 || !slices.Contains(ids, got[0].ID) || !slices.Contains(ids, got[1].ID) {
			t.Errorf("default window: %s", r.body)
		}
		h.clock.Advance(62 * 24 * time.Hour) // now May: February is outside the default window
		r = h.call(tok, listPath, 100, "", api.MessageListFilter{View: api.ViewInbox, Mailbox: mb.Address})
		if len(r.env.Data) != 0 {
			t.Errorf("after two months: %s", r.body)
		}
	})
}

func TestMessageListValidation(t *testing.T) {
	h := newHarness(t, Options{Seed: 1})
	tok := h.token()
	tr := h.sim.Truth()
	mb := firstMailbox(t, tr)
	var alias TruthMailbox
	for _, m := range tr.Mailboxes {
		if m.Alias && m.AliasOf == mb.Address {
			alias = m
		}
	}
	cases := []struct {
		name string
		data []any
		code string
	}{
		{"no item", nil, codeNull},
		{"two items", []any{wide(mb.Address, "INBOX"), wide(mb.Address, "SENT")}, codeTooMany},
		{"bad view", []any{wide(mb.Address, "OUTBOX")}, codeNotAllowed},
		{"missing view", []any{map[string]string{"mailbox": mb.Address}}, codeNull},
		{"missing mailbox", []any{map[string]string{"view": "INBOX"}}, codeNull},
		{"bad start", []any{map[string]string{"view": "INBOX", "mailbox": mb.Address, "start": "yesterday"}}, codeBadDate},
		{"bad end", []any{map[string]string{"view": "INBOX", "mailbox": mb.Address, "end": "2025-13-01T00:00:00Z"}}, codeBadDate},
		{"unknown mailbox", []any{wide("nobody@nowhere.example", "INBOX")}, codeUnknownAddr},
		{"wrong type", []any{map[string]any{"view": 3}}, codeNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.call(tok, listPath, 0, "", tc.data...)
			if r.status != 200 || r.env.Meta.Status != 200 || len(r.env.Data) != 0 {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if got := itemCode(t, r); got != tc.code {
				t.Errorf("code %q, want %q", got, tc.code)
			}
			if len(r.env.Fail[0].Key) == 0 {
				t.Error("fail entry without key")
			}
		})
	}
	if alias.Address != "" {
		t.Run("alias resolves to its mailbox", func(t *testing.T) {
			got, _ := h.listAll(tok, wide(alias.Address, api.ViewInbox), 100)
			if !slices.Equal(got, truthIDs(mb, api.ViewInbox)) {
				t.Errorf("alias listing differs")
			}
		})
	}
	if r := h.do(http.MethodPost, listPath, tok, "application/json", []byte(`{"meta":{"pagination":{"pageSize":"x"}},"data":[]}`)); r.status != 400 {
		t.Errorf("non-numeric pageSize: %d", r.status)
	}
}
