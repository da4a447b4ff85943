package body

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// The corpus test reads real files written by other programs (scripts/corpus.sh builds it from
// Debian's documentation packages) and compares our text with a reference extractor's:
// pdftotext for PDFs. Files our own code wrote never challenged the readers; these do.

// Thresholds of the corpus recall test (issue: attachment text as good as the reference
// extractors).
const (
	corpusMeanRecall = 0.97
	corpusMinRecall  = 0.85
	// A reference with fewer words than this is a file without a text layer (a scan, a
	// picture): such a file must come back with a typed reason, not with junk.
	corpusMinWords = 1
)

// corpusDir finds the corpus: MIMECRAWL_CORPUS, else the repository's .cache/corpus. Under
// CI=true a missing corpus fails the test; elsewhere it skips with the command that builds it.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MIMECRAWL_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".cache", "corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "pdf")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus of real files not found at %s (build it with scripts/corpus.sh): %v", dir, err)
		}
		t.Skipf("corpus of real files not found at %s: run scripts/corpus.sh", dir)
	}
	return dir
}

// words splits text into lower-case words of letters and digits, after compatibility
// normalisation (ligatures, full-width forms), which both sides receive alike.
func words(s string) []string {
	s = strings.ToLower(norm.NFKC.String(s))
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// recall is the share of the reference's words (counted with repetition) that occur in got.
func recall(ref, got []string) float64 {
	if len(ref) == 0 {
		return 1
	}
	have := make(map[string]struct{}, len(got))
	for _, w := range got {
		have[w] = struct{}{}
	}
	found := 0
	for _, w := range ref {
		if _, ok := have[w]; ok {
			found++
		}
	}
	return float64(found) / float64(len(ref))
}

type corpusFile struct {
	path string
	name string
	pdf  []byte
	ref  []string
}

// officeCorpus holds the files LibreOffice wrote from our sources (scripts/office-corpus.sh),
// committed, with the words each must yield.
const officeCorpus = "testdata/corpus/office"

// loadCorpus reads the PDFs of the cache (Debian's packages) and the one LibreOffice wrote.
func loadCorpus(t testing.TB) []corpusFile {
	dir := filepath.Join(corpusDir(t), "pdf")
	names, err := filepath.Glob(filepath.Join(dir, "*.pdf"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no PDFs in %s: %v", dir, err)
	}
	lo, _ := filepath.Glob(filepath.Join(officeCorpus, "*.pdf"))
	names = append(names, lo...)
	sort.Slice(names, func(i, j int) bool { return filepath.Base(names[i]) < filepath.Base(names[j]) })
	var files []corpusFile
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := os.ReadFile(n + ".txt")
		if err != nil {
			t.Fatalf("reference text of %s: %v", n, err)
		}
		files = append(files, corpusFile{path: n, name: filepath.Base(n), pdf: data, ref: words(string(ref))})
	}
	return files
}

func TestCorpusPDFRecall(t *testing.T) {
	files := loadCorpus(t)
	var sum float64
	var scored int
	for _, f := range files {
		d, err := DocumentText(context.Background(), "application/pdf", f.name, f.pdf, TextLimits{MaxChars: 8 << 20})
		var te *TextError
		if err != nil && !errors.As(err, &te) {
			t.Fatalf("%s: %v", f.name, err)
		}
		if len(f.ref) < corpusMinWords {
			// No text layer: the reason must say so, and no junk may be indexed.
			t.Logf("%-45s %8d bytes  no text layer  reason=%v", f.name, len(f.pdf), err)
			if te == nil || te.Kind != FailNoText || d.Text != "" {
				t.Errorf("%s has no text layer: got %q and error %v, want no text and reason %s", f.name, CutUTF8(d.Text, 40), err, FailNoText)
			}
			continue
		}
		r := recall(f.ref, words(d.Text))
		sum += r
		scored++
		t.Logf("%-45s %8d bytes  recall %.3f  words %d/%d  err=%v", f.name, len(f.pdf), r, len(words(d.Text)), len(f.ref), err)
		if r < corpusMinRecall {
			t.Errorf("%s: recall %.3f below %.2f", f.name, r, corpusMinRecall)
		}
	}
	mean := sum / float64(scored)
	t.Logf("mean recall %.3f over %d files with a text layer (%d files in all)", mean, scored, len(files))
	if mean < corpusMeanRecall {
		t.Errorf("mean recall %.3f below %.2f", mean, corpusMeanRecall)
	}
}

// TestCorpusOfficeRecall reads the office files LibreOffice wrote (DOCX, ODT, RTF from one
// document with a table, notes, a header and a footer; XLSX and ODS from one sheet of dates and
// numbers; PPTX and ODP from two slides with speaker notes) and looks for every word of their
// sources: cells as displayed (a date, not its
// serial number; 0.1015328, not 0.10153280000000001), headers and footers, notes apart from the
// words around them.
func TestCorpusOfficeRecall(t *testing.T) {
	names, err := filepath.Glob(filepath.Join(officeCorpus, "*"))
	if err != nil {
		t.Fatal(err)
	}
	scored := 0
	for _, n := range names {
		ext := filepath.Ext(n)
		switch ext {
		case ".docx", ".odt", ".rtf", ".xlsx", ".ods", ".pptx", ".odp":
		default:
			continue
		}
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		src, err := os.ReadFile(strings.TrimSuffix(n, ext) + ".words")
		if err != nil {
			t.Fatal(err)
		}
		d, err := DocumentText(context.Background(), "", filepath.Base(n), data, TextLimits{})
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		ref, got := words(string(src)), words(d.Text)
		r := recall(ref, got)
		scored++
		t.Logf("%-12s recall %.3f", filepath.Base(n), r)
		if r < 1 {
			have := map[string]bool{}
			for _, w := range got {
				have[w] = true
			}
			var missing []string
			for _, w := range ref {
				if !have[w] {
					missing = append(missing, w)
				}
			}
			t.Errorf("%s: recall %.3f, missing %q", filepath.Base(n), r, missing)
		}
	}
	if scored != 7 {
		t.Errorf("%d office files read, want 7", scored)
	}
}
