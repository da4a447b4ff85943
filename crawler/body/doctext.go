package body

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Defaults of TextLimits.
const (
	// DefaultMaxTextChars matches the default indexed_chars of Elasticsearch's attachment
	// processor, so both paths index the same amount of a long document.
	DefaultMaxTextChars = 1_000_000
	// DefaultMaxInflated caps the bytes decompressed from one attachment (ZIP members, PDF
	// streams): a zip bomb stops there.
	DefaultMaxInflated = 64 << 20
	// DefaultMaxEntries caps the members of one ZIP container.
	DefaultMaxEntries = 10_000
	// DefaultMaxNesting caps attached messages within attached messages.
	DefaultMaxNesting = 3
	// maxZipNames caps the member names listed for a plain ZIP file.
	maxZipNames = 1000
)

// TextLimits bounds the cost of extracting the text of one attachment. The time limit is the
// context's deadline: every extractor checks the context as it reads, so a hostile file is
// abandoned at the deadline and no goroutine outlives the call.
type TextLimits struct {
	MaxChars    int   // characters of text kept; 0 means DefaultMaxTextChars
	MaxInflated int64 // bytes decompressed in all; 0 means DefaultMaxInflated
	MaxEntries  int   // members of a ZIP container; 0 means DefaultMaxEntries
	MaxNesting  int   // depth of attached messages read; 0 means DefaultMaxNesting
}

func (l *TextLimits) defaults() {
	if l.MaxChars <= 0 {
		l.MaxChars = DefaultMaxTextChars
	}
	if l.MaxInflated <= 0 {
		l.MaxInflated = DefaultMaxInflated
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxNesting <= 0 {
		l.MaxNesting = DefaultMaxNesting
	}
}

// Format names what DocumentText read an attachment as.
type Format string

// Formats DocumentText knows. FormatNone means the attachment is of a type without text
// (images, unknown binaries).
const (
	FormatNone    Format = ""
	FormatText    Format = "text" // text/*, CSV, JSON, XML and the like
	FormatHTML    Format = "html"
	FormatPDF     Format = "pdf"
	FormatDOCX    Format = "docx"
	FormatXLSX    Format = "xlsx"
	FormatPPTX    Format = "pptx"
	FormatODF     Format = "odf" // ODT, ODS, ODP
	FormatRTF     Format = "rtf"
	FormatMessage Format = "message" // message/rfc822
	FormatZIP     Format = "zip"     // member names only
)

// FailureKind is why the text of an attachment could not be read.
type FailureKind string

// Failure kinds. They are stable names, used as log fields and counter labels.
const (
	FailCorrupt   FailureKind = "corrupt"   // not a readable file of its format
	FailLimit     FailureKind = "limit"     // broke a limit on decompressed bytes, members or structure
	FailTimeout   FailureKind = "timeout"   // the context's deadline passed, or it was cancelled
	FailEncrypted FailureKind = "encrypted" // the file is encrypted
	// FailNoText: the file opened and holds no text at all (a scan or picture without a text
	// layer). Indexed with its metadata; OCR is not attempted.
	FailNoText FailureKind = "no_text_layer"
	// FailUnmapped: the text is mostly glyph codes without a character (private-use code
	// points, replacement characters, control codes): fonts without a Unicode map. Junk is not
	// indexed; the file is reported instead.
	FailUnmapped FailureKind = "unmapped_font"
)

// TextError is the failure of DocumentText. It never quotes the file's content.
type TextError struct {
	Format Format
	Kind   FailureKind
	Err    error
}

func (e *TextError) Error() string {
	return fmt.Sprintf("extract %s text: %s: %v", e.Format, e.Kind, e.Err)
}

func (e *TextError) Unwrap() error { return e.Err }

// DocText is what DocumentText found.
type DocText struct {
	Text      string
	Format    Format
	Truncated bool // Text was cut at TextLimits.MaxChars
}

// Sentinel errors behind the failure kinds.
var (
	errInflateLimit = errors.New("decompressed size exceeds the limit")
	errTooManyParts = errors.New("too many members")
	errTextFull     = errors.New("text limit reached") // not a failure: stops reading early
	errPanic        = errors.New("extractor panicked") // a bug, reported as a corrupt file
	errUnusable     = errors.New("no usable text")
)

// textQuality is the gate between extracted text and the index: text without a letter or
// digit is no text layer; text whose characters are mostly private-use code points,
// replacement characters or control codes (what fonts without a Unicode map yield) is
// unmapped. It returns "" for text worth indexing.
func textQuality(s string) FailureKind {
	good, bad := 0, 0
	for _, r := range s {
		switch {
		case r == utf8.RuneError || unicode.Is(unicode.Co, r) || (unicode.IsControl(r) && !unicode.IsSpace(r)):
			bad++
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			good++
		}
	}
	switch {
	case good == 0 && bad == 0:
		return FailNoText
	case bad >= good:
		return FailUnmapped
	}
	return ""
}

// DocumentText returns the searchable text of an attachment: PDF (text-showing operators of
// its content streams, simple fonts), DOCX, XLSX, PPTX, ODT/ODS/ODP, RTF, HTML, plain text
// types as AttachmentText reads them, attached messages (message/rfc822: subject, body and
// the text of their own attachments, nested up to TextLimits.MaxNesting), and the member
// names of ZIP files. The format is chosen by content type, then file name, then the bytes
// themselves (a ZIP is read as OOXML or ODF when it holds their parts).
//
// The text is valid UTF-8 of at most lim.MaxChars characters. A type without text returns
// FormatNone and no error. A file that cannot be read returns a *TextError, with whatever
// text was read before the failure in DocText (often none). Cost is bounded by len(data),
// lim.MaxInflated and the context; the call never panics on hostile input.
func DocumentText(ctx context.Context, contentType, filename string, data []byte, lim TextLimits) (DocText, error) {
	lim.defaults()
	return documentText(ctx, contentType, filename, data, lim, 0)
}

func documentText(ctx context.Context, contentType, filename string, data []byte, lim TextLimits, depth int) (DocText, error) {
	format := detectFormat(contentType, filename, data)
	out := DocText{Format: format}
	if format == FormatNone {
		return out, nil
	}
	if format == FormatText || format == FormatHTML {
		// Bytes, not characters: four bytes per character at most.
		ct := contentType
		if mt, params := parseMediaType(ct); attachmentKind(mt, filename) == kindBinary {
			// Typed as something else but named as text: read it by its name.
			ct = mime.FormatMediaType("application/octet-stream", params)
		}
		t, ok := AttachmentText(ct, filename, data, 4*lim.MaxChars)
		if !ok {
			out.Format = FormatNone
			return out, nil
		}
		out.Text, out.Truncated = capChars(t, lim.MaxChars)
		return out, nil
	}
	w := newTextBuf(ctx, lim.MaxChars)
	var err error
	func() {
		// Belt and braces: every extractor is written not to panic, but a bug must cost one
		// attachment's text, never the crawl.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: %v", errPanic, r)
			}
		}()
		switch format {
		case FormatPDF:
			err = pdfReader.readText(w, data, &lim)
		case FormatRTF:
			err = rtfText(w, data)
		case FormatMessage:
			err = messageText(ctx, w, data, lim, depth)
		default:
			out.Format, err = zipText(w, data, &lim, format)
		}
	}()
	out.Text, out.Truncated = w.result()
	if errors.Is(err, errTextFull) {
		err = nil
	}
	if err == nil && out.Format == FormatPDF {
		if kind := textQuality(out.Text); kind != "" {
			// The quality gate: no junk indexed, no silent miss.
			out.Text, out.Truncated = "", false
			return out, &TextError{Format: out.Format, Kind: kind, Err: errUnusable}
		}
	}
	if err != nil {
		return out, &TextError{Format: out.Format, Kind: failureKind(ctx, err), Err: err}
	}
	return out, nil
}

// failureKind classifies an extractor's error by its sentinel; what is not a limit or the
// context is a corrupt file.
func failureKind(ctx context.Context, err error) FailureKind {
	var te *TextError
	switch {
	case errors.As(err, &te):
		return te.Kind
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return FailTimeout
	case errors.Is(err, errInflateLimit), errors.Is(err, errTooManyParts), errors.Is(err, errTooDeep):
		return FailLimit
	case errors.Is(err, errEncrypted):
		return FailEncrypted
	}
	return FailCorrupt
}

// detectFormat picks the reader of an attachment.
func detectFormat(contentType, filename string, data []byte) Format {
	mt, _ := parseMediaType(contentType)
	switch mt {
	case "application/pdf", "application/x-pdf":
		return FormatPDF
	case "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"application/vnd.ms-word.document.macroenabled.12":
		return FormatDOCX
	case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"application/vnd.ms-excel.sheet.macroenabled.12":
		return FormatXLSX
	case "application/vnd.openxmlformats-officedocument.presentationml.presentation",
		"application/vnd.ms-powerpoint.presentation.macroenabled.12":
		return FormatPPTX
	case "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
		"application/vnd.oasis.opendocument.presentation":
		return FormatODF
	case "application/rtf", "application/x-rtf", "text/rtf", "text/richtext":
		return FormatRTF
	case "message/rfc822", "message/global":
		return FormatMessage
	case "application/zip", "application/x-zip-compressed", "application/x-zip":
		return FormatZIP
	}
	switch strings.ToLower(path.Ext(filename)) {
	case ".pdf":
		return FormatPDF
	case ".docx", ".docm":
		return FormatDOCX
	case ".xlsx", ".xlsm":
		return FormatXLSX
	case ".pptx", ".pptm":
		return FormatPPTX
	case ".odt", ".ods", ".odp":
		return FormatODF
	case ".rtf":
		return FormatRTF
	case ".eml":
		return FormatMessage
	case ".zip":
		return FormatZIP
	}
	switch kind := attachmentKind(mt, filename); {
	case kind == kindHTML:
		return FormatHTML
	case kind == kindPlain:
		return FormatText
	}
	if kindByExtension(filename) != kindBinary && bytes.IndexByte(head(data, 8<<10), 0) < 0 {
		// A text file under a type that is not (Outlook sends CSV as application/vnd.ms-excel).
		return formatOf(kindByExtension(filename))
	}
	// A generic or wrong type: trust the bytes.
	switch {
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return FormatPDF
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return FormatZIP
	case bytes.HasPrefix(data, []byte(`{\rtf`)):
		return FormatRTF
	}
	return FormatNone
}

func formatOf(k textKind) Format {
	if k == kindHTML {
		return FormatHTML
	}
	return FormatText
}

// capChars cuts s to max characters.
func capChars(s string, max int) (string, bool) {
	if utf8.RuneCountInString(s) <= max {
		return s, false
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i], true
		}
		n++
	}
	return s, false
}

// textBuf collects extracted text up to a number of characters. Writes fail with errTextFull
// once it is full, so that extractors stop reading, and with the context's error once that is
// done: every extractor loop writes or reads through a ctxReader, which bounds its time.
type textBuf struct {
	ctx       context.Context
	b         strings.Builder
	chars     int
	max       int
	truncated bool
	pending   byte // separator owed before the next text: 0, ' ' or '\n'
	writes    int
}

func newTextBuf(ctx context.Context, max int) *textBuf { return &textBuf{ctx: ctx, max: max} }

// write appends s (made valid UTF-8 and stripped of control characters).
func (t *textBuf) write(s string) error {
	if t.writes++; t.writes%256 == 0 {
		if err := t.ctx.Err(); err != nil {
			return err
		}
	}
	if t.truncated {
		return errTextFull
	}
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = cleanText(s)
	if t.pending != 0 && t.b.Len() > 0 {
		if err := t.sep(); err != nil {
			return err
		}
	}
	t.pending = 0
	n := utf8.RuneCountInString(s)
	if room := t.max - t.chars; n > room {
		s, _ = capChars(s, room)
		t.b.WriteString(s)
		t.chars = t.max
		t.truncated = true
		return errTextFull
	}
	t.b.WriteString(s)
	t.chars += n
	return nil
}

func (t *textBuf) sep() error {
	if t.chars == t.max {
		t.truncated = true
		return errTextFull
	}
	t.chars++
	t.b.WriteByte(t.pending)
	return nil
}

// space asks for a separator before the next text; a newline wins over a space.
func (t *textBuf) space() {
	if t.pending == 0 {
		t.pending = ' '
	}
}

func (t *textBuf) newline() { t.pending = '\n' }

func (t *textBuf) result() (string, bool) {
	return strings.TrimSpace(t.b.String()), t.truncated
}

// ctxReader fails reads once the context is done and once more than the shared budget of
// bytes went through: every decompressing reader is wrapped in one.
type ctxReader struct {
	ctx    context.Context
	r      io.Reader
	budget *int64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if *c.budget <= 0 {
		return 0, errInflateLimit
	}
	if int64(len(p)) > *c.budget+1 {
		p = p[:*c.budget+1]
	}
	n, err := c.r.Read(p)
	*c.budget -= int64(n)
	if *c.budget < 0 {
		return n, errInflateLimit
	}
	return n, err
}

// CutUTF8 cuts s to at most max bytes without splitting a character.
func CutUTF8(s string, max int) string {
	s, _ = truncateUTF8(s, max)
	return s
}
