package body

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// validPDF writes a well-formed PDF (catalog, page tree, cross-reference table) with one page
// per string, drawn in Helvetica: a file PDFium opens, unlike the content-stream fragments the
// fallback reader's tests use.
func validPDF(pages ...string) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.4\n")
	n := len(pages)
	kids := make([]string, n)
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	for i, text := range pages {
		content := fmt.Sprintf("BT /F1 12 Tf 72 720 Td (%s) Tj ET", text)
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 5+2*i))
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

func TestPDFiumReadsAWellFormedFile(t *testing.T) {
	pdf := validPDF("first page "+testToken, "second page")
	var w = newTextBuf(context.Background(), 1000)
	if err := (pdfiumReader{engine: &sharedPDFium}).readText(w, pdf, &TextLimits{}); err != nil {
		t.Fatal(err)
	}
	got, _ := w.result()
	if !strings.Contains(got, "first page "+testToken) || !strings.Contains(got, "second page") {
		t.Errorf("text %q, want both pages", got)
	}
}

func TestPDFiumCannotOpenAFragmentTheFallbackReads(t *testing.T) {
	frag := []byte("%PDF-1.4\n4 0 obj\n<< /Length 30 >>\nstream\nBT (fragment " + testToken + ") Tj ET\nendstream\nendobj\n%%EOF\n")
	w := newTextBuf(context.Background(), 1000)
	if err := (pdfiumReader{engine: &sharedPDFium}).readText(w, frag, &TextLimits{}); err == nil {
		t.Fatalf("pdfium read a file without a page tree")
	}
	got, err := DocumentText(context.Background(), "application/pdf", "", frag, TextLimits{})
	if err != nil || !strings.Contains(got.Text, testToken) {
		t.Errorf("text %q, error %v: the fallback reader should read the fragment", got.Text, err)
	}
}

func TestPDFCharsCapStopsPDFium(t *testing.T) {
	pdf := validPDF(strings.Repeat("abc ", 50), strings.Repeat("def ", 50))
	got, err := DocumentText(context.Background(), "application/pdf", "", pdf, TextLimits{MaxChars: 20})
	if err != nil || !got.Truncated || len([]rune(got.Text)) > 20 {
		t.Errorf("text %q truncated %t, error %v; want at most 20 characters, truncated", got.Text, got.Truncated, err)
	}
}

// A context that ends while PDFium works kills its instance: the call returns, and the engine
// still serves the next file (the pool replaces the killed instance).
func TestPDFiumCancelledMidwayLeavesTheEngineWorking(t *testing.T) {
	pages := make([]string, 400)
	for i := range pages {
		pages[i] = fmt.Sprintf("page %d of many words", i)
	}
	big := validPDF(pages...)
	var wg sync.WaitGroup
	for range 4 {
		ctx, cancel := context.WithCancel(context.Background())
		wg.Go(func() {
			_, err := DocumentText(ctx, "application/pdf", "", big, TextLimits{})
			var te *TextError
			if err != nil && (!errors.As(err, &te) || te.Kind != FailTimeout) {
				t.Errorf("cancelled extraction failed with %v, want no error or %s", err, FailTimeout)
			}
		})
		cancel()
	}
	wg.Wait()
	got, err := DocumentText(context.Background(), "application/pdf", "", validPDF("after "+testToken), TextLimits{})
	if err != nil || !strings.Contains(got.Text, testToken) {
		t.Errorf("after cancellations: text %q, error %v", got.Text, err)
	}
}

// errAfter is a context whose Err reports it cancelled from its n-th call on: a deadline that
// passes at a known point of the reading, without a clock.
type errAfter struct {
	context.Context
	n     int
	calls int
}

func (c *errAfter) Err() error {
	if c.calls++; c.calls >= c.n {
		return context.Canceled
	}
	return nil
}

// A call into PDFium is not interrupted (pdfium.go says why), so the context is what ends a
// long file: it is checked between pages, the file stops there as a timeout, and its instance
// is discarded without harm to the next file.
func TestPDFiumDeadlineEndsAFileBetweenPages(t *testing.T) {
	pages := make([]string, 200) // fewer than the writes between textBuf's own checks
	for i := range pages {
		pages[i] = fmt.Sprintf("page%d of many words", i)
	}
	ctx := &errAfter{Context: context.Background(), n: 40}
	got, err := DocumentText(ctx, "application/pdf", "", validPDF(pages...), TextLimits{})
	if kind := failure(t, err); kind != FailTimeout {
		t.Fatalf("kind %q (%v), want %q", kind, err, FailTimeout)
	}
	if strings.Contains(got.Text, "page199") {
		t.Errorf("the last page was read after the context ended")
	}
	got, err = DocumentText(context.Background(), "application/pdf", "", validPDF("after "+testToken), TextLimits{})
	if err != nil || !strings.Contains(got.Text, testToken) {
		t.Errorf("after a file cut by its deadline: text %q, error %v", got.Text, err)
	}
}

func TestTextQualityGate(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       FailureKind
	}{
		{"words", "Contents of the report", ""},
		{"digits", "2024 1 2 3", ""},
		{"cjk", "報告書の内容", ""},
		{"empty", "", FailNoText},
		{"spaces and punctuation", " \n . , ;", FailNoText},
		{"private use", "\ue000\ue001\ue002 \ue003 a", FailUnmapped},
		{"replacement characters", "\ufffd\ufffd\ufffd ab", FailUnmapped},
		{"some symbols among words", "see \ue000 the table on page 3", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := textQuality(tc.text); got != tc.want {
				t.Errorf("textQuality(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

// Glyph codes without a Unicode map are reported, never indexed as junk.
func TestPDFUnmappedGlyphsAreReportedNotIndexed(t *testing.T) {
	frag := []byte("%PDF-1.4\n4 0 obj\n<< /Length 44 >>\nstream\nBT <FEFFE000E001E002E003E004> Tj ET\nendstream\nendobj\n%%EOF\n")
	got, err := DocumentText(context.Background(), "application/pdf", "", frag, TextLimits{})
	if kind := failure(t, err); kind != FailUnmapped || got.Text != "" {
		t.Errorf("kind %q text %q, want %q and no text", kind, got.Text, FailUnmapped)
	}
}

func TestDecodeUnitsJoinsSurrogatePairs(t *testing.T) {
	// U+1D44E MATHEMATICAL ITALIC SMALL A as a pair, then whole, then a lone half and a NUL.
	got := string(decodeUnits(nil, []rune{0xD835, 0xDC4E, '+', 0x1D44E, 0xDC4E, 0, 'b'}))
	if want := "\U0001D44E+\U0001D44Eb"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The backward search for a stream's dictionary starts after the previous stream (so repeated
// keywords cost linear time); a "stream" word inside a dictionary must not hide its "obj".
func TestPDFFallbackFindsDictionariesAfterFalseKeywords(t *testing.T) {
	frag := []byte("%PDF-1.4\n1 0 obj\n<< /Length 10 >>\nstream\nBT (one) Tj ET\nendstream\nendobj\n" +
		"4 0 obj\n<< /Title (a stream word) /Length 30 >>\nstream\nBT (fragment " + testToken + ") Tj ET\nendstream\nendobj\n%%EOF\n")
	w := newTextBuf(context.Background(), 1000)
	if err := pdfText(w, frag, &TextLimits{MaxInflated: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.result(); !strings.Contains(got, testToken) {
		t.Errorf("text %q lacks the second stream's token", got)
	}
}

// A page whose content inflates beyond an instance's memory fails as a limit: the instance
// is the one that runs out, not the process, and the fallback reader does not take over.
func TestPDFiumMemoryCapIsALimit(t *testing.T) {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	chunk := bytes.Repeat([]byte("BT /F1 12 Tf (x) Tj ET\n"), 1<<15)
	for n := 0; n < 192<<20; n += len(chunk) {
		zw.Write(chunk)
	}
	zw.Close()
	pdf := validPDF("first")
	// Swap the page's content stream for the compressed one.
	i := bytes.Index(pdf, []byte("5 0 obj"))
	j := bytes.Index(pdf, []byte("xref\n"))
	body := append([]byte{}, pdf[:i]...)
	off := len(body)
	body = append(body, fmt.Sprintf("5 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n", z.Len())...)
	body = append(body, z.Bytes()...)
	body = append(body, "\nendstream\nendobj\n"...)
	xref := len(body)
	rest := string(pdf[j:])
	rest = strings.Replace(rest, fmt.Sprintf("%010d 00000 n \n", i), fmt.Sprintf("%010d 00000 n \n", off), 1)
	rest = rest[:strings.Index(rest, "startxref")] + fmt.Sprintf("startxref\n%d\n%%%%EOF\n", xref)
	body = append(body, rest...)

	_, err := DocumentText(context.Background(), "application/pdf", "", body, TextLimits{})
	if kind := failure(t, err); kind != FailLimit {
		t.Errorf("kind %q (%v), want %q", kind, err, FailLimit)
	}
}

// formBomb writes a one-page PDF whose page draws a form that draws the next form fan times,
// depth levels down: fan^depth drawings of a few bytes of content.
func formBomb(depth, fan int) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.4\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj("<< /Type /Pages /Kids [4 0 R] /Count 1 >>")
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> /XObject << /X 6 0 R >> >> /Contents 5 0 R >>")
	page := "BT /F1 12 Tf 72 720 Td (hello) Tj ET /X Do"
	obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(page), page))
	for d := range depth {
		body := strings.Repeat("q 1 0 0 1 0.1 0 cm /X Do Q ", fan)
		res := fmt.Sprintf("/Resources << /XObject << /X %d 0 R >> >>", 7+d)
		if d == depth-1 {
			body, res = strings.Repeat("0 0 m 1 1 l S ", fan), ""
		}
		obj(fmt.Sprintf("<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] %s /Length %d >>\nstream\n%s\nendstream", res, len(body), body))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

// A page whose forms draw each other a billion times (10 wide, 9 deep) is one call into
// PDFium, which the deadline does not interrupt; what ends it is the memory cap, since PDFium
// keeps every drawn form's objects: the file fails as a limit (in under a second on the
// development machine), not after its work.
func TestPDFiumNestedFormsStopAtTheMemoryCap(t *testing.T) {
	_, err := DocumentText(context.Background(), "application/pdf", "", formBomb(9, 10), TextLimits{})
	if kind := failure(t, err); kind != FailLimit {
		t.Errorf("kind %q (%v), want %q", kind, err, FailLimit)
	}
}
