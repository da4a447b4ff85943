package body

import (
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// fuzzLimits keep each input cheap: the invariants, not the limits, are under test.
var fuzzLimits = TextLimits{MaxChars: 2000, MaxInflated: 1 << 20, MaxEntries: 200}

func checkDocText(t *testing.T, ct string, data []byte) {
	got, err := DocumentText(context.Background(), ct, "", data, fuzzLimits)
	if !utf8.ValidString(got.Text) || utf8.RuneCountInString(got.Text) > fuzzLimits.MaxChars {
		t.Fatalf("text of %d characters, valid UTF-8 %t", utf8.RuneCountInString(got.Text), utf8.ValidString(got.Text))
	}
	if err != nil {
		if errors.Is(err, errPanic) {
			t.Fatalf("extractor panicked: %v", err)
		}
		if _, ok := err.(*TextError); !ok {
			t.Fatalf("error %T %v, want *TextError", err, err)
		}
	}
}

// FuzzOOXMLText checks that no ZIP makes the OOXML/ODF readers panic or break the text
// invariants.
func FuzzOOXMLText(f *testing.F) {
	for _, format := range []string{simulator.DocDOCX, simulator.DocXLSX, simulator.DocPPTX, simulator.DocODT} {
		f.Add(simulator.SampleDocument(format, "token", "a", "b"))
	}
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDocText(t, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", data)
		checkDocText(t, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", data)
	})
}

// FuzzPDFText checks the same of the PDF reader.
func FuzzPDFText(f *testing.F) {
	f.Add(simulator.SampleDocument(simulator.DocPDF, "token", "a", "b"))
	f.Add([]byte("%PDF-1.4\n1 0 obj\n<< /Length 20 >>\nstream\nBT [(a) -300 (b)] TJ ET\nendstream\nendobj\n"))
	f.Add([]byte("%PDF-1.4\n1 0 obj\n<< /Length 5 >>\nstream\n(\\377\\"))
	f.Add([]byte("%PDF-1.4\n3 0 obj\n<< /Type /Page /Resources << /Font << /F2 5 0 R >> >> /Contents 4 0 R >>\nendobj\n" +
		"4 0 obj\n<< >>\nstream\nBT /F2 1 Tf <0003> Tj ET\nendstream\nendobj\n5 0 obj\n<< /ToUnicode 6 0 R >>\nendobj\n" +
		"6 0 obj\n<< >>\nstream\n1 beginbfchar <0003> <0068> endbfchar 1 beginbfrange <0004> <0005> [<41> <42>] endbfrange\nendstream\nendobj\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDocText(t, "application/pdf", data)
	})
}

// FuzzRTFText checks the same of the RTF reader.
func FuzzRTFText(f *testing.F) {
	f.Add([]byte(`{\rtf1\ansi{\fonttbl{\f0 Times;}}\f0 Caf\'e9 \u8364?\par x}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDocText(t, "application/rtf", data)
	})
}
