package body

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
)

// This is the fallback PDF reader (pdfium.go says when it runs). PDF text was first read by a
// small extractor of its own rather than a PDF library: the pure-Go
// readers on offer either have no tagged release or have not had one for years, and all of
// them parse the document's object graph from its cross-reference table, which is large
// surface for hostile files. Search needs only the strings that text-showing operators (Tj,
// TJ, ', ") draw, so this reads every stream that is unfiltered or FlateDecode-compressed and
// not an image, font or metadata, decompresses it within the shared budget, and scans it for
// those operators. It reads simple fonts (WinAnsi/PDFDocEncoding bytes), UTF-16 strings with
// a byte-order mark, and composite fonts through their ToUnicode maps (pdffonts.go). Objects
// inside object streams are dictionaries, never content, so they need not be opened for
// the text itself.

var (
	errEncrypted = errors.New("file is encrypted")
	errNoText    = errors.New("no readable content stream")
)

func pdfText(w *textBuf, data []byte, lim *TextLimits) error {
	if !bytes.HasPrefix(bytes.TrimLeft(data[:min(len(data), 1024)], "\x00\t\r\n "), []byte("%PDF-")) {
		return errors.New("no PDF header")
	}
	if bytes.Contains(data, []byte("/Encrypt")) {
		return errEncrypted
	}
	budget := lim.MaxInflated
	fonts := &pdfFonts{data: data, w: w, budget: &budget}
	var firstErr error
	streams, read := 0, 0
	// lo bounds the backward search for a stream's dictionary: it never covers bytes twice, so
	// a file of repeated "stream" keywords costs time linear in its size (it cost 4 KiB of
	// scanning per keyword).
	lo := 0
	for pos := 0; ; {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		i := bytes.Index(data[pos:], []byte("stream"))
		if i < 0 {
			break
		}
		kw := pos + i
		pos = kw + len("stream")
		if kw >= 3 && string(data[kw-3:kw]) == "end" {
			lo = pos
			continue // "endstream"
		}
		start := pos
		if start < len(data) && data[start] == '\r' {
			start++
		}
		if start < len(data) && data[start] == '\n' {
			start++
		} else if start == pos {
			continue // "stream" inside something else
		}
		dict := streamDict(data, lo, kw)
		if dict == nil {
			lo = kw // no "obj" before kw need be looked at again
			continue
		}
		end := streamEnd(data, dict, start)
		if end < 0 {
			if firstErr == nil {
				firstErr = errors.New("stream without endstream")
			}
			break
		}
		pos, lo = end, end
		if !contentStream(dict) {
			continue
		}
		streams++
		raw := data[start:end]
		var content []byte
		if bytes.Contains(dict, []byte("/FlateDecode")) || bytes.Contains(dict, []byte("/Fl ")) || bytes.Contains(dict, []byte("/Fl/")) {
			var err error
			content, err = inflate(w, raw, &budget)
			if errors.Is(err, errInflateLimit) || w.ctx.Err() != nil {
				return err
			}
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("stream at byte %d: %w", kw, err)
				}
				continue
			}
		} else {
			if budget -= int64(len(raw)); budget < 0 {
				return errInflateLimit
			}
			content = raw
		}
		read++
		var fontMaps map[string]*toUnicode
		if bytes.IndexByte(content, '<') >= 0 {
			// Hex strings are where composite fonts' glyph ids are.
			fontMaps = fonts.fontsFor(objectAt(data, kw))
		}
		if err := showText(w, content, fontMaps); err != nil {
			return err
		}
		w.newline()
	}
	switch {
	case read == 0 && firstErr != nil:
		return firstErr
	case read == 0 && streams == 0:
		return errNoText
	}
	return nil
}

// streamDict returns the dictionary before the "stream" keyword at kw: from the last "obj"
// before it, within a bound.
func streamDict(data []byte, after, kw int) []byte {
	from := max(after, kw-4096)
	j := bytes.LastIndex(data[from:kw], []byte("obj"))
	if j < 0 {
		return nil
	}
	d := data[from+j+3 : kw]
	if !bytes.Contains(d, []byte("<<")) {
		return nil
	}
	return d
}

// streamEnd finds the end of a stream's data: by a direct /Length when it lands on
// "endstream", else by searching for the keyword.
func streamEnd(data, dict []byte, start int) int {
	if n, ok := directLength(dict); ok && n >= 0 && start+n <= len(data) {
		rest := bytes.TrimLeft(data[start+n:min(len(data), start+n+16)], "\r\n \t")
		if bytes.HasPrefix(rest, []byte("endstream")) {
			return start + n
		}
	}
	k := bytes.Index(data[start:], []byte("endstream"))
	if k < 0 {
		return -1
	}
	end := start + k
	for end > start && (data[end-1] == '\n' || data[end-1] == '\r') {
		end--
	}
	return end
}

func directLength(dict []byte) (int, bool) {
	i := bytes.Index(dict, []byte("/Length"))
	if i < 0 || bytes.HasPrefix(dict[i+7:], []byte("1")) {
		return 0, false
	}
	f := bytes.Fields(dict[i+7 : min(len(dict), i+40)])
	if len(f) == 0 {
		return 0, false
	}
	num := bytes.TrimRight(f[0], "/>")
	n, err := strconv.Atoi(string(num))
	if err != nil || (len(f) >= 3 && string(f[2]) == "R") || (len(f) >= 3 && bytes.HasPrefix(f[2], []byte("R"))) {
		return 0, false
	}
	return n, true
}

// contentStream tells page or form content from images, fonts, metadata and the like.
func contentStream(dict []byte) bool {
	for _, skip := range []string{"/Image", "/Length1", "/Length2", "/Length3", "/FontFile", "/Type1C",
		"/CIDFontType0C", "/OpenType", "/Metadata", "/XRef", "/ObjStm", "/EmbeddedFile", "/ICCBased", "/N 3", "/N 4",
		"/DCTDecode", "/JPXDecode", "/CCITTFaxDecode", "/JBIG2Decode", "/LZWDecode", "/RunLengthDecode",
		"/ASCII85Decode", "/ASCIIHexDecode", "/DecodeParms", "/Crypt"} {
		if bytes.Contains(dict, []byte(skip)) {
			return false
		}
	}
	return true
}

// maxPDFStream caps the decompressed bytes of one content stream that are scanned: a stream
// is held whole while it is scanned, so this, not the file's budget, bounds the memory of a
// PDF. Text beyond it in the same stream is not read (real pages hold far less).
const maxPDFStream = 8 << 20

// inflate decompresses one stream, at most maxPDFStream bytes of it, within the budget.
func inflate(w *textBuf, raw []byte, budget *int64) ([]byte, error) {
	zr, err := zlibReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	defer zlibReaders.Put(zr)
	buf := make([]byte, min(maxPDFStream, 8*len(raw)+512))
	n := 0
	r := &ctxReader{ctx: w.ctx, r: zr, budget: budget}
	for n < maxPDFStream {
		if n == len(buf) {
			buf = append(buf, make([]byte, min(len(buf), maxPDFStream-len(buf)))...)
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return buf[:n], err
		}
	}
	return buf[:n], nil
}

// zlibReaders holds zlib readers for reuse: each new one allocates a 32 KB window and its
// tables, and a PDF has a stream per page and per form.
var zlibReaders sync.Pool

// zlibReader returns a zlib reader of r, reused from zlibReaders when one is there. Put it
// back when done; a zlib reader's Close only reports its error.
func zlibReader(r io.Reader) (io.ReadCloser, error) {
	if zr, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := zr.(zlib.Resetter).Reset(r, nil); err != nil {
			return nil, err
		}
		return zr, nil
	}
	return zlib.NewReader(r)
}

// showText scans a content stream for text-showing operators and writes their strings.
func showText(w *textBuf, c []byte, fonts map[string]*toUnicode) error {
	var name string       // the last name operand
	var cur *toUnicode    // the current font's map, if it has one
	var operands [][]byte // strings since the last operator
	var arr [][]byte      // strings of the TJ array being read
	var gaps []bool       // a wide negative kern before arr[i]
	inArray := false
	kern := false
	var scratch []byte // reused by literal strings outside arrays
	for i := 0; i < len(c); {
		if i&0xffff == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		ch := c[i]
		switch {
		case ch == '%':
			for i < len(c) && c[i] != '\n' && c[i] != '\r' {
				i++
			}
		case ch == '(':
			var s []byte
			var n int
			s, n = literalString(c[i:], scratch)
			if inArray {
				// Kept until the array's operator: a copy of its own.
				s = bytes.Clone(s)
			} else {
				scratch = s
			}
			i += n
			if inArray {
				arr, gaps = append(arr, s), append(gaps, kern)
				kern = false
			} else {
				operands = append(operands[:0], s)
			}
		case ch == '<' && i+1 < len(c) && c[i+1] == '<':
			i += 2
		case ch == '>' && i+1 < len(c) && c[i+1] == '>':
			i += 2
		case ch == '<':
			s, n := hexString(c[i:])
			i += n
			if inArray {
				arr, gaps = append(arr, s), append(gaps, kern)
				kern = false
			} else {
				operands = append(operands[:0], s)
			}
		case ch == '[':
			inArray, arr, gaps, kern = true, arr[:0], gaps[:0], false
			i++
		case ch == '/':
			j := i + 1
			for j < len(c) && !isPDFSpace(c[j]) && !isPDFDelim(c[j]) {
				j++
			}
			name = string(c[i+1 : j])
			i = j
		case ch == ']':
			inArray = false
			i++
		case isPDFSpace(ch):
			i++
		case ch == '-' || ch == '.' || ch == '+' || (ch >= '0' && ch <= '9'):
			j := i + 1
			for j < len(c) && (c[j] == '.' || (c[j] >= '0' && c[j] <= '9')) {
				j++
			}
			if inArray {
				if v, err := strconv.ParseFloat(string(c[i:j]), 64); err == nil && v < -200 {
					kern = true
				}
			}
			i = j
		default:
			j := i
			for j < len(c) && !isPDFSpace(c[j]) && !isPDFDelim(c[j]) {
				j++
			}
			if j == i {
				j++ // a stray delimiter
			}
			op := string(c[i:j])
			i = j
			var err error
			switch op {
			case "Tf":
				cur = fonts[name]
			case "Tj":
				err = writePDFStrings(w, operands, nil, cur)
			case "'", "\"":
				w.newline()
				err = writePDFStrings(w, operands, nil, cur)
			case "TJ":
				err = writePDFStrings(w, arr, gaps, cur)
				arr, gaps = arr[:0], gaps[:0]
			case "T*", "Td", "TD":
				w.newline()
			case "ET":
				w.newline()
			case "BI":
				// Inline image data is binary: skip to its end marker.
				if k := bytes.Index(c[i:], []byte("EI")); k >= 0 {
					i += k + 2
				} else {
					i = len(c)
				}
			}
			if err != nil {
				return err
			}
			if !inArray {
				operands = operands[:0]
			}
		}
	}
	return nil
}

func writePDFStrings(w *textBuf, ss [][]byte, gaps []bool, font *toUnicode) error {
	for k, s := range ss {
		if gaps != nil && gaps[k] {
			w.space()
		}
		if font != nil {
			if err := w.write(font.decode(s)); err != nil {
				return err
			}
			continue
		}
		if cidCodes(s) {
			// Glyph ids of a composite font: without its ToUnicode map they would be
			// indexed as noise.
			continue
		}
		if err := w.write(pdfString(s)); err != nil {
			return err
		}
	}
	return nil
}

// cidCodes tells a string of two-byte glyph ids (Identity-H and similar), which composite
// fonts use: even length, and a high byte of zero in at least half the pairs, which no
// single-byte text has.
func cidCodes(b []byte) bool {
	if len(b) < 2 || len(b)%2 != 0 || (b[0] == 0xfe && b[1] == 0xff) {
		return false
	}
	zeros := 0
	for i := 0; i < len(b); i += 2 {
		if b[i] == 0 {
			zeros++
		}
	}
	return 2*zeros >= len(b)/2
}

// pdfString decodes a string of a simple font: UTF-16BE with a byte-order mark, else
// windows-1252, which agrees with WinAnsiEncoding and with PDFDocEncoding on the letters.
func pdfString(b []byte) string {
	if len(b) >= 2 && b[0] == 0xfe && b[1] == 0xff {
		u := make([]uint16, 0, len(b)/2)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		}
		return string(utf16.Decode(u))
	}
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	var sb strings.Builder
	for _, c := range b {
		writeCP1252(&sb, c)
	}
	return sb.String()
}

func isPDFSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isPDFDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

// literalString reads a (...) string at the start of c; n is the bytes consumed.
func literalString(c []byte, out []byte) (s []byte, n int) {
	depth := 0
	out = out[:0]
	i := 0
	for i < len(c) {
		ch := c[i]
		switch {
		case ch == '(':
			if depth > 0 {
				out = append(out, ch)
			}
			depth++
			i++
		case ch == ')':
			depth--
			i++
			if depth == 0 {
				return out, i
			}
			out = append(out, ch)
		case ch == '\\' && i+1 < len(c):
			e := c[i+1]
			i += 2
			switch e {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'b', 'f':
			case '\r':
				if i < len(c) && c[i] == '\n' {
					i++
				}
			case '\n':
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for k := 0; k < 2 && i < len(c) && c[i] >= '0' && c[i] <= '7'; k++ {
						v = v*8 + int(c[i]-'0')
						i++
					}
					out = append(out, byte(v))
				} else {
					out = append(out, e)
				}
			}
		default:
			out = append(out, ch)
			i++
		}
	}
	return out, i
}

// hexString reads a <...> string at the start of c.
func hexString(c []byte) (s []byte, n int) {
	var out []byte
	hi, half := byte(0), false
	for i := 1; i < len(c); i++ {
		ch := c[i]
		var v byte
		switch {
		case ch == '>':
			if half {
				out = append(out, hi<<4)
			}
			return out, i + 1
		case ch >= '0' && ch <= '9':
			v = ch - '0'
		case ch >= 'a' && ch <= 'f':
			v = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			v = ch - 'A' + 10
		default:
			continue
		}
		if half {
			out = append(out, hi<<4|v)
		} else {
			hi = v
		}
		half = !half
	}
	return out, len(c)
}
