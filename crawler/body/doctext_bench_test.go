package body

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// benchWords is about 100 KB of text: a long report rather than a one-liner, so the numbers
// say how fast text comes out of each format, not how fast a file is opened.
func benchWords() []string {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := strings.Fields("budget review quarter revenue forecast meeting project delivery contract invoice customer supplier report analysis summary")
	words := make([]string, 14000)
	for i := range words {
		words[i] = vocab[r.IntN(len(vocab))]
	}
	return words
}

// BenchmarkDocumentText measures extraction throughput per format; MB/s is of the file's
// bytes, as downloaded.
func BenchmarkDocumentText(b *testing.B) {
	words := benchWords()
	text := strings.Join(words, " ")
	var rtf strings.Builder
	rtf.WriteString(`{\rtf1\ansi{\fonttbl{\f0 Times;}}\f0 `)
	for i, w := range words {
		rtf.WriteString(w)
		if i%12 == 11 {
			rtf.WriteString("\\par\n")
		} else {
			rtf.WriteByte(' ')
		}
	}
	rtf.WriteString("}")
	html := "<html><body><p>" + strings.ReplaceAll(text, "review", "<b>review</b></p><p>") + "</p></body></html>"
	msg := "Subject: forwarded\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
		text + "\r\n--b\r\nContent-Type: application/rtf\r\n\r\n" + rtf.String() + "\r\n--b--\r\n"
	cases := []struct {
		name, ct string
		data     []byte
	}{
		{"pdf", "application/pdf", simulator.SampleDocument(simulator.DocPDF, "token", words...)},
		{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", simulator.SampleDocument(simulator.DocDOCX, "token", words...)},
		{"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", simulator.SampleDocument(simulator.DocXLSX, "token", words...)},
		{"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", simulator.SampleDocument(simulator.DocPPTX, "token", words...)},
		{"odt", "application/vnd.oasis.opendocument.text", simulator.SampleDocument(simulator.DocODT, "token", words...)},
		{"rtf", "application/rtf", []byte(rtf.String())},
		{"html", "text/html", []byte(html)},
		{"txt", "text/plain", []byte(text)},
		{"message", "message/rfc822", []byte(msg)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			var textBytes int64
			for b.Loop() {
				d, err := DocumentText(context.Background(), c.ct, "", c.data, TextLimits{})
				if err != nil || !strings.Contains(d.Text, "budget") {
					b.Fatalf("%s: %v, %d bytes of text", c.name, err, len(d.Text))
				}
				textBytes += int64(len(d.Text))
			}
			// Files compress their text very differently: MB/s of text out compares formats.
			b.ReportMetric(float64(textBytes)/b.Elapsed().Seconds()/1e6, "text-MB/s")
		})
	}
}
