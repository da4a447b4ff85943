package body

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// PDF text is read by PDFium, the PDF engine of Chrome, compiled to WebAssembly and run by
// wazero (pure Go, no cgo). It was chosen over extending our own reader by measurement on a
// corpus of real PDFs from seventeen producers (scripts/corpus.sh, TestCorpusPDFRecall): mean
// recall against pdftotext went from 0.71 to above 0.97 with no code of ours for object
// streams, xref streams, filters, CID fonts, encodings, encryption or text layout. PDFium is
// fuzzed continuously upstream, and the WebAssembly sandbox bounds what a hostile file can
// cost: each instance has no file system and a capped linear memory (pdfiumMemoryPages,
// TestPDFiumMemoryCapIsALimit). The context is checked before every call into the engine,
// and a call reads at most one page (TestPDFiumCancelledMidwayLeavesTheEngineWorking): a
// deadline that passes while a page is read ends the file after that page.
//
// Calls are not interrupted inside the engine, on purpose. wazero can abort a running call
// (RuntimeConfig.WithCloseOnContextDone), but in version 1.12 it does so by leaving the
// compiled code for Go at every iteration of every loop to ask whether the module was closed;
// on the corpus those exits took nearly three quarters of the CPU (BenchmarkCorpus: 1.5 MB of
// PDF per CPU-second with them, 5.5 without). The price is that one page's work can
// outlast the deadline, and that the goroutine in the engine cannot be preempted while it
// reads that page, which delays the collector's stop-the-world phases by as much. Should
// wazero test the closed module inline (wazero/wazero issue 2466), the interrupt can return.
//
// Our own reader (pdf.go) stays as the fallback for files PDFium cannot open at all (no
// cross-reference table, no page tree: fragments that are still content streams), and for the
// case where the engine cannot start.

// pdfiumMemoryPages caps the linear memory of one PDFium instance: 2048 pages of 64 KiB, 128
// MiB, five times the largest attachment kept by default (attachments.max_bytes, 25 MB), and
// more than any file of the corpus needs (all read within 64 MiB). A file that needs more
// fails as a broken limit, not the process. Instances are at most GOMAXPROCS at once (text
// extraction is CPU-bound: more would only wait for a core), so the engine's memory is at most
// GOMAXPROCS × 128 MiB, and an instance's memory goes back to the Go heap when its document is
// done.
const pdfiumMemoryPages = 2048

// textReader reads the text of one format. It writes into w, which bounds the characters kept
// and carries the context, and returns errors that failureKind classifies. A reader can be
// replaced, and measured on the corpus, on its own.
type textReader interface {
	readText(w *textBuf, data []byte, lim *TextLimits) error
}

// pdfReader is the PDF reader in use: PDFium, with our own reader behind it.
var pdfReader textReader = pdfChain{primary: pdfiumReader{engine: &sharedPDFium}, fallback: scanReader{}}

// pdfChain tries primary and turns to fallback when primary could not open the file, or found
// no text in it: then the fallback either finds some, or says why (a broken stream is a corrupt
// file, not a scan), or agrees that there is none.
type pdfChain struct {
	primary, fallback textReader
}

func (c pdfChain) readText(w *textBuf, data []byte, lim *TextLimits) error {
	err := c.primary.readText(w, data, lim)
	switch {
	case errors.Is(err, errNotOpened) && w.b.Len() == 0:
		return c.fallback.readText(w, data, lim)
	case err == nil && w.b.Len() == 0:
		if err := c.fallback.readText(w, data, lim); err != nil && !errors.Is(err, errNoText) {
			return err
		}
	}
	return err
}

// scanReader is our own reader of content streams (pdf.go).
type scanReader struct{}

func (scanReader) readText(w *textBuf, data []byte, lim *TextLimits) error {
	return pdfText(w, data, lim)
}

// errNotOpened says that PDFium could not open a file: another reader may still find text.
var errNotOpened = errors.New("pdfium could not open the file")

// pdfiumEngine is the compiled PDFium module and its pool of instances. Compiling the module
// costs seconds of CPU, so one engine serves the process; it is built on first use and the
// compiled code is cached on disk (the user's cache directory) for the next process.
type pdfiumEngine struct {
	once sync.Once
	pool pdfium.Pool
	err  error
}

var sharedPDFium pdfiumEngine

func (e *pdfiumEngine) get() (pdfium.Pool, error) {
	e.once.Do(func() {
		cache := wazero.NewCompilationCache()
		if dir, err := os.UserCacheDir(); err == nil {
			if c, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "mimecrawl", "wazero")); err == nil {
				cache = c
			}
		}
		n := runtime.GOMAXPROCS(0)
		e.pool, e.err = webassembly.Init(webassembly.Config{
			// Instances take their linear memory from fixedMemory, through the context they
			// are made with.
			Context: experimental.WithMemoryAllocator(context.Background(), experimental.MemoryAllocatorFunc(newFixedMemory)),
			MinIdle: 0, MaxIdle: n, MaxTotal: n,
			RuntimeConfig: wazero.NewRuntimeConfig().
				WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
				WithCompilationCache(cache).
				WithMemoryLimitPages(pdfiumMemoryPages).
				// No check of the context inside the engine's loops: see the file comment.
				WithCloseOnContextDone(false),
			FSConfig: wazero.NewFSConfig(), // no file system at all
			Stdout:   io.Discard,
			Stderr:   io.Discard,
			// An instance serves the next document only after one that ended well within its
			// first memory (pdfiumReader.readText discards the others): instantiating costs
			// milliseconds and 32 MiB of allocation per file, most PDF attachments are small.
			ReuseWorkers: true,
		})
		if e.err != nil {
			e.err = fmt.Errorf("start pdfium: %w", e.err)
		}
	})
	return e.pool, e.err
}

// WarmUp starts the PDF engine (compiling it on the first run of a machine, reading the
// compiled code from the cache afterwards), so that the first PDF of a crawl does not pay for
// it within its text timeout. Safe to call more than once and concurrently.
func WarmUp() error {
	_, err := sharedPDFium.get()
	return err
}

// fixedMemory is the linear memory of an instance, in at most two allocations: pdfiumFirstMemory
// (enough for most files, cheap to allocate and clear for each file), then the cap at once.
// wazero's own memory grows by copying into ever larger slices, so a file that drove an
// instance to its cap left several copies for the collector (534 MB of peak resident memory for
// one file against a 256 MiB cap); with one step it costs the cap and one copy.
type fixedMemory struct {
	buf []byte
	max uint64
}

// pdfiumFirstMemory is the memory an instance starts with.
const pdfiumFirstMemory = 32 << 20

func newFixedMemory(_, max uint64) experimental.LinearMemory {
	return &fixedMemory{buf: make([]byte, 0, min(max, pdfiumFirstMemory)), max: max}
}

// pdfiumCapHits counts growths of any instance's memory to within pdfiumNearCap of its cap
// (wazero refuses growth beyond the cap itself, without asking the allocator): an instance that
// fails after one failed for want of memory (a limit), not because the file is corrupt. Two
// files near the cap at once may swap their reasons.
var pdfiumCapHits atomic.Int64

// pdfiumGrowths counts instances' memories that grew beyond pdfiumFirstMemory: an instance
// whose file made one grow is not used again (by the same rule as pdfiumCapHits, a file read
// at the same time may lose its instance too, which costs only a new one).
var pdfiumGrowths atomic.Int64

const pdfiumNearCap = 8 << 20

func (m *fixedMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > uint64(cap(m.buf)) {
		pdfiumGrowths.Add(1)
		buf := make([]byte, size, m.max)
		copy(buf, m.buf)
		m.buf = buf
	}
	if size+pdfiumNearCap >= m.max {
		pdfiumCapHits.Add(1)
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *fixedMemory) Free() { m.buf = nil }

type pdfiumReader struct{ engine *pdfiumEngine }

func (r pdfiumReader) readText(w *textBuf, data []byte, lim *TextLimits) (err error) {
	pool, err := r.engine.get()
	if err != nil {
		return fmt.Errorf("%w: %w", errNotOpened, err)
	}
	ctx := w.ctx
	inst, err := pool.GetInstanceWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: pdfium instance: %w", errNotOpened, err)
	}
	// An instance goes back to the pool only after a file it read without an error, within
	// its deadline and without growing its memory; any other is discarded, and with it
	// whatever the file left in it. It is never closed while a call runs in it: the engine's
	// code is not interrupted (see the file comment) and would go on using the memory that
	// closing frees.
	hits, growths := pdfiumCapHits.Load(), pdfiumGrowths.Load()
	defer func() {
		reuse := (err == nil || errors.Is(err, errTextFull)) && ctx.Err() == nil && pdfiumGrowths.Load() == growths
		if reuse {
			_ = inst.Close()
		} else {
			_ = inst.Kill()
		}
	}()
	err = pdfiumText(w, inst, data)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && pdfiumCapHits.Load() > hits && !errors.Is(err, errTextFull) {
		return fmt.Errorf("%w: pdfium instance out of its %d MiB: %w", errInflateLimit, pdfiumMemoryPages>>4, err)
	}
	return err
}

func pdfiumText(w *textBuf, inst pdfium.Pdfium, data []byte) error {
	doc, err := inst.FPDF_LoadMemDocument(&requests.FPDF_LoadMemDocument{Data: &data})
	switch {
	case errors.Is(err, pdfiumerrors.ErrPassword), errors.Is(err, pdfiumerrors.ErrSecurity):
		return fmt.Errorf("%w: %w", errEncrypted, err)
	case err != nil:
		return fmt.Errorf("%w: %w", errNotOpened, pdfiumError(err))
	}
	defer inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document})
	pc, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return pdfiumError(err)
	}
	if pc.PageCount == 0 {
		return fmt.Errorf("%w: no pages", errNotOpened)
	}
	for i := 0; i < pc.PageCount; i++ {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		text, err := pdfiumPageText(w.ctx, inst, doc.Document, i)
		if err != nil {
			return err
		}
		if err := w.write(text); err != nil {
			return err
		}
		w.newline()
	}
	return nil
}

// pdfiumPageText reads the text of one page as PDFium lays it out (spaces and line breaks where
// the glyphs' positions ask for them, ligatures expanded).
func pdfiumPageText(ctx context.Context, inst pdfium.Pdfium, doc references.FPDF_DOCUMENT, index int) (string, error) {
	page, err := inst.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: doc, Index: index})
	if err != nil {
		return "", pdfiumError(fmt.Errorf("load page %d: %w", index, err))
	}
	defer inst.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: page.Page})
	if err := ctx.Err(); err != nil {
		return "", err
	}
	tp, err := inst.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: requests.Page{ByReference: &page.Page}})
	if err != nil {
		return "", pdfiumError(fmt.Errorf("read text of page %d: %w", index, err))
	}
	defer inst.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
	n, err := inst.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
	if err != nil || n.Count <= 0 {
		return "", pdfiumError(err)
	}
	text, err := inst.FPDFText_GetText(&requests.FPDFText_GetText{TextPage: tp.TextPage, Count: n.Count})
	if err != nil {
		return "", pdfiumError(fmt.Errorf("read text of page %d: %w", index, err))
	}
	if utf8.RuneCountInString(text.Text) == n.Count {
		return text.Text, nil
	}
	// FPDFText_GetText loses characters beyond the Basic Multilingual Plane (its UTF-16 buffer
	// is sized by characters): such a page, and only such a page, is read one character at a
	// time, which costs about three times as much.
	units := make([]rune, 0, n.Count)
	for i := 0; i < n.Count; i++ {
		u, err := inst.FPDFText_GetUnicode(&requests.FPDFText_GetUnicode{TextPage: tp.TextPage, Index: i})
		if err != nil {
			return "", pdfiumError(fmt.Errorf("read text of page %d: %w", index, err))
		}
		units = append(units, rune(u.Unicode))
	}
	return string(decodeUnits(make([]byte, 0, 2*n.Count), units)), nil
}

// pdfiumError classifies what PDFium reported: a trap of the WebAssembly module that ran out
// of its capped memory is a broken limit; any other failure a file PDFium could not read.
func pdfiumError(err error) error {
	if err == nil {
		return nil
	}
	if s := err.Error(); strings.Contains(s, "out of memory") || strings.Contains(s, "memory") && strings.Contains(s, "grow") {
		return fmt.Errorf("%w: %w", errInflateLimit, err)
	}
	return fmt.Errorf("pdfium: %w", err)
}

// decodeUnits turns PDFium's per-character code units into text: characters beyond the Basic
// Multilingual Plane (mathematical letters of LuaTeX and Word) come as surrogate pairs from
// some fonts and whole from others; both are kept, lone halves dropped.
func decodeUnits(dst []byte, units []rune) []byte {
	var hi rune
	for _, r := range units {
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			hi = r
			continue
		case utf16.IsSurrogate(r):
			if hi == 0 {
				continue
			}
			r = utf16.DecodeRune(hi, r)
		case r == 0:
			hi = 0
			continue
		}
		hi = 0
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}
