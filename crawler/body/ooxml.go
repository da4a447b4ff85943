package body

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
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
	// value, when set, turns text before it is written (XLSX numbers as displayed).
	value func(s string) string
	// skip: nothing inside these elements is text, whatever the other rules say (ODF number
	// styles' literal text, page-number and sheet-name placeholders).
	skip func(local string) bool
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
	inText, skipped := 0, 0
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
			if rules.skip != nil && rules.skip(local) {
				skipped++
			}
			if rules.space != nil && rules.space(local) {
				x.w.space()
			}
			if rules.text != nil && rules.text(local) {
				inText++
			}
		case xml.EndElement:
			local := t.Name.Local
			if rules.skip != nil && rules.skip(local) && skipped > 0 {
				skipped--
			}
			if rules.text != nil && rules.text(local) && inText > 0 {
				inText--
			}
			if rules.para != nil && rules.para(local) {
				x.w.newline()
			}
		case xml.CharData:
			if (inText > 0 || rules.all) && skipped == 0 {
				s := string(t)
				if rules.value != nil {
					s = rules.value(s)
				}
				if err := x.w.write(s); err != nil {
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
	rules := xmlRules{text: is("t"), para: is("p", "tr"), space: is("tab", "br", "cr", "tc", "footnoteRef", "endnoteRef")}
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
	dates, err := x.xlsxDateStyles()
	if err != nil {
		return err
	}
	date1904, err := x.xlsxDate1904()
	if err != nil {
		return err
	}
	// Cells hold inline strings (<is><t>) and values (<v>); a value of a shared-string cell
	// (t="s") is an index into the table read above, not text. A number is written as Excel
	// shows it in a General cell (15 significant digits, not the float's noise), and as a date
	// when its style's number format is one: a serial number such as 40291 matches no search
	// for its year.
	shared, number, date, inValue := false, false, false, false
	rules := xmlRules{
		text: func(local string) bool { return local == "t" || (local == "v" && !shared) },
		para: is("row"), space: is("c"),
		cell: func(se xml.StartElement) {
			inValue = se.Name.Local == "v"
			if se.Name.Local != "c" {
				return
			}
			shared, number, date = false, true, false
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "t":
					shared = a.Value == "s"
					number = a.Value == "n"
				case "s":
					if i, err := strconv.Atoi(a.Value); err == nil && i >= 0 && i < len(dates) {
						date = dates[i]
					}
				}
			}
		},
		value: func(s string) string {
			if !inValue || !number {
				return s
			}
			return xlsxNumber(s, date, date1904)
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
	// A note (footnote, endnote) sits where it is cited: its number and its body are set
	// apart by spaces, and a line ends after it, so that no word is glued to the next.
	body := xmlRules{all: true, para: is("p", "h", "table-row", "note"),
		space: is("s", "tab", "line-break", "table-cell", "note", "note-citation", "note-body"),
		skip:  is("automatic-styles", "font-face-decls", "scripts", "page-number", "page-count", "sheet-name")}
	if err := x.part("content.xml", body); err != nil {
		return err
	}
	x.w.newline()
	// Headers and footers live in the master pages of styles.xml; the rest of that part is
	// styles, whose few character data (number formats' literal text) are not the document's.
	return x.part("styles.xml", xmlRules{
		text: is("header", "footer", "header-left", "footer-left", "header-first", "footer-first"),
		para: body.para, space: body.space, skip: body.skip,
	})
}

// xlsxDateStyles reads xl/styles.xml: for each cell style (an index into cellXfs), whether its
// number format shows a date or a time.
func (x *zipReader) xlsxDateStyles() ([]bool, error) {
	rc, err := x.open("xl/styles.xml")
	if err != nil || rc == nil {
		return nil, err
	}
	defer rc.Close()
	d := xml.NewDecoder(rc)
	d.Strict = false
	codes := map[int]string{}
	var styles []bool
	inXfs := false
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return styles, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read member %q: %w", "xl/styles.xml", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "numFmt":
				id, code := -1, ""
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "numFmtId":
						id, _ = strconv.Atoi(a.Value)
					case "formatCode":
						code = a.Value
					}
				}
				codes[id] = code
			case "cellXfs":
				inXfs = true
			case "xf":
				if !inXfs {
					continue
				}
				id := 0
				for _, a := range t.Attr {
					if a.Name.Local == "numFmtId" {
						id, _ = strconv.Atoi(a.Value)
					}
				}
				code, custom := codes[id]
				styles = append(styles, isDateFormat(id, code, custom))
			}
		case xml.EndElement:
			if t.Name.Local == "cellXfs" {
				inXfs = false
			}
		}
	}
}

// xlsxDate1904 reports whether the workbook counts days from 1904 (date1904 in workbookPr).
func (x *zipReader) xlsxDate1904() (bool, error) {
	rc, err := x.open("xl/workbook.xml")
	if err != nil || rc == nil {
		return false, err
	}
	defer rc.Close()
	d := xml.NewDecoder(rc)
	d.Strict = false
	for {
		tok, err := d.RawToken()
		if err != nil {
			return false, nil // the sheets will say whether the file is broken
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "workbookPr" {
			for _, a := range se.Attr {
				if a.Name.Local == "date1904" {
					return a.Value == "1" || a.Value == "true", nil
				}
			}
			return false, nil
		}
	}
}

// isDateFormat tells a date or time number format: the built-in ones by id (ECMA-376 18.8.30,
// with the East Asian ids), a custom one by a date or time letter outside quoted text,
// brackets (colours, locales, conditions) and escaped characters.
func isDateFormat(id int, code string, custom bool) bool {
	if !custom {
		return (id >= 14 && id <= 22) || (id >= 27 && id <= 36) || (id >= 45 && id <= 47) || (id >= 50 && id <= 58)
	}
	quoted, bracket := false, false
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case quoted:
			quoted = c != '"'
		case bracket:
			bracket = c != ']'
		case c == '"':
			quoted = true
		case c == '[':
			bracket = true
		case c == '\\' || c == '_' || c == '*':
			i++ // the next character is literal, or padding
		case strings.IndexByte("ymdhsYMDHS", c) >= 0:
			return true
		}
	}
	return false
}

// xlsxNumber writes a cell's stored number as it is displayed: a date (ISO 8601, the time of
// day only when there is one) for a date format, else the number with at most 15 significant
// digits, which is what Excel keeps and shows. Text that is not a number is returned as is.
func xlsxNumber(s string, date, date1904 bool) string {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return s
	}
	if !date || v < 0 || v > 2958465 { // 9999-12-31
		return strconv.FormatFloat(v, 'g', 15, 64)
	}
	base := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC) // serial 60 is Lotus' 1900-02-29
	if date1904 {
		base = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	days := math.Floor(v)
	secs := math.Round((v - days) * 86400)
	t := base.AddDate(0, 0, int(days)).Add(time.Duration(secs) * time.Second)
	switch {
	case days == 0 && secs > 0:
		return t.Format("15:04:05")
	case secs == 0:
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02 15:04:05")
}
