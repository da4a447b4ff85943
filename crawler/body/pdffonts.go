package body

import (
	"bytes"
	"regexp"
	"strconv"
	"unicode/utf16"
)

// Composite fonts (Type0, Identity-H), which browsers and many office suites write, show
// glyph ids; their text is readable only through the font's ToUnicode map. These are found
// without the cross-reference table: objects are located by scanning for "N G obj", each
// page's /Contents and /Resources /Font entries are followed to the fonts' /ToUnicode
// streams, and the bfchar and bfrange sections of those maps are read. Form XObjects and
// resources inherited from the page tree are not followed: their text falls back to the
// simple-font reading.

// maxPDFObjects caps the objects indexed; maxCMapEntries the mappings of one ToUnicode map.
const (
	maxPDFObjects  = 1 << 20
	maxCMapEntries = 1 << 16
)

// toUnicode maps the codes of one font to text.
type toUnicode struct {
	codeLen int // bytes per code: 1 or 2
	m       map[uint32]string
}

// decode maps every code of s; unknown codes are dropped.
func (t *toUnicode) decode(s []byte) string {
	if t.codeLen < 1 {
		return ""
	}
	var out []byte
	for i := 0; i+t.codeLen <= len(s); i += t.codeLen {
		var c uint32
		for k := 0; k < t.codeLen; k++ {
			c = c<<8 | uint32(s[i+k])
		}
		out = append(out, t.m[c]...)
	}
	return string(out)
}

var objHeader = regexp.MustCompile(`(\d{1,10})\s+\d{1,5}\s+obj\b`)

// pdfFonts knows, per content stream object, the ToUnicode map of each font name.
type pdfFonts struct {
	data    []byte
	objs    map[int]int // object number → offset just past "obj"
	byObj   map[int]map[string]*toUnicode
	cmaps   map[int]*toUnicode // font object → map (nil: none)
	w       *textBuf
	budget  *int64
	scanned bool
	// dictBytes is what dictionary reading may still scan: objects can overlap, and a hostile
	// file could otherwise make every one of a million headers scan far ahead.
	dictBytes int
}

// fontsFor returns the font maps of the page whose content stream is object obj, or nil.
func (f *pdfFonts) fontsFor(obj int) map[string]*toUnicode {
	if !f.scanned {
		f.scan()
	}
	return f.byObj[obj]
}

func (f *pdfFonts) scan() {
	f.scanned = true
	f.objs = map[int]int{}
	f.byObj = map[int]map[string]*toUnicode{}
	f.cmaps = map[int]*toUnicode{}
	f.dictBytes = 2*len(f.data) + 1<<20
	for _, m := range objHeader.FindAllSubmatchIndex(f.data, maxPDFObjects) {
		n, err := strconv.Atoi(string(f.data[m[2]:m[3]]))
		if err == nil {
			f.objs[n] = m[1]
		}
	}
	for _, off := range f.objs {
		if f.w.ctx.Err() != nil || f.dictBytes <= 0 {
			return
		}
		if !bytes.Contains(f.data[off:min(len(f.data), off+1024)], []byte("/Page")) {
			continue
		}
		d := f.objectDict(off)
		if d == nil || !isPageDict(d) {
			continue
		}
		fonts := f.pageFonts(d)
		if len(fonts) == 0 {
			continue
		}
		for _, c := range contentRefs(d) {
			f.byObj[c] = fonts
		}
	}
}

// objectAt returns the number of the object whose header is the last before kw, or -1.
func objectAt(data []byte, kw int) int {
	from := max(0, kw-4096)
	ms := objHeader.FindAllSubmatchIndex(data[from:kw], -1)
	if len(ms) == 0 {
		return -1
	}
	m := ms[len(ms)-1]
	n, err := strconv.Atoi(string(data[from+m[2] : from+m[3]]))
	if err != nil {
		return -1
	}
	return n
}

// objectDict returns the top-level dictionary of the object at off.
func (f *pdfFonts) objectDict(off int) []byte {
	rest := bytes.TrimLeft(f.data[off:min(len(f.data), off+64)], " \t\r\n")
	if !bytes.HasPrefix(rest, []byte("<<")) {
		return nil
	}
	return f.dict(f.data[off+bytes.Index(f.data[off:], []byte("<<")):])
}

// dict reads the dictionary at the start of b within the scanning budget.
func (f *pdfFonts) dict(b []byte) []byte {
	if f.dictBytes <= 0 {
		return nil
	}
	b = b[:min(len(b), 64<<10, f.dictBytes)]
	d := balancedDict(b)
	if d == nil {
		f.dictBytes -= len(b)
	} else {
		f.dictBytes -= len(d)
	}
	return d
}

func isPageDict(d []byte) bool {
	i := bytes.Index(d, []byte("/Type"))
	if i < 0 {
		return false
	}
	rest := bytes.TrimLeft(d[i+5:], " \t\r\n")
	return bytes.HasPrefix(rest, []byte("/Page")) && !bytes.HasPrefix(rest, []byte("/Pages"))
}

// balancedDict returns the << ... >> at the start of b, nested dictionaries included.
func balancedDict(b []byte) []byte {
	depth := 0
	for i := 0; i+1 < len(b); i++ {
		switch {
		case b[i] == '<' && b[i+1] == '<':
			depth++
			i++
		case b[i] == '>' && b[i+1] == '>':
			depth--
			i++
			if depth == 0 {
				return b[:i+1]
			}
		}
	}
	return nil
}

var (
	refRE    = regexp.MustCompile(`^\s*(\d{1,10})\s+\d{1,5}\s+R`)
	anyRefRE = regexp.MustCompile(`(\d{1,10})\s+\d{1,5}\s+R`)
)

// value returns the value of key in dict, following an indirect reference to a dictionary.
func (f *pdfFonts) value(dict []byte, key string) []byte {
	i := bytes.Index(dict, []byte(key))
	if i < 0 {
		return nil
	}
	rest := dict[i+len(key):]
	if m := refRE.FindSubmatch(rest); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		if off, ok := f.objs[n]; ok {
			return f.objectDict(off)
		}
		return nil
	}
	rest = bytes.TrimLeft(rest, " \t\r\n")
	if bytes.HasPrefix(rest, []byte("<<")) {
		return f.dict(rest)
	}
	return nil
}

var fontEntryRE = regexp.MustCompile(`/([^\s/<>\[\]()]+)\s*(\d{1,10})\s+\d{1,5}\s+R`)

// pageFonts maps the font names of a page to their ToUnicode maps.
func (f *pdfFonts) pageFonts(page []byte) map[string]*toUnicode {
	res := f.value(page, "/Resources")
	if res == nil {
		return nil
	}
	fonts := f.value(res, "/Font")
	if fonts == nil {
		return nil
	}
	out := map[string]*toUnicode{}
	for _, m := range fontEntryRE.FindAllSubmatch(fonts[2:], 1000) {
		n, _ := strconv.Atoi(string(m[2]))
		if cm := f.fontMap(n); cm != nil {
			out[string(m[1])] = cm
		}
	}
	return out
}

// fontMap reads the ToUnicode map of font object n.
func (f *pdfFonts) fontMap(n int) *toUnicode {
	if cm, ok := f.cmaps[n]; ok {
		return cm
	}
	f.cmaps[n] = nil
	off, ok := f.objs[n]
	if !ok {
		return nil
	}
	d := f.objectDict(off)
	i := bytes.Index(d, []byte("/ToUnicode"))
	if i < 0 {
		return nil
	}
	m := refRE.FindSubmatch(d[i+len("/ToUnicode"):])
	if m == nil {
		return nil
	}
	sn, _ := strconv.Atoi(string(m[1]))
	soff, ok := f.objs[sn]
	if !ok {
		return nil
	}
	cmap := f.streamData(soff)
	if cmap == nil {
		return nil
	}
	cm := parseCMap(cmap)
	f.cmaps[n] = cm
	return cm
}

// streamData returns the decoded data of the stream object at off, or nil.
func (f *pdfFonts) streamData(off int) []byte {
	end := min(len(f.data), off+4096)
	k := bytes.Index(f.data[off:end], []byte("stream"))
	if k < 0 {
		return nil
	}
	kw := off + k
	start := kw + len("stream")
	if start < len(f.data) && f.data[start] == '\r' {
		start++
	}
	if start < len(f.data) && f.data[start] == '\n' {
		start++
	}
	dict := f.data[off:kw]
	stop := streamEnd(f.data, dict, start)
	if stop < start {
		return nil
	}
	raw := f.data[start:stop]
	if !bytes.Contains(dict, []byte("/FlateDecode")) {
		return raw
	}
	out, err := inflate(f.w, raw, f.budget)
	if err != nil {
		return nil
	}
	return out
}

// parseCMap reads the bfchar and bfrange sections of a ToUnicode map.
func parseCMap(b []byte) *toUnicode {
	cm := &toUnicode{codeLen: 2, m: map[uint32]string{}}
	toks := cmapTokens(b)
	for i := 0; i < len(toks) && len(cm.m) < maxCMapEntries; i++ {
		switch string(toks[i]) {
		case "beginbfchar":
			for i++; i+1 < len(toks) && string(toks[i]) != "endbfchar"; i += 2 {
				src, dst := hexBytes(toks[i]), hexBytes(toks[i+1])
				if len(src) == 0 || dst == nil {
					break
				}
				cm.codeLen = min(len(src), 4)
				cm.m[code(src)] = utf16BE(dst)
			}
		case "beginbfrange":
			for i++; i+2 < len(toks) && string(toks[i]) != "endbfrange"; i += 3 {
				lo, hi := hexBytes(toks[i]), hexBytes(toks[i+1])
				if len(lo) == 0 || hi == nil {
					break
				}
				cm.codeLen = min(len(lo), 4)
				a, z := code(lo), code(hi)
				if z < a || z-a > maxCMapEntries {
					continue
				}
				if string(toks[i+2]) == "[" {
					k := i + 3
					for n := uint32(0); n <= z-a && k < len(toks) && string(toks[k]) != "]"; n, k = n+1, k+1 {
						cm.m[a+n] = utf16BE(hexBytes(toks[k]))
					}
					for k < len(toks) && string(toks[k]) != "]" {
						k++
					}
					i = k - 2
					continue
				}
				dst := hexBytes(toks[i+2])
				if len(dst) < 2 {
					continue
				}
				base := utf16.Decode([]uint16{uint16(dst[len(dst)-2])<<8 | uint16(dst[len(dst)-1])})
				if len(base) != 1 {
					continue
				}
				prefix := utf16BE(dst[:len(dst)-2])
				for n := uint32(0); n <= z-a; n++ {
					cm.m[a+n] = prefix + string(base[0]+rune(n))
				}
			}
		}
	}
	if len(cm.m) == 0 {
		return nil
	}
	return cm
}

// cmapTokens splits a CMap into hex strings, brackets and words.
func cmapTokens(b []byte) [][]byte {
	var out [][]byte
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case isPDFSpace(c):
			i++
		case c == '<':
			j := bytes.IndexByte(b[i:], '>')
			if j < 0 {
				return out
			}
			out = append(out, b[i:i+j+1])
			i += j + 1
		case c == '[' || c == ']':
			out = append(out, b[i:i+1])
			i++
		default:
			j := i
			for j < len(b) && !isPDFSpace(b[j]) && b[j] != '<' && b[j] != '[' && b[j] != ']' {
				j++
			}
			out = append(out, b[i:j])
			i = j
		}
	}
	return out
}

// hexBytes decodes a <...> token; nil if it is not one.
func hexBytes(tok []byte) []byte {
	if len(tok) < 2 || tok[0] != '<' {
		return nil
	}
	s, _ := hexString(tok)
	if s == nil {
		s = []byte{}
	}
	return s
}

func code(b []byte) uint32 {
	var c uint32
	for _, x := range b[:min(len(b), 4)] {
		c = c<<8 | uint32(x)
	}
	return c
}

func utf16BE(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return string(utf16.Decode(u))
}

// contentRefs lists the objects of a page's /Contents (one reference or an array).
func contentRefs(page []byte) []int {
	i := bytes.Index(page, []byte("/Contents"))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(page[i+len("/Contents"):], " \t\r\n")
	if bytes.HasPrefix(rest, []byte("[")) {
		end := bytes.IndexByte(rest, ']')
		if end < 0 {
			return nil
		}
		rest = rest[1:end]
		var out []int
		for _, m := range anyRefRE.FindAllSubmatch(rest, 10000) {
			n, _ := strconv.Atoi(string(m[1]))
			out = append(out, n)
		}
		return out
	}
	if m := refRE.FindSubmatch(rest); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		return []int{n}
	}
	return nil
}
