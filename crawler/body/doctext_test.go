package body

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

const testToken = "zqtokenx7k"

func TestDocumentTextFindsTheToken(t *testing.T) {
	words := []string{"quarterly", "budget", "review"}
	for _, tc := range []struct {
		format, contentType, filename string
		want                          Format
	}{
		{simulator.DocPDF, "application/pdf", "a.pdf", FormatPDF},
		{simulator.DocDOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "a.docx", FormatDOCX},
		{simulator.DocXLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "a.xlsx", FormatXLSX},
		{simulator.DocPPTX, "application/vnd.openxmlformats-officedocument.presentationml.presentation", "a.pptx", FormatPPTX},
		{simulator.DocODT, "application/vnd.oasis.opendocument.text", "a.odt", FormatODF},
		{simulator.DocODS, "application/vnd.oasis.opendocument.spreadsheet", "a.ods", FormatODF},
		{simulator.DocODP, "application/vnd.oasis.opendocument.presentation", "a.odp", FormatODF},
		{simulator.DocRTF, "application/rtf", "a.rtf", FormatRTF},
		{simulator.DocHTML, "text/html", "a.html", FormatHTML},
		{simulator.DocCSV, "text/csv", "a.csv", FormatText},
		{simulator.DocTXT, "text/plain", "a.txt", FormatText},
		{simulator.DocEML, "message/rfc822", "a.eml", FormatMessage},
		// A generic type: the bytes decide.
		{simulator.DocDOCX, "application/octet-stream", "", FormatDOCX},
		{simulator.DocPDF, "application/octet-stream", "scan", FormatPDF},
	} {
		t.Run(tc.format+"/"+tc.contentType, func(t *testing.T) {
			data := simulator.SampleDocument(tc.format, testToken, words...)
			got, err := DocumentText(context.Background(), tc.contentType, tc.filename, data, TextLimits{})
			if err != nil {
				t.Fatalf("DocumentText: %v", err)
			}
			if got.Format != tc.want {
				t.Errorf("format %q, want %q", got.Format, tc.want)
			}
			for _, w := range append(words, testToken) {
				if !containsTerm(got.Text, w) {
					t.Errorf("text %q lacks the word %q", got.Text, w)
				}
			}
		})
	}
}

// containsTerm tells whether w is one of the words of text as a search analyzer splits it: on
// everything that is not a letter or a digit (the commas of a CSV too).
func containsTerm(text, w string) bool {
	notWord := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	for _, f := range strings.FieldsFunc(text, notWord) {
		if f == w {
			return true
		}
	}
	return false
}

func containsWord(text, w string) bool {
	for _, f := range strings.Fields(text) {
		if f == w {
			return true
		}
	}
	return false
}

func TestDocumentTextOtherFormats(t *testing.T) {
	eml := "Subject: inner subject\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody word " + testToken + "\r\n--b\r\n" +
		"Content-Type: application/rtf\r\nContent-Disposition: attachment; filename=n.rtf\r\n\r\n{\\rtf1 nested rtfword}\r\n--b--\r\n"
	for _, tc := range []struct {
		name, contentType, filename, data string
		want                              Format
		words                             []string
	}{
		{"rtf", "application/rtf", "a.rtf", `{\rtf1\ansi{\fonttbl{\f0 Times;}}{\*\generator x;}\f0 Caf\'e9 ` + testToken + `\par na\u239?ve}`, FormatRTF, []string{"Café", testToken, "naïve"}},
		{"html", "text/html", "a.html", "<p>hello <b>" + testToken + "</b></p>", FormatHTML, []string{testToken}},
		{"csv", "text/csv", "a.csv", "a,b\r\n1," + testToken + "\r\n", FormatText, []string{"1," + testToken}},
		{"csv as excel", "application/vnd.ms-excel", "a.csv", "a,b\r\n1," + testToken + "\r\n", FormatText, []string{"1," + testToken}},
		{"message", "message/rfc822", "", eml, FormatMessage, []string{"inner", testToken, "rtfword"}},
		{"zip", "application/zip", "a.zip", string(zipOf(t, map[string]string{"report-" + testToken + ".txt": "x"})), FormatZIP, []string{"report-" + testToken + ".txt"}},
		{"image", "image/png", "a.png", "\x89PNG", FormatNone, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DocumentText(context.Background(), tc.contentType, tc.filename, []byte(tc.data), TextLimits{})
			if err != nil {
				t.Fatalf("DocumentText: %v", err)
			}
			if got.Format != tc.want {
				t.Errorf("format %q, want %q", got.Format, tc.want)
			}
			for _, w := range tc.words {
				if !containsWord(got.Text, w) {
					t.Errorf("text %q lacks %q", got.Text, w)
				}
			}
		})
	}
}

func zipOf(t testing.TB, files map[string]string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func failure(t *testing.T, err error) FailureKind {
	t.Helper()
	var te *TextError
	if !errors.As(err, &te) {
		t.Fatalf("error %v, want a *TextError", err)
	}
	return te.Kind
}

func TestDocumentTextBrokenFilesFailTyped(t *testing.T) {
	docx := simulator.SampleDocument(simulator.DocDOCX, testToken)
	pdf := simulator.SampleDocument(simulator.DocPDF, testToken)
	corrupt := bytes.Replace(pdf, []byte("stream\n\x78"), []byte("stream\n\x00"), 1)
	for _, tc := range []struct {
		name, ct string
		data     []byte
		want     FailureKind
	}{
		{"truncated docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx[:len(docx)/2], FailCorrupt},
		{"truncated pdf", "application/pdf", pdf[:len(pdf)/3], FailCorrupt},
		{"corrupt pdf stream", "application/pdf", corrupt, FailCorrupt},
		{"not a pdf", "application/pdf", []byte("hello"), FailCorrupt},
		{"encrypted pdf", "application/pdf", []byte("%PDF-1.4\ntrailer << /Encrypt 5 0 R >>"), FailEncrypted},
		{"zip without document", "application/vnd.oasis.opendocument.text", zipOf(t, map[string]string{"a": "b"}), FailCorrupt},
		{"rtf too deep", "application/rtf", []byte(`{\rtf1` + strings.Repeat("{", 5000)), FailLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DocumentText(context.Background(), tc.ct, "", tc.data, TextLimits{})
			if got := failure(t, err); got != tc.want {
				t.Errorf("kind %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}

func TestDocumentTextCharsCap(t *testing.T) {
	words := strings.Fields(strings.Repeat("alpha beta gamma ", 200))
	for _, f := range []string{simulator.DocPDF, simulator.DocDOCX, simulator.DocXLSX, simulator.DocPPTX, simulator.DocODT} {
		got, err := DocumentText(context.Background(), "", "x."+f, simulator.SampleDocument(f, testToken, words...), TextLimits{MaxChars: 100})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if n := len([]rune(got.Text)); n > 100 || !got.Truncated {
			t.Errorf("%s: %d characters, truncated %t; want at most 100, truncated", f, n, got.Truncated)
		}
	}
}

// zipBomb is a ZIP whose word/document.xml inflates to size bytes of one repeated tag.
func zipBomb(t testing.TB, size int) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("word/document.xml")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("<w:document><w:body>"))
	chunk := bytes.Repeat([]byte("<w:p/>"), 1<<14)
	for n := 0; n < size; n += len(chunk) {
		w.Write(chunk)
	}
	zw.Close()
	return b.Bytes()
}

func TestDocumentTextZipBombStopsAtTheInflateCap(t *testing.T) {
	bomb := zipBomb(t, 64<<20) // 64 MiB inflated from about 100 KB
	// The heap's growth is garbage and what is held; garbage is collected at a pace set by the
	// live heap, which idle PDFium instances of earlier tests enlarge. A low GOGC keeps the
	// garbage small whatever ran before, so that what is held shows.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := DocumentText(context.Background(), "", "bomb.docx", bomb, TextLimits{MaxInflated: 2 << 20})
	runtime.ReadMemStats(&after)
	if got := failure(t, err); got != FailLimit {
		t.Errorf("kind %q, want %q (%v)", got, FailLimit, err)
	}
	// Streaming: the inflated bytes are never held, so the heap grows by far less than them.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Errorf("heap grew by %d bytes", grew)
	}
	t.Logf("zip bomb of %d bytes: heap %d -> %d bytes", len(bomb), before.HeapAlloc, after.HeapAlloc)
}

func TestDocumentTextTooManyMembers(t *testing.T) {
	files := map[string]string{}
	for i := range 50 {
		files[fmt.Sprintf("f%d", i)] = ""
	}
	_, err := DocumentText(context.Background(), "application/zip", "", zipOf(t, files), TextLimits{MaxEntries: 10})
	if got := failure(t, err); got != FailLimit {
		t.Errorf("kind %q, want %q", got, FailLimit)
	}
}

// hugePDF has one Flate stream that inflates to size bytes.
func hugePDF(size int) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	line := bytes.Repeat([]byte("(x) Tj "), 1<<12)
	for n := 0; n < size; n += len(line) {
		zw.Write(line)
	}
	zw.Close()
	return []byte(fmt.Sprintf("%%PDF-1.4\n4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream\nendobj\n%%%%EOF\n", z.Len(), z.Bytes()))
}

// The fallback reader holds one stream of at most maxPDFStream. It reads this file, which PDFium
// cannot open (no page tree); PDFium's own memory is bounded by its instance's cap
// (TestPDFiumMemoryCapIsALimit), so the fallback is measured alone here.
func TestDocumentTextHugePDFStream(t *testing.T) {
	pdf := hugePDF(64 << 20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := newTextBuf(context.Background(), 10<<20)
	err := scanReader{}.readText(w, pdf, &TextLimits{MaxInflated: DefaultMaxInflated})
	var got DocText
	got.Text, _ = w.result()
	runtime.ReadMemStats(&after)
	// One stream is read up to maxPDFStream: its text is kept, the rest of it is not read.
	if err != nil {
		t.Fatalf("fallback reader: %v", err)
	}
	if d, err := DocumentText(context.Background(), "application/pdf", "", pdf, TextLimits{MaxChars: 10 << 20}); err != nil || d.Text != got.Text {
		t.Errorf("DocumentText: %d bytes of text, error %v; want the fallback's %d bytes", len(d.Text), err, len(got.Text))
	}
	if n := len(got.Text); n == 0 || n > maxPDFStream {
		t.Errorf("%d bytes of text, want some and at most %d", n, maxPDFStream)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("pdf of %d bytes inflating to 64 MiB: total alloc %d bytes, text %d bytes", len(pdf), alloc, len(got.Text))
	if alloc > 64<<20 {
		t.Errorf("allocated %d bytes for one stream capped at %d", alloc, maxPDFStream)
	}
}

func TestDocumentTextManyPDFStreamsStopAtTheInflateCap(t *testing.T) {
	one := hugePDF(4 << 20)
	body := bytes.TrimSuffix(bytes.TrimPrefix(one, []byte("%PDF-1.4\n")), []byte("%%EOF\n"))
	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat(body, 10)...)
	_, err := DocumentText(context.Background(), "application/pdf", "", pdf, TextLimits{MaxInflated: 16 << 20, MaxChars: 100 << 20})
	if got := failure(t, err); got != FailLimit {
		t.Errorf("kind %q, want %q (%v)", got, FailLimit, err)
	}
}

func TestDocumentTextDeepMessages(t *testing.T) {
	msg := "Subject: level0\r\n\r\ninnermost " + testToken + "\r\n"
	for i := 1; i <= 10; i++ {
		msg = fmt.Sprintf("Subject: level%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\nContent-Type: text/plain\r\n\r\nbody%d\r\n--b%d\r\nContent-Type: message/rfc822\r\n\r\n%s\r\n--b%d--\r\n", i, i, i, i, i, msg, i)
	}
	got, err := DocumentText(context.Background(), "message/rfc822", "", []byte(msg), TextLimits{MaxNesting: 3})
	if err != nil {
		t.Fatalf("DocumentText: %v", err)
	}
	if !strings.Contains(got.Text, "body10") || !strings.Contains(got.Text, "body8") {
		t.Errorf("text %q lacks the first levels", got.Text)
	}
	if strings.Contains(got.Text, "body7") || strings.Contains(got.Text, testToken) {
		t.Errorf("text %q goes deeper than 3 levels", got.Text)
	}
}

func TestDocumentTextHonoursTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := DocumentText(ctx, "", "a.docx", simulator.SampleDocument(simulator.DocDOCX, testToken), TextLimits{})
	if got := failure(t, err); got != FailTimeout {
		t.Errorf("kind %q, want %q (%v)", got, FailTimeout, err)
	}
}

func TestRunSplitterKeepsXMLTokensSmall(t *testing.T) {
	text := strings.Repeat("a", 3*maxXMLRun+10)
	doc := zipOf(t, map[string]string{"word/document.xml": "<w:document><w:body><w:p><w:t>" + text + " " + testToken + "</w:t></w:p></w:body></w:document>"})
	got, err := DocumentText(context.Background(), "", "a.docx", doc, TextLimits{})
	if err != nil {
		t.Fatalf("DocumentText: %v", err)
	}
	// The text arrives in pieces, but all of it, in order.
	if want := text + " " + testToken; got.Text != want {
		t.Errorf("text of %d bytes, want %d ending in the token", len(got.Text), len(want))
	}
}

func TestPDFSkipsGlyphIDsOfCompositeFonts(t *testing.T) {
	pdf := []byte("%PDF-1.4\n4 0 obj\n<< /Length 60 >>\nstream\nBT /F1 12 Tf (plain " + testToken + ") Tj <002B00480051> Tj ET\nendstream\nendobj\n%%EOF\n")
	got, err := DocumentText(context.Background(), "application/pdf", "", pdf, TextLimits{})
	if err != nil {
		t.Fatalf("DocumentText: %v", err)
	}
	if got.Text != "plain "+testToken {
		t.Errorf("text %q, want the simple font's string only", got.Text)
	}
}

func TestPDFReadsCompositeFontsThroughToUnicode(t *testing.T) {
	cmap := "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n2 beginbfchar\n<0003> <0068>\n<0004> <0069>\nendbfchar\n" +
		"1 beginbfrange\n<0005> <0006> <00E9>\nendbfrange\n1 beginbfrange\n<0010> <0011> [<0041> <0042>]\nendbfrange\nendcmap\n"
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(cmap))
	zw.Close()
	content := "BT /F2 12 Tf <00030004> Tj [<0005> -500 <0003>] TJ /F1 12 Tf (plain) Tj /F2 12 Tf <00100011> Tj ET"
	pdf := "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n" +
		"3 0 obj\n<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 7 0 R /F2 5 0 R >> >> /Contents [4 0 R] >>\nendobj\n" +
		fmt.Sprintf("4 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n", len(content), content) +
		"5 0 obj\n<< /Type /Font /Subtype /Type0 /BaseFont /X /Encoding /Identity-H /ToUnicode 6 0 R >>\nendobj\n" +
		fmt.Sprintf("6 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream\nendobj\n", z.Len(), z.Bytes()) +
		"7 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n%%EOF\n"
	got, err := DocumentText(context.Background(), "application/pdf", "", []byte(pdf), TextLimits{})
	if err != nil {
		t.Fatalf("DocumentText: %v", err)
	}
	if want := "hié hplainAB"; got.Text != want {
		t.Errorf("text %q, want %q", got.Text, want)
	}
}

func TestParseCMapRangesAtTheTopOfTheCodeSpace(t *testing.T) {
	// A range ending at the largest code must not wrap around and run forever.
	cm := parseCMap([]byte("1 beginbfrange <FFFFFFFE> <FFFFFFFF> <0041> endbfrange 1 beginbfrange <FFFFFFFE> <FFFFFFFF> [<42> <43>] endbfrange"))
	if cm == nil || len(cm.m) != 2 {
		t.Fatalf("map %+v, want two codes", cm)
	}
}
