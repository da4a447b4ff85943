package body

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// typicalMessage is about 5 KB: a multipart/alternative body with quoted-
// printable text and HTML, plus a small base64 attachment.
func typicalMessage() string {
	var b strings.Builder
	b.WriteString(crlf(`From: "Anna Schmidt" <anna@example.com>
To: "Bob Meier" <bob@example.com>, carol@example.com
Subject: =?UTF-8?Q?Besprechung_=C3=BCber_das_Budget?=
Date: Tue, 4 Mar 2025 09:15:00 +0100
Message-ID: <typical-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

`))
	for i := range 12 {
		fmt.Fprintf(&b, "Absatz %d: Die Zahlen f=C3=BCr das n=C3=A4chste Quartal sind gepr=C3=BCft, bitte =\r\nbis Freitag R=C3=BCckmeldung geben.\r\n\r\n", i)
	}
	b.WriteString(crlf(`--alt
Content-Type: text/html; charset=utf-8

<html><head><style>p{margin:0}</style></head><body>
`))
	for i := range 12 {
		fmt.Fprintf(&b, "<p>Absatz %d: Die Zahlen f&uuml;r das n&auml;chste Quartal sind <b>gepr&uuml;ft</b>.</p>\r\n", i)
	}
	b.WriteString(crlf(`</body></html>
--alt--
--mixed
Content-Type: application/pdf; name="budget.pdf"
Content-Disposition: attachment; filename="budget.pdf"
Content-Transfer-Encoding: base64

`))
	writeBase64(&b, randomBytes(1200, 1))
	b.WriteString("--mixed--\r\n")
	return b.String()
}

// largeMessage has a short text body and one base64 attachment of size
// bytes.
func largeMessage(size int) string {
	var b strings.Builder
	b.WriteString(crlf(`From: anna@example.com
To: bob@example.com
Subject: Large data
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: text/plain; charset=utf-8

Please find the data attached.
--mixed
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="data.bin"
Content-Transfer-Encoding: base64

`))
	writeBase64(&b, randomBytes(size, 2))
	b.WriteString("--mixed--\r\n")
	return b.String()
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

// writeBase64 writes data in 76-character lines, as mailers do.
func writeBase64(b *strings.Builder, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
}

func benchmarkExtract(b *testing.B, msg string, opts Options) {
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		t, err := Extract(strings.NewReader(msg), opts)
		if err != nil || t.Text == "" {
			b.Fatalf("Extract: %v, text %q", err, t.Text)
		}
		if opts.KeepAttachments > 0 && !t.Parts[0].Kept() {
			b.Fatal("attachment not kept")
		}
	}
}

func BenchmarkExtractTypical(b *testing.B) {
	benchmarkExtract(b, typicalMessage(), Options{})
}

func BenchmarkExtractLarge(b *testing.B) {
	benchmarkExtract(b, largeMessage(1536<<10), Options{}) // about 2 MB encoded
}

// The crawler keeps the attachments of up to 2 MB that it takes from the message.
func BenchmarkExtractTypicalKeep(b *testing.B) {
	benchmarkExtract(b, typicalMessage(), Options{KeepAttachments: 2 << 20})
}

func BenchmarkExtractMediumKeep(b *testing.B) {
	benchmarkExtract(b, largeMessage(100<<10), Options{KeepAttachments: 2 << 20})
}

func BenchmarkHTMLToText(b *testing.B) {
	var sb strings.Builder
	for i := range 200 {
		fmt.Fprintf(&sb, "<div class=\"row\"><p>Item %d &amp; more&nbsp;text</p><table><tr><td>a</td><td>b</td></tr></table></div>\n", i)
	}
	html := sb.String()
	b.SetBytes(int64(len(html)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HTMLToText(strings.NewReader(html)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchmarkMessagesHaveIntendedSize(t *testing.T) {
	if n := len(typicalMessage()); n < 4000 || n > 7000 {
		t.Errorf("typical message has %d bytes, want about 5 KB", n)
	}
	if n := len(largeMessage(1536 << 10)); n < 1900<<10 || n > 2300<<10 {
		t.Errorf("large message has %d bytes, want about 2 MB", n)
	}
}
