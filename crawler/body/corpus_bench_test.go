package body

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
)

// BenchmarkCorpus reads every PDF of the corpus of real files (scripts/corpus.sh) once per
// iteration, with our reader and with pdftotext on the same files in the same run: MB/s of
// PDF read, and the peak resident memory of this test binary, PDFium's instances included
// (a child's peak cannot be told apart from the parent's here: the kernel counts the parent's
// pages in a child until it execs).
func BenchmarkCorpus(b *testing.B) {
	files := loadCorpus(b)
	var size int64
	for _, f := range files {
		size += int64(len(f.pdf))
	}
	b.Run("pdf/mimecrawl", func(b *testing.B) {
		if err := WarmUp(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		for b.Loop() {
			for _, f := range files {
				_, _ = DocumentText(context.Background(), "application/pdf", f.name, f.pdf, TextLimits{})
			}
		}
		b.ReportMetric(float64(maxRSS(syscall.RUSAGE_SELF))/(1<<20), "peak-RSS-MiB")
	})
	b.Run("pdf/pdftotext", func(b *testing.B) {
		bin, err := exec.LookPath("pdftotext")
		if err != nil {
			b.Skip("pdftotext is not installed (scripts/corpus.sh installs it)")
		}
		b.SetBytes(size)
		for b.Loop() {
			for _, f := range files {
				cmd := exec.Command(bin, "-q", "-enc", "UTF-8", f.path, "-")
				if err := cmd.Run(); err != nil {
					b.Fatalf("pdftotext %s: %v", f.name, err)
				}
			}
		}
	})
}

// maxRSS is the peak resident set of the process or of its largest waited-for child, in bytes.
func maxRSS(who int) int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return ru.Maxrss << 10 // kilobytes on Linux
}
