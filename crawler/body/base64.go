package body

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"sync"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// newEntity is message.New, except that a base64 body is decoded by base64Reader rather than
// by go-message, whose decoder (encoding/base64's stream decoder behind two filters that look
// at every byte on its own, fed a kilobyte at a time) cost more CPU than the rest of the MIME
// parsing together. Which bodies are base64 is decided as go-message decides it, so that
// every other part is read exactly as before.
func newEntity(h message.Header, body io.Reader) (*message.Entity, error) {
	if strings.ToLower(h.Get("Content-Transfer-Encoding")) != "base64" {
		return message.New(h, body)
	}
	// go-message ignores the transfer encoding of a multipart (RFC 2045 6.4 forbids one).
	if mediaType, _, _ := h.ContentType(); strings.HasPrefix(mediaType, "multipart/") {
		return message.New(h, body)
	}
	// message.New reads two fields: the transfer encoding, left out here so that it does not
	// decode again, and the Content-Type, whose charset it applies to the decoded text.
	var plain message.Header
	if ct := h.Get("Content-Type"); ct != "" {
		plain.Set("Content-Type", ct)
	}
	e, err := message.New(plain, newBase64Reader(body))
	if e != nil {
		e.Header = h
	}
	return e, err
}

// nextPart is what go-message's multipart reader does for each part, with newEntity in place
// of message.New.
func nextPart(mr *textproto.MultipartReader) (*message.Entity, error) {
	p, err := mr.NextPart()
	if err != nil {
		return nil, err
	}
	return newEntity(message.Header{Header: p.Header}, p)
}

// multipartReader returns the reader of e's parts, or nil when go-message does not take e for
// a multipart (message.Entity.MultipartReader, for entities read from a stream).
func multipartReader(e *message.Entity) *textproto.MultipartReader {
	mediaType, params, _ := e.Header.ContentType()
	if !strings.HasPrefix(mediaType, "multipart/") {
		return nil
	}
	return textproto.NewMultipartReader(e.Body, params["boundary"])
}

// base64Buffers are the input and output buffers of a base64Reader, reused across parts. Their
// size is fixed, so the pool never holds more than that per buffer.
type base64Buffers struct {
	in  [8 << 10]byte
	out [8<<10/4*3 + 8]byte // the most one fill can decode: see fill
}

var base64Pool = sync.Pool{New: func() any { return new(base64Buffers) }}

// base64Reader decodes a base64 body (RFC 2045) as go-message did: white space (CR, LF, space,
// tab) is ignored wherever it is, and the first character that breaks the encoding ends the
// body with base64.CorruptInputError, after the bytes decoded before it. Padding ends the
// encoded text: anything but white space after it is corrupt. A body that ends within a
// quantum ends with io.ErrUnexpectedEOF.
//
// It reads the body a buffer at a time and decodes whole lines with one call of
// base64.StdEncoding.Decode each (the usual 76-character line of an encoder); only lines with
// embedded white space, lines that are not a multiple of four characters, and a line broken
// by the end of the buffer go character by character.
type base64Reader struct {
	r    io.Reader
	buf  *base64Buffers // nil before the first and after the last fill
	pend int            // bytes of an unfinished line kept at the start of buf.in
	off  int64          // offset in the encoded body of buf.in[0], for error offsets
	out  []byte         // decoded bytes not yet returned, within buf.out
	err  error          // sticky: returned once out is drained

	q      [4]byte  // characters of an unfinished quantum
	qOff   [4]int64 // their offsets in the encoded body
	nq     int
	padded bool // a quantum with padding was decoded: only white space may follow
}

func newBase64Reader(r io.Reader) *base64Reader { return &base64Reader{r: r} }

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			d.release()
			return 0, d.err
		}
		d.fill()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// WriteTo lets io.Copy take the decoded bytes straight from the output buffer.
func (d *base64Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(d.out) > 0 {
			n, err := w.Write(d.out)
			total += int64(n)
			d.out = d.out[n:]
			if err == nil && len(d.out) > 0 {
				err = io.ErrShortWrite
			}
			if err != nil {
				return total, err
			}
			continue
		}
		if d.err != nil {
			d.release()
			if d.err == io.EOF {
				return total, nil
			}
			return total, d.err
		}
		d.fill()
	}
}

func (d *base64Reader) release() {
	if d.buf != nil {
		base64Pool.Put(d.buf)
		d.buf, d.out = nil, nil
	}
}

// fill reads once from the body and decodes what it can into out, setting err at the end of
// the body or at the first corrupt character. out is empty before it is called.
func (d *base64Reader) fill() {
	if d.buf == nil {
		d.buf = base64Pool.Get().(*base64Buffers)
	}
	in, dst := d.buf.in[:], d.buf.out[:]
	n, rerr := d.r.Read(in[d.pend:])
	data := in[:d.pend+n]
	w := 0
	start := 0 // of the first line not yet decoded, in data
	for d.err == nil {
		i := bytes.IndexByte(data[start:], '\n')
		if i < 0 {
			break
		}
		w = d.line(dst, w, data[start:start+i], d.off+int64(start))
		start += i + 1
	}
	rest := data[start:]
	// The unfinished line waits for the rest of it, unless none will come or it takes so
	// much of the buffer that the next read would get little room: then its characters go
	// into the quantum state and the line continues from there.
	if d.err == nil && (rerr != nil || len(rest) > len(in)/2) {
		w = d.chars(dst, w, rest, d.off+int64(start))
		start, rest = len(data), nil
	}
	// Output bound: each character yields at most 3/4 byte once its quantum is complete, and
	// at most 3 characters were waiting in q before: (3 + len(in)) / 4 * 3 <= len(dst).
	d.out = dst[:w]
	d.off += int64(start)
	d.pend = copy(in, rest)
	if d.err == nil && rerr != nil {
		if rerr == io.EOF && d.nq > 0 {
			rerr = io.ErrUnexpectedEOF
		}
		d.err = rerr
	}
}

// line decodes one line (without its LF) into dst[w:] and returns the new end of dst. off is
// the line's offset in the encoded body.
func (d *base64Reader) line(dst []byte, w int, line []byte, off int64) int {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if d.nq == 0 && !d.padded && len(line)%4 == 0 {
		// Decode also skips CR and LF, and fails on anything else that is not base64, which
		// then goes the slow way and is found there.
		n, err := base64.StdEncoding.Decode(dst[w:], line)
		if err == nil {
			if n != len(line)/4*3 && bytes.IndexByte(line, '=') >= 0 {
				d.padded = true
			}
			return w + n
		}
	}
	return d.chars(dst, w, line, off)
}

// chars decodes characters one quantum at a time, carrying an unfinished quantum over to the
// next call. off is the offset of b[0] in the encoded body.
func (d *base64Reader) chars(dst []byte, w int, b []byte, off int64) int {
	for i, c := range b {
		switch c {
		case '\r', '\n', ' ', '\t':
			continue
		}
		if d.padded {
			d.err = base64.CorruptInputError(off + int64(i))
			return w
		}
		d.q[d.nq], d.qOff[d.nq] = c, off+int64(i)
		if d.nq++; d.nq < 4 {
			continue
		}
		d.nq = 0
		n, err := base64.StdEncoding.Decode(dst[w:], d.q[:])
		w += n
		if err != nil {
			at := 3
			if ce, ok := err.(base64.CorruptInputError); ok && ce >= 0 && ce < 4 {
				at = int(ce)
			}
			d.err = base64.CorruptInputError(d.qOff[at])
			return w
		}
		d.padded = d.q[3] == '='
	}
	return w
}
