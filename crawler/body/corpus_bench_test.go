package body

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCorpus reads every PDF of the corpus of real files (scripts/corpus.sh) once per
// iteration, with our reader and with pdftotext on the same files in the same run: MB/s of
// PDF read, MB per second of CPU (MB/cpu-s: this process's CPU for our reader, the children's
// for pdftotext, so that a machine shared with other work changes it less than the wall-clock
// MB/s), and the peak resident memory of this test binary, PDFium's instances included (a
// child's peak cannot be told apart from the parent's here: the kernel counts the parent's
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
		cpu := cpuTime(syscall.RUSAGE_SELF)
		for b.Loop() {
			for _, f := range files {
				_, _ = DocumentText(context.Background(), "application/pdf", f.name, f.pdf, TextLimits{})
			}
		}
		reportCPURate(b, size, cpuTime(syscall.RUSAGE_SELF)-cpu)
		b.ReportMetric(float64(maxRSS(syscall.RUSAGE_SELF))/(1<<20), "peak-RSS-MiB")
	})
	b.Run("pdf/pdftotext", func(b *testing.B) {
		bin, err := exec.LookPath("pdftotext")
		if err != nil {
			b.Skip("pdftotext is not installed (scripts/corpus.sh installs it)")
		}
		b.SetBytes(size)
		cpu := cpuTime(syscall.RUSAGE_CHILDREN)
		for b.Loop() {
			for _, f := range files {
				cmd := exec.Command(bin, "-q", "-enc", "UTF-8", f.path, "-")
				if err := cmd.Run(); err != nil {
					b.Fatalf("pdftotext %s: %v", f.name, err)
				}
			}
		}
		reportCPURate(b, size, cpuTime(syscall.RUSAGE_CHILDREN)-cpu)
	})
}

// cpuTime is the user and system CPU time of the process or of its waited-for children.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPURate reports the MB of PDF read per second of CPU over the benchmark's iterations.
func reportCPURate(b *testing.B, size int64, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

// maxRSS is the peak resident set of the process or of its largest waited-for child, in bytes.
func maxRSS(who int) int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return ru.Maxrss << 10 // kilobytes on Linux
}
