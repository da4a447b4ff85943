package body

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// OOXML (DOCX, XLSX, PPTX) and ODF (ODT, ODS, ODP) files are ZIP archives of XML parts. They
// are read with archive/zip and encoding/xml's streaming tokenizer: no library is needed, and
// both are bounded here by the member count (checked before archive/zip reads the central
// directory) and by one budget of decompressed bytes for the whole file. encoding/xml expands
// no entities beyond the predefined ones, so there is no entity bomb either.

// zipText reads a ZIP container. want is the format the type or name promised; the members
// decide in the end, so a DOCX sent as application/octet-stream, or a ZIP named .docx, is read
// for what it is.
func zipText(w *textBuf, data []byte, lim *TextLimits, want Format) (Format, error) {
	if n, ok := zipEntryCount(data); ok && n > lim.MaxEntries {
		return want, fmt.Errorf("%w: %d members, at most %d", errTooManyParts, n, lim.MaxEntries)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return want, fmt.Errorf("read zip: %w", err)
	}
	if len(zr.File) > lim.MaxEntries {
		return want, fmt.Errorf("%w: %d members, at most %d", errTooManyParts, len(zr.File), lim.MaxEntries)
	}
	members := map[string]*zip.File{}
	for _, f := range zr.File {
		members[f.Name] = f
	}
	budget := lim.MaxInflated
	x := &zipReader{w: w, members: members, budget: &budget}
	switch {
	case members["word/document.xml"] != nil:
		return FormatDOCX, x.docx()
	case members["xl/workbook.xml"] != nil:
		return FormatXLSX, x.xlsx()
	case members["ppt/presentation.xml"] != nil:
		return FormatPPTX, x.pptx()
	case members["content.xml"] != nil && members["mimetype"] != nil:
		return FormatODF, x.odf()
	case want == FormatDOCX || want == FormatXLSX || want == FormatPPTX || want == FormatODF:
		return want, fmt.Errorf("zip lacks the main part of a %s file", want)
	}
	// A plain ZIP: its member names are what can be searched.
	for i, f := range zr.File {
		if i == maxZipNames {
			break
		}
		if err := w.write(f.Name); err != nil {
			return FormatZIP, err
		}
		w.newline()
	}
	return FormatZIP, nil
}

// zipEntryCount reads the member count from the end-of-central-directory record, so that a
// directory of millions of entries is refused before archive/zip allocates for each. ok is
// false when there is no such record or it defers to ZIP64 (archive/zip then decides, bounded
// by the size of the input).
func zipEntryCount(data []byte) (int, bool) {
	const eocdLen = 22
	start := max(0, len(data)-(eocdLen+0xffff))
	i := bytes.LastIndex(data[start:], []byte("PK\x05\x06"))
	if i < 0 || start+i+eocdLen > len(data) {
		return 0, false
	}
	n := binary.LittleEndian.Uint16(data[start+i+10:])
	if n == 0xffff {
		return 0, false
	}
	return int(n), true
}

type zipReader struct {
	w       *textBuf
	members map[string]*zip.File
	budget  *int64
}

// open opens a member for reading within the budget and the context.
func (x *zipReader) open(name string) (io.ReadCloser, error) {
	f := x.members[name]
	if f == nil {
		return nil, nil
	}
	if f.Flags&0x1 != 0 {
		return nil, fmt.Errorf("%w: member %q", errEncrypted, name)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("open member %q: %w", name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{&runSplitter{r: &ctxReader{ctx: x.w.ctx, r: rc, budget: x.budget}}, rc}, nil
}

// maxXMLRun bounds the bytes between two '<' that reach the XML decoder. encoding/xml returns
// a text node whole, so a member of one huge text node would be held whole, up to the inflate
// budget; splitting the run with an empty element keeps each token small. In real documents
// no text run comes near it. An attribute value this long is broken by the split, and the
// file then fails as corrupt, as such a file deserves.
const maxXMLRun = 256 << 10

// runSplitter inserts "<_/>" into every run of maxXMLRun bytes without a '<'.
type runSplitter struct {
	r       io.Reader
	run     int
	pending []byte // the rest of an inserted element not yet returned
}

var splitElement = []byte("<_/>")

func (s *runSplitter) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	room := maxXMLRun - s.run
	if room <= 0 {
		s.run = 0
		s.pending = splitElement
		return s.Read(p)
	}
	if len(p) > room {
		p = p[:room]
	}
	n, err := s.r.Read(p)
	if i := bytes.LastIndexByte(p[:n], '<'); i >= 0 {
		s.run = n - i - 1
	} else {
		s.run += n
	}
	return n, err
}

// numbered returns the members named prefix + number + suffix in number order.
func (x *zipReader) numbered(prefix, suffix string) []string {
	type m struct {
		name string
		n    int
	}
	var ms []m
	for name := range x.members {
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
			continue
		}
		n, err := strconv.Atoi(name[len(prefix) : len(name)-len(suffix)])
		if err == nil {
			ms = append(ms, m{name, n})
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].n < ms[j].n })
	out := make([]string, len(ms))
	for i := range ms {
		out[i] = ms[i].name
	}
	return out
}

// xmlRules say which text of an XML part is searchable.
type xmlRules struct {
	text  func(local string) bool // character data directly inside these elements is text
	all   bool                    // all character data is text (ODF), not only in text elements
	para  func(local string) bool // these elements end a line
	space func(local string) bool // these elements stand for white space
	// cell, when set, is told of each start element with its attributes (XLSX cell types).
	cell func(se xml.StartElement)
}

// part streams the text of one XML member into w.
func (x *zipReader) part(name string, rules xmlRules) error {
	rc, err := x.open(name)
	if err != nil || rc == nil {
		return err
	}
	defer rc.Close()
	d := xml.NewDecoder(rc)
	d.Strict = false
	inText := 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read member %q: %w", name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if rules.cell != nil {
				rules.cell(t)
			}
			local := t.Name.Local
			if rules.space != nil && rules.space(local) {
				x.w.space()
			}
			if rules.text != nil && rules.text(local) {
				inText++
			}
		case xml.EndElement:
			local := t.Name.Local
			if rules.text != nil && rules.text(local) && inText > 0 {
				inText--
			}
			if rules.para != nil && rules.para(local) {
				x.w.newline()
			}
		case xml.CharData:
			if inText > 0 || rules.all {
				if err := x.w.write(string(t)); err != nil {
					return err
				}
			}
		}
	}
}

func is(names ...string) func(string) bool {
	return func(s string) bool {
		for _, n := range names {
			if s == n {
				return true
			}
		}
		return false
	}
}

func (x *zipReader) docx() error {
	rules := xmlRules{text: is("t"), para: is("p", "tr"), space: is("tab", "br", "cr", "tc")}
	parts := append([]string{"word/document.xml", "word/footnotes.xml", "word/endnotes.xml"},
		append(x.numbered("word/header", ".xml"), x.numbered("word/footer", ".xml")...)...)
	for _, p := range parts {
		if err := x.part(p, rules); err != nil {
			return err
		}
		x.w.newline()
	}
	return nil
}

func (x *zipReader) xlsx() error {
	if err := x.part("xl/sharedStrings.xml", xmlRules{text: is("t"), para: is("si")}); err != nil {
		return err
	}
	x.w.newline()
	// Cells hold inline strings (<is><t>) and values (<v>); a value of a shared-string cell
	// (t="s") is an index into the table read above, not text.
	shared := false
	rules := xmlRules{
		text: func(local string) bool { return local == "t" || (local == "v" && !shared) },
		para: is("row"), space: is("c"),
		cell: func(se xml.StartElement) {
			if se.Name.Local != "c" {
				return
			}
			shared = false
			for _, a := range se.Attr {
				if a.Name.Local == "t" && a.Value == "s" {
					shared = true
				}
			}
		},
	}
	for _, p := range x.numbered("xl/worksheets/sheet", ".xml") {
		if err := x.part(p, rules); err != nil {
			return err
		}
		x.w.newline()
	}
	return nil
}

func (x *zipReader) pptx() error {
	rules := xmlRules{text: is("t"), para: is("p"), space: is("br", "tab")}
	for _, prefix := range []string{"ppt/slides/slide", "ppt/notesSlides/notesSlide"} {
		for _, p := range x.numbered(prefix, ".xml") {
			if err := x.part(p, rules); err != nil {
				return err
			}
			x.w.newline()
		}
	}
	return nil
}

func (x *zipReader) odf() error {
	return x.part("content.xml", xmlRules{all: true, para: is("p", "h", "table-row"),
		space: is("s", "tab", "line-break", "table-cell")})
}
