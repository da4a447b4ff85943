package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

func TestTextCommandPrintsTextAndVerdicts(t *testing.T) {
	dir := t.TempDir()
	pdf := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(pdf, simulator.SampleDocument(simulator.DocPDF, "tokenxyz"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.docx")
	if err := os.WriteFile(broken, []byte("PK\x03\x04 not a zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"text", pdf, broken}, &out, &errb)
	if code != exitPartial {
		t.Errorf("exit %d, want %d (one file without text)\n%s", code, exitPartial, errb.String())
	}
	if !strings.Contains(out.String(), "tokenxyz") {
		t.Errorf("stdout %q lacks the PDF's text", out.String())
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "== "+pdf+": pdf, ") || strings.Contains(lines[0], "no text") ||
		!strings.Contains(lines[1], "broken.docx: docx, ") || !strings.Contains(lines[1], "no text: corrupt") {
		t.Errorf("verdicts:\n%s", errb.String())
	}

	out.Reset()
	errb.Reset()
	if code := run([]string{"text", "--verdict-only", pdf}, &out, &errb); code != exitOK || out.Len() != 0 {
		t.Errorf("--verdict-only: exit %d, stdout %q", code, out.String())
	}
	if code := run([]string{"text"}, &out, &errb); code != exitUsage {
		t.Errorf("no file: exit %d, want %d", code, exitUsage)
	}
	if code := run([]string{"help", "text"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "-verdict-only") {
		t.Errorf("help text: exit %d\n%s", code, out.String())
	}
}

func TestTextMissLineNamesReasonsAndFormats(t *testing.T) {
	got := textMissLine(3, []crawler.TextMiss{{Format: "docx", Reason: "corrupt", Count: 1}, {Format: "pdf", Reason: "no_text_layer", Count: 2}})
	if want := "3 attachments indexed without text: 1 corrupt docx, 2 no_text_layer pdf"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
