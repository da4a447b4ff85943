package simulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

const (
	detailPath = "/api/archive/get-message-detail"
	filePath   = "/api/archive/get-file"
	partPath   = "/api/archive/get-message-part"
)

// fetch GETs a download URL, optionally with a bearer token.
func (h *harness) fetch(url, bearer string) result {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// messageWithAttachments picks a message of the truth with at least n attachments.
func messageWithAttachments(t *testing.T, tr Truth, n int) TruthMessage {
	t.Helper()
	for _, mb := range tr.Mailboxes {
		for _, m := range mb.Messages {
			if len(m.Attachments) >= n {
				return m
			}
		}
	}
	t.Fatalf("no message with %d attachments", n)
	return TruthMessage{}
}

func TestMessageDetail(t *testing.T) {
	h := newHarness(t, Options{Seed: 2})
	tok := h.token()
	tr := h.sim.Truth()
	m := messageWithAttachments(t, tr, 2)

	r := h.call(tok, detailPath, 0, "", map[string]string{"id": m.ID, "context": "RECEIVED"})
	d := decodeData[api.MessageDetail](t, r)
	if r.status != 200 || len(d) != 1 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	got := d[0]
	if got.ID != m.ID || got.Subject != m.Subject || got.Size != m.Size || got.Smash != m.Smash || got.Received != m.Received {
		t.Errorf("detail %+v\ntruth %+v", got, m)
	}
	if len(got.To) == 0 || got.From.EmailAddress == "" || !strings.HasPrefix(got.MimeMessageID, "<") || utf8.RuneCountInString(got.MessageBodyPreview) > 100 {
		t.Errorf("detail fields %+v", got)
	}
	names := map[string]int{}
	for _, hd := range got.Headers {
		names[hd.Name] = len(hd.Values)
	}
	if names["Received"] != 2 || names["Authentication-Results"] != 1 || names["Message-ID"] != 1 {
		t.Errorf("headers %v", names)
	}
	if len(got.Attachments) != len(m.Attachments) {
		t.Fatalf("attachments %d, truth %d", len(got.Attachments), len(m.Attachments))
	}
	for i, a := range got.Attachments {
		ta := m.Attachments[i]
		if a.ID != ta.ID || a.SHA256 != ta.SHA256 || a.Size != ta.Size || a.Filename != ta.Filename || a.ContentType != ta.ContentType {
			t.Errorf("attachment %d: %+v truth %+v", i, a, ta)
		}
	}

	cases := []struct {
		name string
		item any
		code string
	}{
		{"smash instead of id", map[string]string{"id": m.Smash}, codeXDK},
		{"foreign id", map[string]string{"id": "eNpLtDK0qs60MrAutgIAGG0DPg"}, codeXDK},
		{"attachment id", map[string]string{"id": m.Attachments[0].ID}, codeXDK},
		{"bad context", map[string]string{"id": m.ID, "context": "ARCHIVED"}, codeNotAllowed},
		{"missing id", map[string]string{}, codeNull},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.call(tok, detailPath, 0, "", tc.item)
			if r.status != 200 || len(r.env.Data) != 0 || itemCode(t, r) != tc.code {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if tc.code == codeXDK && r.env.Fail[0].Errors[0].Message != "0007 Invalid token" {
				t.Errorf("message %q", r.env.Fail[0].Errors[0].Message)
			}
		})
	}
}

func TestGetFileDownloads(t *testing.T) {
	h := newHarness(t, Options{Seed: 2, DownloadTTL: 30 * time.Second})
	tok := h.token()
	tr := h.sim.Truth()
	m := messageWithAttachments(t, tr, 1)
	a := m.Attachments[0]

	fileURL := func(id string) string {
		t.Helper()
		r := h.call(tok, filePath, 0, "", map[string]string{"id": id})
		urls := decodeData[api.FileURLs](t, r)
		if r.status != 200 || len(urls) != 1 || len(urls[0].URLs) != 1 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("get-file %d %s", r.status, r.body)
		}
		if !strings.HasPrefix(urls[0].URLs[0], h.srv.URL+"/") {
			t.Errorf("url %s not on the request host", urls[0].URLs[0])
		}
		return urls[0].URLs[0]
	}

	t.Run("attachment without bearer", func(t *testing.T) {
		r := h.fetch(fileURL(a.ID), "")
		sum := sha256.Sum256(r.body)
		if r.status != 200 || hex.EncodeToString(sum[:]) != a.SHA256 || int64(len(r.body)) != a.Size {
			t.Fatalf("download %d, %d bytes", r.status, len(r.body))
		}
		if ct := r.header.Get("Content-Type"); ct != a.ContentType {
			t.Errorf("content type %q, want %q", ct, a.ContentType)
		}
		if h.sim.Stats().BearerOnDownload != 0 {
			t.Error("bearer counted without one")
		}
	})
	t.Run("whole message", func(t *testing.T) {
		r := h.fetch(fileURL(m.ID), "")
		if r.status != 200 || int64(len(r.body)) != m.Size || r.header.Get("Content-Type") != "message/rfc822" {
			t.Fatalf("download %d, %d bytes, want %d", r.status, len(r.body), m.Size)
		}
		checkMessage(t, r.body, m)
	})
	t.Run("bearer on download is counted", func(t *testing.T) {
		if r := h.fetch(fileURL(a.ID), tok); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		if n := h.sim.Stats().BearerOnDownload; n != 1 {
			t.Errorf("BearerOnDownload %d", n)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		u := fileURL(a.ID)
		h.clock.Advance(29 * time.Second)
		if r := h.fetch(u, ""); r.status != 200 {
			t.Fatalf("before expiry: %d", r.status)
		}
		h.clock.Advance(time.Second)
		if r := h.fetch(u, ""); r.status != 403 {
			t.Fatalf("after expiry: %d", r.status)
		}
	})
	t.Run("tampered url", func(t *testing.T) {
		u := fileURL(a.ID)
		if r := h.fetch(u[:len(u)-3]+"abc", ""); r.status != 403 {
			t.Fatalf("status %d", r.status)
		}
	})
	t.Run("deleted message", func(t *testing.T) {
		u := fileURL(m.ID)
		if err := h.sim.DeleteMessage(m.ID); err != nil {
			t.Fatal(err)
		}
		if r := h.fetch(u, ""); r.status != 404 {
			t.Errorf("download of deleted message: %d", r.status)
		}
		r := h.call(tok, filePath, 0, "", map[string]string{"id": a.ID})
		if itemCode(t, r) != codeXDK {
			t.Errorf("get-file of deleted attachment: %s", r.body)
		}
	})
	t.Run("download fault", func(t *testing.T) {
		m := messageWithAttachments(t, h.sim.Truth(), 1)
		u := fileURL(m.Attachments[0].ID)
		h.sim.SetFaults([]Fault{{PathPrefix: "/_download/", Status: 503, Count: 1}})
		defer h.sim.SetFaults(nil)
		if r := h.fetch(u, ""); r.status != 503 {
			t.Errorf("status %d", r.status)
		}
		if r := h.fetch(u, ""); r.status != 200 {
			t.Errorf("after fault: %d", r.status)
		}
	})
}

func TestMessagePart(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "urls"
		if stream {
			name = "streamed"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{Seed: 4, StreamFiles: stream})
			tok := h.token()
			mb := firstMailbox(t, h.sim.Truth())
			m := mb.Messages[0]
			get := func(typ string) result {
				t.Helper()
				r := h.call(tok, partPath, 0, "", api.MessagePartRequest{ID: m.ID, Mailbox: mb.Address, Context: "DELIVERED", Type: typ})
				if stream {
					if r.status != 200 || strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
						t.Fatalf("streamed %s: %d %s", typ, r.status, r.header.Get("Content-Type"))
					}
					return r
				}
				urls := decodeData[api.FileURLs](t, r)
				if r.status != 200 || len(urls) != 1 || urls[0].URL == "" {
					t.Fatalf("part %s: %d %s", typ, r.status, r.body)
				}
				return h.fetch(urls[0].URL, "")
			}
			if r := get(api.PartRFC822); int64(len(r.body)) != m.Size {
				t.Errorf("RFC822 %d bytes, want %d", len(r.body), m.Size)
			}
			if r := get(api.PartPlain); !bytes.Contains(r.body, []byte(m.BodyToken)) || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
				t.Errorf("PLAIN lacks the body token: %s", r.body)
			}
			if r := get(api.PartHTML); !bytes.Contains(r.body, []byte(m.BodyToken)) || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Errorf("HTML lacks the body token: %s", r.body)
			}
			cases := []struct {
				name string
				req  map[string]string
				code string
			}{
				{"bad type", map[string]string{"id": m.ID, "mailbox": mb.Address, "type": "PDF"}, codeNotAllowed},
				{"missing mailbox", map[string]string{"id": m.ID, "type": "HTML"}, codeNull},
				{"bad context", map[string]string{"id": m.ID, "mailbox": mb.Address, "type": "HTML", "context": "X"}, codeNotAllowed},
				{"smash", map[string]string{"id": m.Smash, "mailbox": mb.Address, "type": "HTML"}, codeXDK},
			}
			for _, tc := range cases {
				r := h.call(tok, partPath, 0, "", tc.req)
				if r.header.Get("Content-Type") != "application/json" || itemCode(t, r) != tc.code {
					t.Errorf("%s: %d %s", tc.name, r.status, r.body)
				}
			}
		})
	}

	t.Run("streamed get-file", func(t *testing.T) {
		h := newHarness(t, Options{Seed: 4, StreamFiles: true})
		tok := h.token()
		m := messageWithAttachments(t, h.sim.Truth(), 1)
		r := h.call(tok, filePath, 0, "", map[string]string{"id": m.Attachments[0].ID})
		sum := sha256.Sum256(r.body)
		if r.status != 200 || hex.EncodeToString(sum[:]) != m.Attachments[0].SHA256 || strings.Contains(r.header.Get("Content-Type"), "json") {
			t.Errorf("streamed get-file: %d %s", r.status, r.header.Get("Content-Type"))
		}
		r = h.call(tok, filePath, 0, "", map[string]string{"id": m.Smash})
		if r.header.Get("Content-Type") != "application/json" || itemCode(t, r) != codeXDK {
			t.Errorf("streamed failure must be a JSON envelope: %s", r.body)
		}
	})
}

// checkMessage parses raw with go-message and compares it with the truth: subject, body
// token and every attachment's name, size and digest. It returns the features seen.
func checkMessage(t *testing.T, raw []byte, m TruthMessage) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && !gomessage.IsUnknownCharset(err) {
		t.Fatalf("%s: parse: %v", m.ID, err)
	}
	subject, err := mr.Header.Subject()
	if err != nil || subject != m.Subject {
		t.Errorf("%s: subject %q (%v), want %q", m.ID, subject, err, m.Subject)
	}
	if m.Subject == "" {
		seen["empty subject"] = true
	} else if raw := mr.Header.Get("Subject"); strings.Contains(raw, "=?utf-8?") {
		seen["encoded subject"] = true
	}
	if _, err := mr.Header.Date(); err != nil {
		t.Errorf("%s: date: %v", m.ID, err)
	}
	if _, err := mr.Header.AddressList("From"); err != nil {
		t.Errorf("%s: from: %v", m.ID, err)
	}
	var text strings.Builder
	ai := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !gomessage.IsUnknownCharset(err) {
			t.Fatalf("%s: next part: %v", m.ID, err)
		}
		body, rerr := io.ReadAll(p.Body)
		if rerr != nil {
			t.Fatalf("%s: read part: %v", m.ID, rerr)
		}
		switch hd := p.Header.(type) {
		case *mail.InlineHeader:
			ct, params, _ := hd.ContentType()
			enc := hd.Get("Content-Transfer-Encoding")
			seen[ct+" "+enc] = true
			if strings.EqualFold(params["charset"], "iso-8859-1") {
				seen["iso-8859-1"] = true
				body = latin1ToUTF8(body) // go-message leaves unknown charsets undecoded
			}
			if !utf8.Valid(body) {
				t.Errorf("%s: %s body is not UTF-8 after decoding", m.ID, ct)
			}
			text.Write(body)
		case *mail.AttachmentHeader:
			if ai >= len(m.Attachments) {
				t.Fatalf("%s: more attachments than the truth", m.ID)
			}
			want := m.Attachments[ai]
			ai++
			name, _ := hd.Filename()
			ct, _, _ := hd.ContentType()
			sum := sha256.Sum256(body)
			if name != want.Filename || ct != want.ContentType || int64(len(body)) != want.Size || hex.EncodeToString(sum[:]) != want.SHA256 {
				t.Errorf("%s: attachment %q %s %d bytes, truth %+v", m.ID, name, ct, len(body), want)
			}
			switch {
			case name == "":
				seen["unnamed attachment"] = true
			case !isASCII(name):
				seen["non-ascii filename"] = true
			}
			if want.Size > 250_000 {
				seen["large attachment"] = true
			}
			seen["attachment "+ct] = true
		}
	}
	if ai != len(m.Attachments) {
		t.Errorf("%s: %d attachments, truth %d", m.ID, ai, len(m.Attachments))
	}
	if !strings.Contains(text.String(), m.BodyToken) {
		t.Errorf("%s: body token %s not in the body", m.ID, m.BodyToken)
	}
	if !isASCII(text.String()) {
		seen["non-ascii body"] = true
	}
	return seen
}

func latin1ToUTF8(b []byte) []byte {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return []byte(string(r))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// TestEveryMessageParses renders every seeded message of a default archive through the
// download path and checks it with go-message, and that the features tests rely on exist.
func TestEveryMessageParses(t *testing.T) {
	h := newHarness(t, Options{Seed: 42})
	tok := h.token()
	tr := h.sim.Truth()
	seen := map[string]bool{}
	total := 0
	for _, mb := range tr.Mailboxes {
		for _, m := range mb.Messages {
			total++
			raw, ok := h.sim.resolveFile(m.ID)
			if !ok {
				t.Fatalf("%s: not found", m.ID)
			}
			if int64(len(raw.body)) != m.Size {
				t.Errorf("%s: %d bytes, truth %d", m.ID, len(raw.body), m.Size)
			}
			for k := range checkMessage(t, raw.body, m) {
				seen[k] = true
			}
			if len(m.ID) < 60 || !strings.HasPrefix(m.ID, "eN") || strings.ContainsAny(m.ID, "+/=") {
				t.Errorf("id %q", m.ID)
			}
		}
	}
	if total != 5*20 {
		t.Errorf("%d messages, want 100", total)
	}
	for _, want := range []string{
		"text/plain quoted-printable", "text/html quoted-printable", "text/plain base64", "text/html base64",
		"iso-8859-1", "encoded subject", "empty subject", "non-ascii body", "unnamed attachment",
		"non-ascii filename", "large attachment", "attachment text/plain", "attachment text/csv",
		"attachment application/pdf", "attachment image/png", "attachment application/octet-stream",
	} {
		if !seen[want] {
			t.Errorf("no message with %s", want)
		}
	}
	// One message through the real endpoint as well, with a mime-decoded HTTP filename.
	m := messageWithAttachments(t, tr, 1)
	r := h.call(tok, filePath, 0, "", map[string]string{"id": m.Attachments[0].ID})
	var urls []api.FileURLs
	for _, d := range r.env.Data {
		var u api.FileURLs
		_ = json.Unmarshal(d, &u)
		urls = append(urls, u)
	}
	dl := h.fetch(urls[0].URLs[0], "")
	if m.Attachments[0].Filename != "" {
		_, params, err := mime.ParseMediaType(dl.header.Get("Content-Disposition"))
		if err != nil || params["filename"] != m.Attachments[0].Filename {
			t.Errorf("content disposition %q", dl.header.Get("Content-Disposition"))
		}
	}
}
