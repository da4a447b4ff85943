package body

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	mcharset "github.com/emersion/go-message/charset"
	htmlcharset "golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// toUTF8 returns data as UTF-8 text. declared is the charset the MIME
// header named ("" if none); data is still in that charset unless converted
// is true (go-message converts known charsets itself).
//
// Mail in the wild often lies about its charset or leaves it out, so bytes
// that are not valid UTF-8 get a second chance: HTML is sniffed for a BOM or
// a <meta charset>, and anything else is read as windows-1252, the usual
// charset of unlabelled 8-bit mail and a superset of ISO-8859-1's printable
// range. Only text explicitly labelled UTF-8 keeps its broken bytes, as
// U+FFFD, because re-reading real UTF-8 as windows-1252 would garble all of
// it to repair a few bytes.
func toUTF8(data []byte, declared string, converted, isHTML bool) string {
	if converted {
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	if utf8.Valid(data) {
		return string(data)
	}
	switch strings.ToLower(declared) {
	case "utf-8", "utf8":
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	if isHTML {
		enc, _, _ := htmlcharset.DetermineEncoding(data, "text/html")
		return decodeWith(enc, data)
	}
	return decodeWith(charmap.Windows1252, data)
}

// headerUTF8 is toUTF8 for a header value, which declares no charset. Nearly every value is
// valid UTF-8 already and is returned as it is, without the two copies of a conversion.
func headerUTF8(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	return toUTF8([]byte(v), "", false, false)
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b. Used
// on input cut at a read limit, so that a character split by the cut does
// not make valid UTF-8 look invalid; if the input was in another charset,
// the dropped bytes lay at the cut anyway.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// decodeCharset converts data from the named charset, falling back as
// toUTF8 does when the name is unknown.
func decodeCharset(data []byte, name string, isHTML bool) string {
	if name == "" || strings.EqualFold(name, "us-ascii") || strings.EqualFold(name, "utf-8") {
		return toUTF8(data, name, false, isHTML)
	}
	r, err := mcharset.Reader(name, bytes.NewReader(data))
	if err != nil {
		return toUTF8(data, "", false, isHTML)
	}
	var b strings.Builder
	if _, err := io.Copy(&b, r); err != nil {
		return toUTF8(data, "", false, isHTML)
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// decodeWith converts data with enc. A UTF-8 or UTF-16 byte order mark
// overrides enc, as it does in browsers.
func decodeWith(enc encoding.Encoding, data []byte) string {
	t := unicode.BOMOverride(enc.NewDecoder())
	out, _, err := transform.Bytes(t, data)
	if err != nil {
		// x/text decoders replace bad input rather than fail; this is
		// a last resort.
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// truncateUTF8 cuts s to at most max bytes without splitting a character;
// truncated reports whether anything was cut.
func truncateUTF8(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	if max <= 0 {
		return "", true
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}

// cleanText normalises line ends to \n and drops control characters other
// than tab and newline: they carry no meaning for search and some of them
// upset JSON consumers.
func cleanText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r':
			// CRLF and a lone CR both end a line.
			if i+1 < len(s) && s[i+1] == '\n' {
				continue
			}
			b.WriteByte('\n')
		case (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
