package body

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-message"
	// Registers decoders for non-UTF-8 charsets with go-message, for bodies
	// and RFC 2047 encoded words alike.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// DefaultMaxTextBytes is the text cap used when Options.MaxTextBytes is zero.
const DefaultMaxTextBytes = 1 << 20

// Limits against hostile structure. Real mail stays far below them.
const (
	maxHeaderBytes = 1 << 20 // header block of the message or of one part
	maxDepth       = 32      // nesting of multiparts
	maxParts       = 10000   // parts visited in one message
	// maxFilenameBytes caps Part.Filename; file systems stop at 255 bytes.
	maxFilenameBytes = 1024
)

// ErrNoContent is returned when the input held nothing readable at all.
var ErrNoContent = errors.New("message has no readable header or body")

// Text is what Extract found in a message.
type Text struct {
	// Text is the readable body: the text/plain parts joined by blank
	// lines, or, when no text/plain part has any text, the HTML parts
	// converted with HTMLToText. Capped at Options.MaxTextBytes.
	Text string
	// FromHTML tells that Text was converted from HTML.
	FromHTML bool
	// Truncated tells that Text was cut at the cap.
	Truncated bool
	// Subject is the decoded (RFC 2047) Subject header.
	Subject string
	// Headers holds the decoded values of the top-level header fields,
	// keyed by canonical name, in message order.
	Headers map[string][]string
	// AddressHeaders holds the undecoded values of the top-level address fields (From, Sender,
	// Reply-To, To, Cc, Bcc, Return-Path), keyed like Headers. Their RFC 2047 words must be
	// decoded after the list is parsed, not before: a decoded display name may hold a comma
	// or a quote that would split or break the list (RFC 2047 section 5).
	AddressHeaders map[string][]string
	// Parts lists the attachment-like parts, in message order: parts with
	// a file name or an attachment disposition, and non-text leaves such
	// as images or attached messages.
	Parts []Part
	// Defects lists what was malformed and how it was handled, for
	// diagnostics. Entries name parts by position ("part 2.1") and never
	// quote message content.
	Defects []string
	// Malformed tells that the message broke a limit against hostile structure (a header of
	// the message or of a part larger than 1 MiB, multiparts nested too deep, too many parts):
	// reading stopped there, and Text, Headers and Parts hold what came before.
	Malformed bool
	// KeepFailed tells that a part Options.KeepAttachments allowed was not kept because its
	// temporary file could not be written: its bytes are missing through no fault of the
	// message, and reading it again may succeed.
	KeepFailed bool

	spill *spillFile // kept parts beyond Options.KeepMemory; nil if none
}

// Close releases the temporary file of parts kept beyond Options.KeepMemory. Part.Bytes of
// such a part fails after Close. Close is safe to call more than once, and on a Text that
// spilled nothing.
func (t *Text) Close() error {
	if t == nil || t.spill == nil {
		return nil
	}
	err := t.spill.close()
	t.spill = nil
	return err
}

// Part describes an attachment-like part.
type Part struct {
	Filename    string // decoded; "" when the part has none
	ContentType string // lower-case media type without parameters
	Size        int64  // decoded size in bytes
	Inline      bool   // disposition inline, or none with a Content-ID
	SHA256      string // lower-case hex digest of the decoded bytes
	// Data holds the decoded bytes when Options.KeepAttachments allowed it (the part was read
	// whole and is at most that large) and they fit in Options.KeepMemory; nil otherwise. Bytes
	// also returns those kept in the temporary file.
	Data []byte

	spill    *spillFile // holds the bytes at spillOff when they did not fit in memory
	spillOff int64
}

// Kept reports whether the part's bytes were kept, in memory or in the temporary file.
func (p *Part) Kept() bool { return p.Data != nil || p.spill != nil }

// Bytes returns the kept bytes of the part: Data, or a copy read back from the temporary file
// (until Text.Close). It returns nil, nil for a part whose bytes were not kept.
func (p *Part) Bytes() ([]byte, error) {
	if p.Data != nil || p.spill == nil {
		return p.Data, nil
	}
	return p.spill.read(p.spillOff, p.Size)
}

// Options tunes Extract.
type Options struct {
	// MaxTextBytes caps Text; zero means DefaultMaxTextBytes. The cut
	// never splits a UTF-8 character.
	MaxTextBytes int
	// KeepAttachments keeps the bytes of attachment-like parts of at most this size in
	// Part.Data; zero keeps none. A crawler that already has the whole message can then take
	// attachments from it instead of downloading each one again.
	KeepAttachments int64
	// KeepMemory caps the bytes of kept parts held in memory together; zero means
	// DefaultKeepMemory. Kept parts beyond it go to one temporary file per message (see
	// Part.Bytes), so that a message with many attachments costs disk, not memory.
	KeepMemory int64
	// SpillDir is the directory of that temporary file; "" means os.TempDir().
	SpillDir string
}

// DefaultKeepMemory is the memory cap of kept parts used when Options.KeepMemory is zero.
const DefaultKeepMemory = 16 << 20

// Extract reads a whole RFC 822 message and returns its text. Transfer
// encodings (quoted-printable, base64) and charsets are decoded; text in an
// unknown or missing charset is read as toUTF8 describes.
//
// Malformed MIME is read on a best-effort basis: malformed header lines are
// dropped, a multipart body whose boundary matches nothing is read as plain
// text, a part that fails half-way keeps what was read, and each such repair
// is noted in Text.Defects. A header (of the message or of a part) larger than 1 MiB ends the
// reading, with Text.Malformed set. Extract always returns a non-nil *Text, which the caller
// closes once done with its parts' bytes; the error
// is non-nil only when reading r failed (the Text holds what came before,
// and the caller should fetch the message again) or when the input held
// nothing readable (ErrNoContent).
func Extract(r io.Reader, opts Options) (*Text, error) {
	if opts.MaxTextBytes <= 0 {
		opts.MaxTextBytes = DefaultMaxTextBytes
	}
	if opts.KeepMemory <= 0 {
		opts.KeepMemory = DefaultKeepMemory
	}
	src := &sourceReader{r: r}
	x := &extractor{max: opts.MaxTextBytes, keep: opts.KeepAttachments, keepMemory: opts.KeepMemory,
		spillDir: opts.SpillDir, out: &Text{Headers: map[string][]string{}}}

	br := sourceReaders.Get().(*bufio.Reader)
	br.Reset(src)
	defer func() {
		br.Reset(nil) // drop the download, and its buffered bytes are dead
		sourceReaders.Put(br)
	}()
	h, body, defects, tooBig := readHeader(br)
	x.defects(defects...)
	x.headers(h)

	if tooBig {
		// A header this large is hostile: nothing after it is read, so that neither memory nor
		// the download grows with it.
		x.out.Malformed = true
	} else {
		e, err := newEntity(message.Header{Header: h}, body)
		if err != nil {
			x.defect("message: %s", describe(err))
		}
		if e != nil {
			x.entity(e, err, nil, 0)
		}
	}
	x.finish()
	keepBuffers.put(x.scratch)
	x.scratch = nil

	if src.err != nil {
		return x.out, fmt.Errorf("read message: %w", src.err)
	}
	if src.n == 0 || (len(x.out.Headers) == 0 && x.out.Text == "" && len(x.out.Parts) == 0) {
		return x.out, ErrNoContent
	}
	return x.out, nil
}

// sourceReaders buffer the message as Extract reads it. 32 KB rather than bufio's 4 KB: a
// download is read in as few system calls as the connection allows (the HTTP client reads
// straight into a buffer at least as large as its own). headerReaders serve readHeader. Both
// hold buffers of a fixed size only.
var (
	sourceReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
	headerReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}
)

// sourceReader remembers the first error of the underlying reader, so that
// a failed download is told apart from malformed MIME.
type sourceReader struct {
	r   io.Reader
	n   int64
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// readHeader reads the top-level header block leniently: an mbox "From "
// line is skipped, lines that are neither fields nor continuations are
// dropped, and input whose first block holds no field at all is taken to be
// a body without header. It returns the header and the reader of the body.
//
// At most maxHeaderBytes (and one buffer) are read: tooBig reports a header
// block, or a single line, larger than that, and then the body is nil.
func readHeader(br *bufio.Reader) (h textproto.Header, body io.Reader, defects []string, tooBig bool) {
	var (
		raw     bytes.Buffer // everything consumed, to give back if there is no header
		clean   bytes.Buffer // the fields kept, re-terminated with CRLF
		fields  int
		dropped int
		inField bool
	)
	for first := true; ; first = false {
		line, over, err := readLine(br, maxHeaderBytes-raw.Len())
		if over {
			defects = append(defects, "header larger than "+strconv.Itoa(maxHeaderBytes)+" bytes: message not read further")
			tooBig = true
			break
		}
		raw.Write(line)
		content := bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
		case len(content) == 0:
			// The blank line that ends the header.
			err = io.EOF
		case first && bytes.HasPrefix(content, []byte("From ")) && !isFieldLine(content):
			// mbox separator of an exported message.
		case content[0] == ' ' || content[0] == '\t':
			if inField {
				clean.Write(content)
				clean.WriteString("\r\n")
			} else {
				dropped++
			}
		case isFieldLine(content):
			clean.Write(content)
			clean.WriteString("\r\n")
			fields++
			inField = true
		default:
			dropped++
			inField = false
		}
		if err != nil {
			break
		}
	}

	if fields == 0 {
		if tooBig {
			return textproto.Header{}, nil, defects, true
		}
		// No header at all: everything read so far is body.
		return textproto.Header{}, io.MultiReader(bytes.NewReader(raw.Bytes()), br), defects, false
	}
	if dropped > 0 {
		defects = append(defects, strconv.Itoa(dropped)+" malformed header lines dropped")
	}
	clean.WriteString("\r\n")
	hr := headerReaders.Get().(*bufio.Reader)
	hr.Reset(&clean)
	h, err := textproto.ReadHeader(hr)
	hr.Reset(nil)
	headerReaders.Put(hr)
	if err != nil {
		defects = append(defects, "header: "+describe(err))
	}
	if tooBig {
		return h, nil, defects, true
	}
	return h, br, defects, false
}

// readLine reads one line, with its line end, of at most room bytes. over
// reports a longer line, of which it keeps nothing: a line without an end
// costs room bytes of memory, however long it goes on.
func readLine(br *bufio.Reader, room int) (line []byte, over bool, err error) {
	line, err = br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, len(line) > room, err
	}
	buf := append([]byte(nil), line...)
	for err == bufio.ErrBufferFull {
		if len(buf) > room {
			return nil, true, nil
		}
		line, err = br.ReadSlice('\n')
		buf = append(buf, line...)
	}
	return buf, len(buf) > room, err
}

// isFieldLine reports a "Name: value" line with a valid field name (RFC
// 5322 printable ASCII; white space before the colon is tolerated).
func isFieldLine(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// describe renders an error of go-message for Defects. Its messages name
// charsets, encodings and structure, not content; long ones are cut in
// case a library quotes a malformed line.
func describe(err error) string {
	s, _ := truncateUTF8(err.Error(), 120)
	return s
}

type extractor struct {
	max   int
	keep  int64 // Options.KeepAttachments
	out   *Text
	parts int // parts visited

	keepMemory int64  // Options.KeepMemory
	inMemory   int64  // bytes of kept parts in memory
	spillDir   string // Options.SpillDir
	spillErr   bool   // the temporary file could not be created: keep no more parts
	scratch    []byte // capture memory of kept parts, reused from part to part (keepBuffers)
	halted     bool   // a part header broke its cap: nothing more of the message is read

	plain      []string // text of text/plain parts
	plainBytes int      // their length, with separators
	plainCut   bool     // some text/plain part was not read to its end
	html       []string // HTML of text/html parts, already UTF-8
	htmlBytes  int      // raw bytes read from text/html parts
	htmlCut    bool     // some text/html part was not read to its end
}

func (x *extractor) defect(format string, args ...any) {
	x.out.Defects = append(x.out.Defects, fmt.Sprintf(format, args...))
}

func (x *extractor) defects(d ...string) {
	x.out.Defects = append(x.out.Defects, d...)
}

func (x *extractor) headers(h textproto.Header) {
	mh := message.Header{Header: h}
	// One array holds the first value of every field, so that a header of n fields costs one
	// allocation instead of n; each slice's capacity ends at its own value, so a repeated
	// field appends into memory of its own.
	firsts := make([]string, 0, h.Len())
	fields := mh.Fields()
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			// Unknown charset in an encoded word: keep the raw value.
			v = fields.Value()
		}
		// Raw 8-bit header bytes are UTF-8 (RFC 6532) or, in older
		// mail, usually windows-1252.
		v = strings.TrimSpace(cleanText(headerUTF8(v)))
		k := fields.Key()
		if prev, ok := x.out.Headers[k]; ok {
			x.out.Headers[k] = append(prev, v)
		} else {
			firsts = append(firsts, v)
			n := len(firsts)
			x.out.Headers[k] = firsts[n-1 : n : n]
		}
		if addressFields[k] {
			if x.out.AddressHeaders == nil {
				x.out.AddressHeaders = map[string][]string{}
			}
			raw := strings.TrimSpace(cleanText(headerUTF8(fields.Value())))
			x.out.AddressHeaders[k] = append(x.out.AddressHeaders[k], raw)
		}
	}
	if s := x.out.Headers["Subject"]; len(s) > 0 {
		x.out.Subject = s[0]
	}
}

// addressFields are the canonical names of the fields kept in Text.AddressHeaders.
var addressFields = map[string]bool{"From": true, "Sender": true, "Reply-To": true, "To": true,
	"Cc": true, "Bcc": true, "Return-Path": true}

// pathName renders a part path for Defects: "message", "part 2.1".
func pathName(path []int) string {
	if len(path) == 0 {
		return "message"
	}
	var b strings.Builder
	b.WriteString("part ")
	for i, n := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n + 1))
	}
	return b.String()
}

// child returns the path of the n-th child of path, sharing no memory
// with it.
func child(path []int, n int) []int {
	return append(append(make([]int, 0, len(path)+1), path...), n)
}

// entity reads one part (or the whole message) and its children. newErr is
// the error go-message gave when it set up e's decoding.
func (x *extractor) entity(e *message.Entity, newErr error, path []int, depth int) {
	x.parts++
	mediaType, params, ctErr := e.Header.ContentType()
	if ctErr != nil {
		x.defect("%s: invalid Content-Type", pathName(path))
		mediaType, params = parseMediaType(e.Header.Get("Content-Type"))
	}
	mediaType = strings.ToLower(mediaType)

	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxDepth {
			x.defect("%s: multipart nested deeper than %d levels skipped", pathName(path), maxDepth)
			x.out.Malformed = true
			return
		}
		x.multipart(e, params["boundary"], path, depth)
		return
	}

	disp, dparams, _ := e.Header.ContentDisposition()
	disp = strings.ToLower(disp)
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	filename = strings.TrimSpace(cleanText(headerUTF8(filename)))
	// Every part's name is kept in Text.Parts: a hostile message of many parts with names of
	// a megabyte each must not cost that much.
	filename, _ = truncateUTF8(filename, maxFilenameBytes)

	bodyText := disp != "attachment" && filename == "" &&
		(mediaType == "text/plain" || mediaType == "text/html")
	if !bodyText {
		x.attachment(e, path, mediaType, filename, disp)
		return
	}

	// go-message converted the body to UTF-8 when it parsed the
	// Content-Type without error and knows the named charset.
	charset := params["charset"]
	converted := ctErr == nil && charset != "" && !message.IsUnknownCharset(newErr) &&
		!strings.EqualFold(charset, "utf-8") && !strings.EqualFold(charset, "us-ascii")
	isHTML := mediaType == "text/html"

	var limit int
	if isHTML {
		if x.hasPlain() {
			return // only read when there is no plain text
		}
		limit = htmlInputFactor*x.max - x.htmlBytes
	} else {
		// Line-end normalisation shrinks text, a charset fallback may
		// grow it: read enough to fill the cap either way.
		if remaining := x.max - x.plainBytes; remaining > 0 {
			limit = 2*remaining + 16
		}
	}
	data, more, err := readLimited(e.Body, limit)
	if err != nil {
		x.defect("%s: body read failed half-way: %s", pathName(path), describe(err))
	}
	if more {
		data = trimPartialRune(data)
	}
	s := strings.TrimSpace(cleanText(toUTF8(data, charset, converted, isHTML)))
	if s == "" {
		return
	}
	if isHTML {
		x.html = append(x.html, s)
		x.htmlBytes += len(data)
		x.htmlCut = x.htmlCut || more
		return
	}
	x.plain = append(x.plain, s)
	x.plainBytes += len(s) + 2
	x.plainCut = x.plainCut || more
}

func (x *extractor) hasPlain() bool { return len(x.plain) > 0 }

// multipart reads the children of e. When the body yields no part at all
// (no boundary, or one that matches nothing) its raw bytes are read as plain
// text, so that the words still become searchable.
func (x *extractor) multipart(e *message.Entity, boundary string, path []int, depth int) {
	rawCopy := &capture{b: rawCopies.get(), max: x.max}
	defer rawCopies.put(rawCopy)
	// go-message reads a part's header whole, however long; the limit stops it at
	// maxHeaderBytes.
	limit := newPartHeaderLimit(e.Body, boundary, maxHeaderBytes)
	e.Body = io.TeeReader(limit, rawCopy)
	// nil when go-message could not parse the Content-Type that this
	// package still recognised as multipart.
	mr := multipartReader(e)
	n := 0
	for mr != nil {
		if x.halted {
			// A hostile part deeper down: reading on would only cost time.
			return
		}
		if x.parts >= maxParts {
			x.defect("%s: more than %d parts, rest skipped", pathName(path), maxParts)
			x.out.Malformed = true
			break
		}
		p, err := nextPart(mr)
		if limit.tripped {
			x.defect("%s: header larger than %d bytes: message not read further", pathName(child(path, n)), maxHeaderBytes)
			x.out.Malformed = true
			x.halted = true
			return
		}
		if p == nil {
			if err != nil && err != io.EOF {
				x.defect("%s: multipart structure broken after %d parts: %s", pathName(path), n, describe(err))
			}
			break
		}
		if err != nil {
			// An unknown charset or transfer encoding: p reads raw.
			x.defect("%s: %s", pathName(child(path, n)), describe(err))
		}
		rawCopy.stop = true // structure found: the fallback is not needed
		x.entity(p, err, child(path, n), depth+1)
		n++
	}
	if n > 0 {
		return
	}
	x.defect("%s: multipart body without readable parts, read as plain text", pathName(path))
	// The multipart reader may have given up before reading anything.
	if _, err := io.Copy(io.Discard, e.Body); err != nil {
		x.defect("%s: body read failed half-way: %s", pathName(path), describe(err))
	}
	if s := strings.TrimSpace(cleanText(toUTF8(rawCopy.b, "", false, false))); s != "" {
		x.plain = append(x.plain, s)
		x.plainBytes += len(s) + 2
	}
	x.plainCut = x.plainCut || rawCopy.full
}

// attachment records an attachment-like part: its size and digest, streamed, and its bytes
// when Options.KeepAttachments allows.
func (x *extractor) attachment(e *message.Entity, path []int, mediaType, filename, disp string) {
	h := sha256.New()
	if x.scratch == nil && x.keep > 0 && !x.spillErr {
		x.scratch = keepBuffers.get()
	}
	keep := &keeper{x: x, path: path, mem: x.scratch[:0], max: x.keep, stop: x.keep <= 0 || x.spillErr}
	n, err := io.Copy(io.MultiWriter(h, keep), e.Body)
	if err != nil {
		x.defect("%s: attachment read failed after %d bytes: %s", pathName(path), n, describe(err))
	}
	p := Part{
		Filename:    filename,
		ContentType: mediaType,
		Size:        n,
		Inline:      disp == "inline" || (disp == "" && e.Header.Get("Content-Id") != ""),
		SHA256:      hex.EncodeToString(h.Sum(nil)),
	}
	if err == nil && !keep.full && !keep.stop {
		keep.keepIn(&p)
	} else {
		keep.discard()
	}
	x.out.Parts = append(x.out.Parts, p)
}

// keeper captures the bytes of one part for Part.Data: in memory while the kept parts fit in
// Options.KeepMemory, streamed into the temporary file once they do not, so that a part as
// large as Options.KeepAttachments is never held in memory whole. Write always reports the
// whole of p written: it feeds an io.MultiWriter next to the digest, which must not stop.
type keeper struct {
	x       *extractor
	path    []int
	max     int64 // Options.KeepAttachments
	n       int64 // bytes of the part so far
	mem     []byte
	spilled bool  // the part goes to the temporary file, from off
	off     int64 // where the part starts in the temporary file
	full    bool  // the part is larger than max
	stop    bool  // nothing is kept of the part
}

func (k *keeper) Write(p []byte) (int, error) {
	if k.stop || k.full {
		return len(p), nil
	}
	if k.n+int64(len(p)) > k.max {
		k.full = true
		k.discard()
		return len(p), nil
	}
	k.n += int64(len(p))
	x := k.x
	if !k.spilled && x.inMemory+int64(len(k.mem)+len(p)) <= x.keepMemory {
		k.mem = append(k.mem, p...)
		return len(p), nil
	}
	if !k.spilled {
		if x.out.spill == nil {
			f, err := newSpillFile(x.spillDir)
			if err != nil {
				x.defect("%s: not kept, and no further part: %s", pathName(k.path), describe(err))
				x.spillErr = true
				x.out.KeepFailed = true
				k.stop = true
				return len(p), nil
			}
			x.out.spill = f
		}
		k.spilled, k.off = true, x.out.spill.size
		if !k.spill(k.mem) {
			return len(p), nil
		}
		k.mem = k.mem[:0]
	}
	k.spill(p)
	return len(p), nil
}

// spill appends b to the part in the temporary file; false when that failed, and then the
// part is not kept.
func (k *keeper) spill(b []byte) bool {
	if _, err := k.x.out.spill.write(b); err != nil {
		k.x.defect("%s: not kept: %s", pathName(k.path), describe(err))
		k.x.out.KeepFailed = true
		k.discard()
		k.stop = true
		return false
	}
	return true
}

// keepIn gives p the bytes kept: Data, or its place in the temporary file.
func (k *keeper) keepIn(p *Part) {
	x := k.x
	if k.spilled {
		p.spill, p.spillOff = x.out.spill, k.off
		x.scratch = k.mem[:0] // capture the next part into the same memory
		return
	}
	// A copy of exactly the part's size; the capture memory, grown by doubling, serves the next
	// part. An empty part is kept too: nil means "not kept".
	if p.Data = bytes.Clone(k.mem); p.Data == nil {
		p.Data = []byte{}
	}
	x.inMemory += int64(len(k.mem))
	x.scratch = k.mem[:0]
}

// discard drops what was kept of the part: the temporary file is cut back to where the part
// began, so that parts too large to keep cost no disk.
func (k *keeper) discard() {
	if k.spilled {
		k.spilled = false
		k.x.out.spill.truncate(k.off)
	}
	k.x.scratch = k.mem[:0]
}

// finish assembles Text from the parts read.
func (x *extractor) finish() {
	var s string
	var cut bool
	switch {
	case len(x.plain) > 0:
		s = strings.Join(x.plain, "\n\n")
		cut = x.plainCut
	case len(x.html) > 0:
		cut = x.htmlCut
		texts := make([]string, 0, len(x.html))
		for _, h := range x.html {
			// Reading from a string cannot fail.
			t, _ := HTMLToText(strings.NewReader(h))
			if t = strings.TrimSpace(t); t != "" {
				texts = append(texts, t)
			}
		}
		s = strings.Join(texts, "\n\n")
		x.out.FromHTML = true
	}
	var capped bool
	x.out.Text, capped = truncateUTF8(s, x.max)
	x.out.Truncated = cut || capped
}

// readLimited reads up to limit bytes of r; more reports that r had more.
func readLimited(r io.Reader, limit int) (data []byte, more bool, err error) {
	if limit <= 0 {
		var one [1]byte
		n, err := io.ReadFull(r, one[:])
		return nil, n > 0, ignoreEOF(err)
	}
	data, err = io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if len(data) > limit {
		return data[:limit], true, err
	}
	return data, false, err
}

func ignoreEOF(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// capture keeps the first max bytes written to it, until stopped.
type capture struct {
	b    []byte
	max  int
	stop bool
	full bool
}

// Write always reports the whole of p written: it feeds an io.TeeReader,
// which must not fail because of it.
func (c *capture) Write(p []byte) (int, error) {
	n := len(p)
	if c.stop {
		return n, nil
	}
	room := c.max - len(c.b)
	if len(p) > room {
		c.full = true
		p = p[:max(room, 0)]
	}
	c.b = append(c.b, p...)
	return n, nil
}
