package body

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mimecrawl/mimecrawl/internal/hostile"
)

// Hostile shapes are generated lazily, so that the test itself holds none of their hundreds
// of megabytes; the memory bounds are asserted on the heap sampled while Extract reads.

// repeat is hostile.Repeat: a lazily generated stream of n bytes.
var repeat = hostile.Repeat

// heapProbe passes a stream through and samples the heap in use every few megabytes read, and
// once more when asked: the peak is what the reader of the stream held while reading it.
type heapProbe struct {
	r       io.Reader
	read    int64
	next    int64
	base    uint64
	peak    uint64
	samples int
}

const probeEvery = 2 << 20

func newHeapProbe(r io.Reader) *heapProbe {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapProbe{r: r, base: ms.HeapAlloc, next: probeEvery}
}

func (h *heapProbe) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.read += int64(n)
	if h.read >= h.next {
		h.sample()
		h.next = h.read + probeEvery
	}
	return n, err
}

func (h *heapProbe) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.samples++
	if ms.HeapAlloc > h.base && ms.HeapAlloc-h.base > h.peak {
		h.peak = ms.HeapAlloc - h.base
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// extractWithin extracts r with opts through a heap probe and fails the test when the heap
// held while extracting, or by the result, exceeds bound. The result is closed when the test
// ends.
func extractWithin(t *testing.T, r io.Reader, opts Options, bound uint64) *Text {
	t.Helper()
	probe := newHeapProbe(r)
	got, err := Extract(probe, opts)
	probe.sample() // what the result holds
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	t.Cleanup(func() { got.Close() })
	t.Logf("peak heap %.1f MiB over %d samples", mib(probe.peak), probe.samples)
	if probe.peak > bound {
		t.Errorf("peak heap %.1f MiB, want under %.0f MiB", mib(probe.peak), mib(bound))
	}
	return got
}

const hugeLine = 200 << 20

func TestExtractHugeHeaderLineIsBounded(t *testing.T) {
	const bound = 64 << 20
	cases := []struct {
		name     string
		msg      func() io.Reader
		text     string // expected in Text: what came before the hostile header
		maxRead  int64  // Extract stops reading by then
		noHeader bool
	}{
		{
			name: "top level",
			msg: func() io.Reader {
				return io.MultiReader(strings.NewReader("From: a@example.com\r\nSubject: "), repeat("a", hugeLine))
			},
			maxRead: 4 << 20,
		},
		{
			name:     "top level, first line",
			msg:      func() io.Reader { return repeat("x", hugeLine) },
			maxRead:  4 << 20,
			noHeader: true,
		},
		{
			name: "part",
			msg: func() io.Reader {
				return io.MultiReader(strings.NewReader("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
					"--b\r\nContent-Type: text/plain\r\n\r\nhello before\r\n--b\r\nX-Long: "),
					repeat("a", hugeLine),
					strings.NewReader("\r\n\r\nhidden\r\n--b--\r\n"))
			},
			text:    "hello before",
			maxRead: 4 << 20,
		},
		{
			name: "part of a nested multipart",
			msg: func() io.Reader {
				return io.MultiReader(strings.NewReader("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"+
					"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"+
					"--inner\r\nContent-Type: text/plain\r\n\r\nhello inner\r\n--inner\r\nX-Long: "),
					repeat("a", hugeLine),
					strings.NewReader("\r\n\r\nhidden\r\n--inner--\r\n--outer\r\nContent-Type: text/plain\r\n\r\nhello after\r\n--outer--\r\n"))
			},
			// Nothing after the hostile part is read, in the outer multipart either.
			text:    "hello inner",
			maxRead: 4 << 20,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			probe := newHeapProbe(tc.msg())
			got, err := Extract(probe, Options{})
			probe.sample()
			defer got.Close()
			if tc.noHeader {
				if err != ErrNoContent {
					t.Errorf("err = %v, want ErrNoContent", err)
				}
			} else if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if !got.Malformed {
				t.Errorf("Malformed = false; Defects %q", got.Defects)
			}
			if !strings.Contains(strings.Join(got.Defects, "|"), "header larger than") {
				t.Errorf("Defects %q do not name the header limit", got.Defects)
			}
			if tc.text != "" && got.Text != tc.text {
				t.Errorf("Text = %q, want %q", got.Text, tc.text)
			}
			if strings.Contains(got.Text, "hidden") || strings.Contains(got.Text, "aaaa") {
				t.Errorf("Text holds what followed the hostile header: %.80q", got.Text)
			}
			if probe.read > tc.maxRead {
				t.Errorf("read %d bytes of the stream, want at most %d", probe.read, tc.maxRead)
			}
			t.Logf("peak heap %.1f MiB over %d samples, %.1f MiB read", mib(probe.peak), probe.samples, float64(probe.read)/(1<<20))
			if probe.peak > bound {
				t.Errorf("peak heap %.1f MiB, want under %.0f MiB", mib(probe.peak), mib(bound))
			}
		})
	}
}

// manyAttachments is a message with n attachments of size bytes each, part i filled with a
// pattern of its own.
func manyAttachments(n int, size int64) io.Reader {
	rs := []io.Reader{strings.NewReader("From: a@example.com\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n")}
	for i := range n {
		rs = append(rs, strings.NewReader(fmt.Sprintf("--b\r\nContent-Type: application/octet-stream\r\n"+
			"Content-Disposition: attachment; filename=\"f%03d.bin\"\r\n\r\n", i)),
			repeat(attachmentPattern(i), size), strings.NewReader("\r\n"))
	}
	return io.MultiReader(append(rs, strings.NewReader("--b--\r\n"))...)
}

func attachmentPattern(i int) string {
	return fmt.Sprintf("attachment %03d: 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP\r\n", i)
}

func TestExtractManyAttachmentsKeepsMemoryBounded(t *testing.T) {
	const (
		n          = 100
		size       = 2 << 20
		keepMemory = 16 << 20
		// Live at once: the memory cap and one part being captured; the heap sampled also
		// holds garbage, up to about as much again before the collector runs. Without the cap
		// all 200 MiB were held at once.
		bound = 64 << 20
	)
	dir := t.TempDir()
	got := extractWithin(t, manyAttachments(n, size), Options{KeepAttachments: size, KeepMemory: keepMemory, SpillDir: dir}, bound)
	if got.Text != "see attached" || got.Malformed {
		t.Errorf("Text = %q, Malformed = %t", got.Text, got.Malformed)
	}
	if len(got.Parts) != n {
		t.Fatalf("%d parts, want %d", len(got.Parts), n)
	}
	inMemory, spilled := 0, 0
	for i := range got.Parts {
		p := &got.Parts[i]
		h := sha256.New()
		io.Copy(h, repeat(attachmentPattern(i), size))
		want := hex.EncodeToString(h.Sum(nil))
		if p.Size != size || p.SHA256 != want || !p.Kept() {
			t.Fatalf("part %d: size %d, sha256 %s, kept %t; want %d, %s, kept", i, p.Size, p.SHA256, p.Kept(), size, want)
		}
		if p.Data != nil {
			inMemory++
		} else {
			spilled++
		}
		if i%9 != 0 && i != n-1 {
			continue // reading every part back would only slow the test down
		}
		b, err := p.Bytes()
		if err != nil {
			t.Fatalf("part %d: Bytes: %v", i, err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
			t.Errorf("part %d: Bytes differ from the part", i)
		}
	}
	if inMemory != keepMemory/size || spilled != n-inMemory {
		t.Errorf("%d parts in memory and %d in the file, want %d and %d", inMemory, spilled, keepMemory/size, n-keepMemory/size)
	}
	if err := got.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := got.Parts[n-1].Bytes(); err == nil {
		t.Errorf("Bytes of a spilled part work after Close")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestExtractSpillFileIsPrivateAndGone(t *testing.T) {
	dir := t.TempDir()
	got, err := Extract(manyAttachments(3, 1000), Options{KeepAttachments: 1000, KeepMemory: 1500, SpillDir: dir})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if got.spill == nil {
		t.Fatal("nothing spilled")
	}
	st, err := got.spill.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("temporary file mode %o, want 600", perm)
	}
	if entries, _ := os.ReadDir(dir); runtime.GOOS != "windows" && len(entries) != 0 {
		t.Errorf("temporary file still has a name while open: %v", entries)
	}
	for i := range got.Parts {
		b, err := got.Parts[i].Bytes()
		if err != nil || string(b) != strings.Repeat(attachmentPattern(i), 20)[:1000] {
			t.Errorf("part %d: Bytes = %.40q, %v", i, b, err)
		}
	}
	if err := got.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := got.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestExtractSpillDirMissingKeepsHashOnly(t *testing.T) {
	dir := t.TempDir() + "/missing"
	got, err := Extract(manyAttachments(3, 1000), Options{KeepAttachments: 1000, KeepMemory: 1500, SpillDir: dir})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	defer got.Close()
	if !got.Parts[0].Kept() || got.Parts[1].Kept() || got.Parts[2].Kept() {
		t.Errorf("kept = %t %t %t, want true false false", got.Parts[0].Kept(), got.Parts[1].Kept(), got.Parts[2].Kept())
	}
	for _, p := range got.Parts {
		if p.SHA256 == "" || p.Size != 1000 {
			t.Errorf("part %q lost its digest or size: %+v", p.Filename, p)
		}
	}
	if !strings.Contains(strings.Join(got.Defects, "|"), "not kept") {
		t.Errorf("Defects %q do not say the part was not kept", got.Defects)
	}
	if !got.KeepFailed {
		t.Errorf("KeepFailed is false: a caller would take the parts for unreadable")
	}
}

func TestPartHeaderLimitPassesOrdinaryMultipart(t *testing.T) {
	// A body line that starts like a delimiter, and long body lines, are not headers.
	long := strings.Repeat("z", 3<<20)
	msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
		"--bx is not a delimiter\r\n" + long + "\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--b--\r\n"
	got, err := Extract(strings.NewReader(msg), Options{MaxTextBytes: 10 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if got.Malformed || !strings.HasSuffix(got.Text, "second") || !strings.Contains(got.Text, long) {
		t.Errorf("Malformed = %t, Defects %q, Text %d bytes", got.Malformed, got.Defects, len(got.Text))
	}
}

func TestPartHeaderLimitFollowsLines(t *testing.T) {
	cases := []struct {
		name string
		body string
		trip bool
	}{
		{"short headers", "pre\r\n--b\r\nA: 1\r\n\r\nbody long enough to pass the limit\r\n--b\r\nB: 2\r\n\r\nx\r\n--b--\r\n", false},
		{"long header", "--b\r\nA: 123456789012345\r\n\r\n", true},
		{"long header after white space on the delimiter", "--b \t\r\nA: 123456789012345\r\n\r\n", true},
		{"bare LF lines", "--b\nA: 123456789012345\n\n", true},
		{"long body line", "--b\r\nA: 1\r\n\r\n123456789012345678901234567890\r\n--b--\r\n", false},
		{"not a delimiter", "--bx\r\n123456789012345678901234567890\r\n", false},
		{"closing delimiter", "--b--\r\n123456789012345678901234567890\r\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per read: the limiter must follow lines across reads.
			l := newPartHeaderLimit(iotest.OneByteReader(strings.NewReader(tc.body)), "b", 16)
			_, err := io.Copy(io.Discard, l)
			if tc.trip != (err == errPartHeaderTooBig) || l.tripped != tc.trip {
				t.Errorf("err = %v, tripped %t; want tripped %t", err, l.tripped, tc.trip)
			}
		})
	}
}

func TestExtractCapsPartFilenames(t *testing.T) {
	long := strings.Repeat("n", 500<<10)
	msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\n" +
		"Content-Disposition: attachment; filename=\"" + long + ".pdf\"\r\n\r\n%PDF\r\n--b--\r\n"
	got, err := Extract(strings.NewReader(msg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parts) != 1 {
		t.Fatalf("%d parts, want 1", len(got.Parts))
	}
	if p := got.Parts[0]; len(p.Filename) != maxFilenameBytes || p.Size != 4 {
		t.Errorf("filename of %d bytes, size %d; want %d bytes, size 4", len(p.Filename), p.Size, maxFilenameBytes)
	}
}

// A part as large as KeepAttachments goes to the temporary file as it is read, not captured in
// memory first; a part larger than the cap is not kept, and leaves nothing in the file.
func TestExtractLargePartStreamsToTheFile(t *testing.T) {
	const (
		size       = 64 << 20
		keepMemory = 1 << 20
		// The 64 MiB part held in memory at once would exceed this many times.
		bound = 24 << 20
	)
	rs := io.MultiReader(strings.NewReader("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"+
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\n\r\n"),
		repeat(attachmentPattern(0), size), strings.NewReader("\r\n"+
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"bigger.bin\"\r\n\r\n"),
		repeat(attachmentPattern(1), size+1), strings.NewReader("\r\n--b--\r\n"))
	got := extractWithin(t, rs, Options{KeepAttachments: size, KeepMemory: keepMemory, SpillDir: t.TempDir()}, bound)
	if len(got.Parts) != 2 || got.KeepFailed {
		t.Fatalf("%d parts, keep failed %t", len(got.Parts), got.KeepFailed)
	}
	big, bigger := &got.Parts[0], &got.Parts[1]
	if !big.Kept() || big.Data != nil || big.Size != size {
		t.Errorf("the part at the cap: kept %t, in memory %t, size %d", big.Kept(), big.Data != nil, big.Size)
	}
	if bigger.Kept() || bigger.Size != size+1 {
		t.Errorf("the part over the cap: kept %t, size %d", bigger.Kept(), bigger.Size)
	}
	if got.spill == nil || got.spill.size != size {
		t.Errorf("temporary file holds %d bytes, want only the kept part's %d", got.spill.size, size)
	}
	b, err := big.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != big.SHA256 {
		t.Errorf("the bytes read back differ from the part")
	}
}
