package body

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

const fuzzMax = 4096

// FuzzExtract checks that no input makes Extract panic, and that whatever
// it returns honours the invariants: valid UTF-8 within the cap.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		crlf(msgAlternative), crlf(msgHTMLOnly), crlf(msgNested), typicalMessage(),
		"", "\r\n", "Subject: x\r\n\r\n", "no header",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n--a--",
		"Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n/////w==",
		"Subject: =?utf-8?b?/w==?=\r\n\r\nx",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Extract(bytes.NewReader(data), Options{MaxTextBytes: fuzzMax})
		if got == nil {
			t.Fatalf("nil Text (error %v)", err)
		}
		if !utf8.ValidString(got.Text) || len(got.Text) > fuzzMax {
			t.Fatalf("Text of %d bytes, valid UTF-8 %t", len(got.Text), utf8.ValidString(got.Text))
		}
		if !utf8.ValidString(got.Subject) {
			t.Fatalf("Subject not valid UTF-8: %q", got.Subject)
		}
		for k, vs := range got.Headers {
			for _, v := range vs {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					t.Fatalf("header %q: %q not valid UTF-8", k, v)
				}
			}
		}
		for _, p := range got.Parts {
			if !utf8.ValidString(p.Filename) || p.Size < 0 {
				t.Fatalf("bad part %+v", p)
			}
		}
		// The text extractors reached from Extract must also hold up on
		// their own.
		if s, _ := HTMLToText(bytes.NewReader(data)); !utf8.ValidString(s) {
			t.Fatalf("HTMLToText output not valid UTF-8")
		}
		if s, ok := AttachmentText("text/plain", "", data, 100); ok && (!utf8.ValidString(s) || len(s) > 100) {
			t.Fatalf("AttachmentText output %q", s)
		}
	})
}
