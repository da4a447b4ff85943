package body

import (
	"bytes"
	"mime"
	"path"
	"strings"
)

// htmlInputFactor bounds the HTML read for a text cap: markup and styles
// often outweigh the visible text many times over, but not without limit.
const htmlInputFactor = 8

// textKind is how a part or attachment becomes text.
type textKind int

const (
	kindBinary textKind = iota // not text: leave it to a binary extractor
	kindPlain
	kindHTML
)

// parseMediaType returns the lower-case media type and its parameters,
// salvaging the type from a header that mime.ParseMediaType rejects.
func parseMediaType(v string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil || err == mime.ErrInvalidMediaParameter {
		return mt, params
	}
	mt, _, _ = strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(mt)), nil
}

// attachmentKind decides from the content type, and from the file name
// when the type says nothing useful, whether an attachment is text.
func attachmentKind(mediaType, filename string) textKind {
	switch mediaType {
	case "text/html", "application/xhtml+xml":
		return kindHTML
	case "text/rtf", "text/richtext":
		// Control words would drown the text; a binary extractor
		// reads RTF properly.
		return kindBinary
	case "application/json", "application/xml", "application/csv", "application/x-csv",
		"application/yaml", "application/x-yaml", "application/x-ndjson", "application/ld+json":
		return kindPlain
	case "", "application/octet-stream", "application/unknown", "binary/octet-stream",
		"application/x-download", "application/force-download":
		return kindByExtension(filename)
	}
	switch {
	case strings.HasPrefix(mediaType, "text/"):
		return kindPlain
	case strings.HasPrefix(mediaType, "application/") &&
		(strings.HasSuffix(mediaType, "+json") || strings.HasSuffix(mediaType, "+xml")):
		return kindPlain
	}
	return kindBinary
}

func kindByExtension(filename string) textKind {
	switch strings.ToLower(path.Ext(filename)) {
	case ".txt", ".text", ".csv", ".tsv", ".log", ".md", ".markdown", ".json", ".xml",
		".yaml", ".yml", ".ics", ".vcf", ".ini", ".cfg":
		return kindPlain
	case ".html", ".htm", ".xhtml":
		return kindHTML
	}
	return kindBinary
}

// AttachmentText returns the searchable text of a text-like attachment:
// text/* (except RTF), JSON, XML, YAML and CSV types, and generic types
// (application/octet-stream, none) whose file name ends in .txt, .csv,
// .json, .xml, .html and the like. HTML goes through HTMLToText. The text is
// decoded to UTF-8 from the charset parameter of contentType (sniffed when
// absent: byte order mark, valid UTF-8, else windows-1252) and capped at max
// bytes on a character boundary (max <= 0 means DefaultMaxTextBytes).
//
// ok is false for binary types and for data that holds NUL bytes without a
// UTF-16 or UTF-32 byte order mark: a binary extractor should handle those.
func AttachmentText(contentType, filename string, data []byte, max int) (text string, ok bool) {
	if max <= 0 {
		max = DefaultMaxTextBytes
	}
	mediaType, params := parseMediaType(contentType)
	kind := attachmentKind(mediaType, filename)
	if kind == kindBinary {
		return "", false
	}
	charset := params["charset"]
	if !hasWideBOM(data) && !isWideCharset(charset) && bytes.IndexByte(head(data, 8<<10), 0) >= 0 {
		return "", false
	}

	// Decode only a prefix: any charset yields at least one output byte
	// per four input bytes, so 4*max input bytes fill the cap.
	limit := 4*max + 16
	if kind == kindHTML {
		limit = htmlInputFactor * max
	}
	in := data
	if len(in) > limit {
		in = trimPartialRune(in[:limit])
	}
	s := decodeCharset(in, charset, kind == kindHTML)
	s = strings.TrimPrefix(s, "\ufeff")
	if kind == kindHTML {
		// Reading from a string cannot fail.
		s, _ = HTMLToText(strings.NewReader(s))
	}
	s, _ = truncateUTF8(strings.TrimSpace(cleanText(s)), max)
	return s, true
}

func head(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// hasWideBOM reports a UTF-16 or UTF-32 byte order mark, whose text is full
// of NUL bytes.
func hasWideBOM(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xff, 0xfe}) || bytes.HasPrefix(b, []byte{0xfe, 0xff}) ||
		bytes.HasPrefix(b, []byte{0, 0, 0xfe, 0xff})
}

func isWideCharset(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "utf-16") || strings.HasPrefix(n, "utf-32") ||
		strings.HasPrefix(n, "ucs-2") || strings.HasPrefix(n, "ucs-4")
}
