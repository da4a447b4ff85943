package body

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAttachmentText(t *testing.T) {
	cases := []struct {
		name, contentType, filename string
		data                        string
		max                         int
		want                        string
		ok                          bool
	}{
		{name: "plain UTF-8", contentType: "text/plain; charset=utf-8", data: "Grüße\r\nzweite Zeile\r\n", want: "Grüße\nzweite Zeile", ok: true},
		{name: "CSV in Latin-1", contentType: "text/csv; charset=iso-8859-1", filename: "a.csv", data: "name;city\nJ\xfcrgen;K\xf6ln\n", want: "name;city\nJürgen;Köln", ok: true},
		{name: "JSON", contentType: "application/json", data: `{"k": "v"}`, want: `{"k": "v"}`, ok: true},
		{name: "XML", contentType: "application/xml", data: `<a>b</a>`, want: `<a>b</a>`, ok: true},
		{name: "vendor JSON", contentType: "application/vnd.api+json", data: `{}`, want: `{}`, ok: true},
		{name: "HTML", contentType: "text/html; charset=utf-8", data: "<p>Hello&nbsp;<b>world</b></p><script>x()</script>", want: "Hello world", ok: true},
		{name: "octet-stream named .csv", contentType: "application/octet-stream", filename: "Export.CSV", data: "a,b\n1,2\n", want: "a,b\n1,2", ok: true},
		{name: "no type, .txt", filename: "readme.txt", data: "read me", want: "read me", ok: true},
		{name: "no type, .htm", filename: "page.htm", data: "<h1>Page</h1>", want: "Page", ok: true},
		{name: "missing charset, Latin-1 bytes", contentType: "text/plain", data: "caf\xe9", want: "café", ok: true},
		{name: "UTF-8 BOM stripped", contentType: "text/plain", data: "\xef\xbb\xbfwith BOM", want: "with BOM", ok: true},
		{name: "UTF-16LE with BOM", contentType: "text/csv", filename: "x.csv", data: "\xff\xfea\x00;\x00\xfc\x00", want: "a;ü", ok: true},
		{name: "declared UTF-16 without BOM", contentType: "text/plain; charset=utf-16le", data: "h\x00i\x00", want: "hi", ok: true},
		{name: "Shift_JIS", contentType: "text/plain; charset=shift_jis", data: "\x93\xfa\x96{\x8c\xea", want: "日本語", ok: true},
		{name: "unknown charset falls back", contentType: "text/plain; charset=x-bogus", data: "abc", want: "abc", ok: true},
		{name: "malformed content type", contentType: "text/plain; charset", data: "still text", want: "still text", ok: true},
		{name: "cap on a character boundary", contentType: "text/plain; charset=utf-8", data: "äöüß", max: 5, want: "äö", ok: true},
		{name: "PDF", contentType: "application/pdf", filename: "a.pdf", data: "%PDF-1.4", ok: false},
		{name: "image", contentType: "image/png", data: "\x89PNG", ok: false},
		{name: "SVG is an image", contentType: "image/svg+xml", data: "<svg/>", ok: false},
		{name: "RTF", contentType: "text/rtf", data: `{\rtf1 x}`, ok: false},
		{name: "octet-stream named .exe", contentType: "application/octet-stream", filename: "setup.exe", data: "MZ", ok: false},
		{name: "text type with NUL bytes", contentType: "text/plain", data: "abc\x00\x01\x02", ok: false},
		{name: "Word document", contentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", filename: "a.docx", data: "PK", ok: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := AttachmentText(tc.contentType, tc.filename, []byte(tc.data), tc.max)
			if ok != tc.ok || got != tc.want {
				t.Errorf("AttachmentText = %q, %t, want %q, %t", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestAttachmentTextLargeInputIsCapped(t *testing.T) {
	data := []byte(strings.Repeat("€uro ", 1<<20)) // 7 MiB
	for _, ct := range []string{"text/plain; charset=utf-8", "text/html; charset=utf-8"} {
		got, ok := AttachmentText(ct, "", data, 1000)
		if !ok || len(got) > 1000 || len(got) < 1000-utf8.UTFMax || !utf8.ValidString(got) {
			t.Errorf("%s: %d bytes, ok %t, valid %t", ct, len(got), ok, utf8.ValidString(got))
		}
	}
}
