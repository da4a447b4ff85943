package body

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// crlf turns the LF line ends of a test message into the CRLF of the wire.
func crlf(s string) string {
	return strings.ReplaceAll(s, "\n", "\r\n")
}

const msgAlternative = `From: "Anna Schmidt" <anna@example.com>
To: bob@example.com
Subject: Quarterly numbers
Message-ID: <alt-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-boundary"

This is a multi-part message in MIME format.

--alt-boundary
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello Bob,

the numbers are attached.

--alt-boundary
Content-Type: text/html; charset=utf-8

<html><body><p>Hello <b>Bob</b>,</p><p>the HTML numbers.</p></body></html>
--alt-boundary--
`

const msgHTMLOnly = `From: news@example.com
Subject: Newsletter
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<html><head><title>Ignored title</title><style>p {color: red;}</style>
<script type=3D"text/javascript">var secret =3D "do not index";</script></head>
<body><h1>Caf&eacute; &amp; Bar</h1><p>Line&nbsp;one<br>Line   two</p>
<ul><li>first</li><li>second</li></ul>
<table><tr><td>cell A</td><td>cell B</td></tr></table></body></html>
`

const msgNested = `From: carol@example.com
To: dave@example.com
Subject: Report and photos
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=us-ascii

See the attached report.
--inner
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=us-ascii

<p>See the attached <img src="cid:logo@x">report.</p>
--rel
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <logo@x>

iVBORw0KGgo=
--rel--
--inner--
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="=?UTF-8?B?UHLDvGZiZXJpY2h0IGbDvHIgSsO8cmdlbg==?=.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcOkw7zDtsOfCg==
--outer
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment; filename="notes.txt"

These notes are an attachment, not the body.
--outer
Content-Type: message/rfc822
Content-Disposition: attachment

Subject: forwarded
From: eve@example.com

Forwarded text.
--outer--
`

func TestExtract(t *testing.T) {
	cases := []struct {
		name      string
		msg       string
		opts      Options
		text      string // exact Text, unless contains is set
		contains  []string
		absent    []string
		fromHTML  bool
		subject   string
		parts     []Part
		truncated bool
		defect    string // a substring expected in one of Defects
	}{
		{
			name:    "multipart/alternative prefers plain text",
			msg:     crlf(msgAlternative),
			text:    "Hello Bob,\n\nthe numbers are attached.",
			subject: "Quarterly numbers",
		},
		{
			name:     "HTML only drops script, style and title",
			msg:      crlf(msgHTMLOnly),
			text:     "Café & Bar\n\nLine one\nLine two\n\nfirst\nsecond\ncell A cell B",
			fromHTML: true,
			subject:  "Newsletter",
		},
		{
			name:    "nested multipart/mixed with attachments",
			msg:     crlf(msgNested),
			text:    "See the attached report.",
			subject: "Report and photos",
			parts: []Part{
				{ContentType: "image/png", Size: 8, Inline: true},
				{Filename: "Prüfbericht für Jürgen.pdf", ContentType: "application/pdf", Size: 19},
				{Filename: "notes.txt", ContentType: "text/plain", Size: 44},
				{ContentType: "message/rfc822", Size: int64(len(crlf("Subject: forwarded\nFrom: eve@example.com\n\nForwarded text.")))},
			},
		},
		{
			name: "quoted-printable UTF-8 German",
			msg: crlf(`Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe aus M=C3=BCnchen, die Stra=C3=9Fe ist sch=C3=B6n und die =
Fu=C3=9Fg=C3=A4nger freuen sich.
`),
			text:    "Grüße aus München, die Straße ist schön und die Fußgänger freuen sich.",
			subject: "Grüße",
		},
		{
			name: "base64 UTF-8 Japanese",
			msg: crlf(`Subject: =?UTF-8?B?5Lya6K2w?=
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: base64

44GT44KT44Gr44Gh44Gv44CB5LiW55WM44CC
5Lya6K2w44Gv5piO5pel44Gn44GZ44CC
`),
			text:    "こんにちは、世界。会議は明日です。",
			subject: "会議",
		},
		{
			name: "ISO-8859-1 body",
			msg: crlf("Subject: Sommer\nContent-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: 8bit\n\n" +
				"Un \xe9t\xe9 \xe0 Z\xfcrich, \xa9 2024\n"),
			text: "Un été à Zürich, © 2024",
		},
		{
			name: "windows-1252 quoted-printable",
			msg: crlf(`Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

=93Price=94 is =8010 =96 final
`),
			text: "“Price” is €10 – final",
		},
		{
			name: "Shift_JIS body",
			msg: crlf("Content-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: 8bit\n\n" +
				"\x93\xfa\x96{\x8c\xea\x82\xcc\x83e\x83L\x83X\x83g\n"),
			text: "日本語のテキスト",
		},
		{
			name: "missing charset with UTF-8 bytes",
			msg:  crlf("Subject: x\nContent-Type: text/plain\n\nGrüße aus München\n"),
			text: "Grüße aus München",
		},
		{
			name: "missing charset with Latin-1 bytes",
			msg:  crlf("Subject: x\nContent-Type: text/plain\n\nGr\xfc\xdfe aus M\xfcnchen\n"),
			text: "Grüße aus München",
		},
		{
			name: "us-ascii label on 8-bit text",
			msg:  crlf("Subject: x\nContent-Type: text/plain; charset=us-ascii\n\nna\xefve caf\xe9\n"),
			text: "naïve café",
		},
		{
			name: "no Content-Type at all",
			msg:  crlf("Subject: plain\n\nJust text.\n"),
			text: "Just text.",
		},
		{
			name:   "unknown charset keeps readable bytes",
			msg:    crlf("Subject: x\nContent-Type: text/plain; charset=x-no-such-charset\n\nplain words\n"),
			text:   "plain words",
			defect: "unknown charset",
		},
		{
			name:   "unknown charset with 8-bit bytes falls back to windows-1252",
			msg:    crlf("Subject: x\nContent-Type: text/plain; charset=x-no-such-charset\n\nna\xefve\n"),
			text:   "naïve",
			defect: "unknown charset",
		},
		{
			name: "HTML without MIME charset is sniffed from meta",
			msg: crlf("Subject: x\nContent-Type: text/html\n\n" +
				`<html><head><meta charset="iso-8859-1"></head><body><p>K` + "\xf6" + `ln</p></body></html>` + "\n"),
			text:     "Köln",
			fromHTML: true,
		},
		{
			name: "blank plain part falls back to HTML",
			msg: crlf(`Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain

   
--b
Content-Type: text/html

<div>Only here</div>
--b--
`),
			text:     "Only here",
			fromHTML: true,
		},
		{
			name: "boundary that matches nothing",
			msg: crlf(`Subject: broken
Content-Type: multipart/mixed; boundary="declared"

--actual
Content-Type: text/plain

words that must stay searchable
--actual--
`),
			contains: []string{"words that must stay searchable"},
			subject:  "broken",
			defect:   "without readable parts",
		},
		{
			name: "multipart without boundary parameter",
			msg: crlf(`Content-Type: multipart/mixed

still some text
`),
			contains: []string{"still some text"},
			defect:   "without readable parts",
		},
		{
			name: "unparseable upper-case multipart type",
			msg: crlf(`Content-Type: MULTIPART/mixed; boundary="unterminated

text behind a broken header
`),
			contains: []string{"text behind a broken header"},
			defect:   "invalid Content-Type",
		},
		{
			name: "unterminated last part keeps what was read",
			msg: crlf(`Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

first part text
--b
Content-Type: text/plain

second part without closing boundary
`),
			contains: []string{"first part text"},
		},
		{
			name: "corrupt base64 keeps what decoded",
			msg: crlf(`Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

SGVsbG8gd29ybGQ=
!!!not base64!!!
`),
			contains: []string{"Hello world"},
			defect:   "read failed",
		},
		{
			name: "mbox From line and malformed header lines",
			msg: crlf(`From someone@example.com Mon Jan  1 00:00:00 2024
Subject: survives
this line is not a header
X-Ok: yes

body text
`),
			text:    "body text",
			subject: "survives",
			defect:  "1 malformed header lines dropped",
		},
		{
			name: "no header at all",
			msg:  "just a note\nwith two lines\n",
			text: "just a note\nwith two lines",
		},
		{
			name:      "cap cuts on a character boundary",
			msg:       crlf("Content-Type: text/plain; charset=utf-8\n\näöüäöüäöü\n"),
			opts:      Options{MaxTextBytes: 7},
			text:      "äöü",
			truncated: true,
		},
		{
			name: "cap spans several parts",
			msg: crlf(`Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

0123456789
--b
Content-Type: text/plain

abcdefghij
--b--
`),
			opts:      Options{MaxTextBytes: 15},
			text:      "0123456789\n\nabc",
			truncated: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Extract(strings.NewReader(tc.msg), tc.opts)
			if err != nil {
				t.Fatalf("Extract: %v (defects %q)", err, got.Defects)
			}
			if tc.contains == nil && got.Text != tc.text {
				t.Errorf("Text = %q, want %q", got.Text, tc.text)
			}
			for _, s := range tc.contains {
				if !strings.Contains(got.Text, s) {
					t.Errorf("Text %q lacks %q", got.Text, s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(got.Text, s) {
					t.Errorf("Text %q contains %q", got.Text, s)
				}
			}
			if got.FromHTML != tc.fromHTML {
				t.Errorf("FromHTML = %t, want %t", got.FromHTML, tc.fromHTML)
			}
			if tc.subject != "" && got.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", got.Subject, tc.subject)
			}
			for i := range got.Parts {
				// Digests and kept bytes have a test of their own.
				got.Parts[i].SHA256, got.Parts[i].Data = "", nil
			}
			if tc.parts != nil && !reflect.DeepEqual(got.Parts, tc.parts) {
				t.Errorf("Parts = %+v,\nwant %+v", got.Parts, tc.parts)
			}
			if tc.parts == nil && len(got.Parts) != 0 {
				t.Errorf("Parts = %+v, want none", got.Parts)
			}
			if got.Truncated != tc.truncated {
				t.Errorf("Truncated = %t, want %t", got.Truncated, tc.truncated)
			}
			if tc.defect != "" && !strings.Contains(strings.Join(got.Defects, "|"), tc.defect) {
				t.Errorf("Defects %q lack %q", got.Defects, tc.defect)
			}
			if tc.defect == "" && len(got.Defects) != 0 && tc.contains == nil {
				t.Errorf("unexpected Defects %q", got.Defects)
			}
			if !utf8.ValidString(got.Text) {
				t.Errorf("Text is not valid UTF-8: %q", got.Text)
			}
		})
	}
}

func TestExtractSubjects(t *testing.T) {
	cases := []struct {
		name, header, want string
	}{
		{"plain", "Hello there", "Hello there"},
		{"B encoding", "=?UTF-8?B?UHLDvGZiZXJpY2h0IGbDvHIgSsO8cmdlbg==?=", "Prüfbericht für Jürgen"},
		{"Q encoding Latin-1", "=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème"},
		{"emoji", "=?UTF-8?B?8J+OiSBQYXJ0eQ==?=", "🎉 Party"},
		{"adjacent encoded words join", "=?UTF-8?Q?Gr=C3=BC?= =?UTF-8?Q?=C3=9Fe?=", "Grüße"},
		{"mixed raw and encoded", "Re: =?UTF-8?Q?M=C3=BCnchen?= trip", "Re: München trip"},
		{"windows-1252 Q", "=?windows-1252?Q?=93quoted=94?=", "“quoted”"},
		{"lower-case charset and encoding", "=?utf-8?b?w6k=?=", "é"},
		{"folded header", "first part\n second part", "first part second part"},
		{"raw 8-bit UTF-8 (RFC 6532)", "Grüße", "Grüße"},
		{"raw 8-bit Latin-1", "Gr\xfc\xdfe", "Grüße"},
		{"unknown charset stays raw", "=?x-unknown?Q?abc?=", "=?x-unknown?Q?abc?="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := crlf("Subject: " + tc.header + "\nFrom: =?UTF-8?Q?J=C3=BCrgen?= <j@example.com>\n\nbody\n")
			got, err := Extract(strings.NewReader(msg), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != tc.want {
				t.Errorf("Subject = %q, want %q", got.Subject, tc.want)
			}
			if want := []string{tc.want}; !reflect.DeepEqual(got.Headers["Subject"], want) {
				t.Errorf("Headers[Subject] = %q, want %q", got.Headers["Subject"], want)
			}
			if want := []string{"Jürgen <j@example.com>"}; !reflect.DeepEqual(got.Headers["From"], want) {
				t.Errorf("Headers[From] = %q, want %q", got.Headers["From"], want)
			}
		})
	}
}

func TestExtractHeadersKeepOrderAndRepeats(t *testing.T) {
	// Repeats interleaved with other fields: every field's values stay its own.
	msg := crlf("Received: from a\nX-Custom: 1\nreceived: from b\nSubject: s\nReceived: from c\n\nbody\n")
	got, err := Extract(strings.NewReader(msg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"from a", "from b", "from c"}; !reflect.DeepEqual(got.Headers["Received"], want) {
		t.Errorf("Headers[Received] = %q, want %q", got.Headers["Received"], want)
	}
	if want := []string{"1"}; !reflect.DeepEqual(got.Headers["X-Custom"], want) {
		t.Errorf("Headers[X-Custom] = %q, want %q", got.Headers["X-Custom"], want)
	}
}

func TestExtractEmptyInput(t *testing.T) {
	got, err := Extract(strings.NewReader(""), Options{})
	if !errors.Is(err, ErrNoContent) {
		t.Fatalf("Extract(\"\") error = %v, want ErrNoContent", err)
	}
	if got == nil {
		t.Fatal("Extract returned a nil Text")
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestExtractReportsReadErrors(t *testing.T) {
	cause := errors.New("connection reset")
	msg := crlf("Subject: cut short\nContent-Type: text/plain\n\nfirst words ")
	got, err := Extract(&failingReader{data: msg, err: cause}, Options{})
	if !errors.Is(err, cause) {
		t.Fatalf("error = %v, want one wrapping %v", err, cause)
	}
	if got.Subject != "cut short" || !strings.Contains(got.Text, "first words") {
		t.Errorf("partial Text = %+v", got)
	}
}

func TestExtractDeepNestingIsBounded(t *testing.T) {
	var b strings.Builder
	const levels = 200
	for i := range levels {
		b.WriteString("Content-Type: multipart/mixed; boundary=b")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("\r\n\r\n--b")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
	got, err := Extract(strings.NewReader(b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(got.Defects, "|"), "nested deeper") {
		t.Errorf("Defects %q do not mention the nesting limit", got.Defects)
	}
}

func TestExtractTruncatesLongBody(t *testing.T) {
	line := strings.Repeat("Grüße ", 1000) + "\r\n"
	msg := "Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat(line, 100)
	got, err := Extract(strings.NewReader(msg), Options{MaxTextBytes: 4099})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Text) > 4099 || len(got.Text) < 4099-utf8.UTFMax || !got.Truncated || !utf8.ValidString(got.Text) {
		t.Errorf("Text has %d bytes, Truncated = %t, valid UTF-8 = %t", len(got.Text), got.Truncated, utf8.ValidString(got.Text))
	}
}

// Large attachments are streamed, not kept: reading one must not depend on
// the text cap.
func TestExtractCountsLargeAttachment(t *testing.T) {
	msg := largeMessage(1 << 20)
	got, err := Extract(strings.NewReader(msg), Options{MaxTextBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parts) != 1 || got.Parts[0].Size != 1<<20 || got.Parts[0].Filename != "data.bin" {
		t.Errorf("Parts = %+v", got.Parts)
	}
	if !strings.HasPrefix(got.Text, "Please find the data attached.") {
		t.Errorf("Text = %.60q", got.Text)
	}
}

func TestKeepAttachments(t *testing.T) {
	pdf := []byte("%PDF-1.4 fake but binary \x00\x01\x02 bytes")
	big := bytes.Repeat([]byte("0123456789"), 300)
	msg := "From: a@example.com\r\nSubject: kept\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(pdf) + "\r\n" +
		"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=big.txt\r\n\r\n" + string(big) + "\r\n" +
		"--b--\r\n"
	for _, tc := range []struct {
		name     string
		keep     int64
		wantData [2]bool
	}{
		{"none kept", 0, [2]bool{false, false}},
		{"small kept, big not", 1000, [2]bool{true, false}},
		{"both kept", 1 << 20, [2]bool{true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Extract(strings.NewReader(msg), Options{KeepAttachments: tc.keep})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Parts) != 2 {
				t.Fatalf("parts %+v", got.Parts)
			}
			for i, want := range [][]byte{pdf, big} {
				p := got.Parts[i]
				sum := sha256.Sum256(want)
				if p.SHA256 != hex.EncodeToString(sum[:]) || p.Size != int64(len(want)) {
					t.Errorf("part %d: sha256 %s size %d, want %x %d", i, p.SHA256, p.Size, sum, len(want))
				}
				if tc.wantData[i] != (p.Data != nil) || (p.Data != nil && !bytes.Equal(p.Data, want)) {
					t.Errorf("part %d: kept %d bytes, want kept=%v", i, len(p.Data), tc.wantData[i])
				}
			}
		})
	}
}
