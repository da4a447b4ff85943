package body

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// errPartHeaderTooBig ends the body of a multipart whose part header exceeds maxHeaderBytes.
var errPartHeaderTooBig = errors.New("part header exceeds the size limit")

// partHeaderLimit passes a multipart body through and fails it once a part header grows
// beyond max bytes. go-message reads a part header, and each of its lines, whole from the
// body's reader, so without this a single line of hundreds of megabytes without a line end
// would be held in memory at once.
//
// It follows the body line by line as the parser does: a delimiter line ("--" + boundary,
// then nothing but white space) opens a part header, and the next blank line closes it.
type partHeaderLimit struct {
	r        io.Reader
	dash     []byte // "--" + boundary
	max      int64
	lineLen  int64 // bytes of the current line so far
	first    byte  // first byte of the current line
	matched  int   // bytes of dash the current line starts with
	cand     bool  // the current line may still be a delimiter line
	inHeader bool
	header   int64 // bytes of the current part header so far
	tripped  bool  // the limit was hit; every Read fails from then on
}

func newPartHeaderLimit(r io.Reader, boundary string, max int64) *partHeaderLimit {
	return &partHeaderLimit{r: r, dash: []byte("--" + boundary), max: max, cand: true}
}

func (l *partHeaderLimit) Read(p []byte) (int, error) {
	if l.tripped {
		return 0, errPartHeaderTooBig
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; {
		end := n
		nl := bytes.IndexByte(p[i:n], '\n')
		if nl >= 0 {
			end = i + nl + 1
		}
		seg := p[i:end]
		if l.inHeader {
			if l.header+int64(len(seg)) > l.max {
				l.tripped = true
				// Pass exactly up to the limit; the reader holding the line fails next.
				return i + int(l.max-l.header), errPartHeaderTooBig
			}
			l.header += int64(len(seg))
		}
		l.scan(seg)
		if nl >= 0 {
			l.endLine()
		}
		i = end
	}
	return n, err
}

// scan follows a piece of the current line.
func (l *partHeaderLimit) scan(seg []byte) {
	if l.lineLen == 0 {
		l.first = seg[0]
	}
	l.lineLen += int64(len(seg))
	for _, c := range seg {
		if !l.cand {
			return
		}
		switch {
		case l.matched < len(l.dash):
			l.cand = c == l.dash[l.matched]
			l.matched++
		default:
			l.cand = c == ' ' || c == '\t' || c == '\r' || c == '\n'
		}
	}
}

// endLine moves between body and part header at the end of a line.
func (l *partHeaderLimit) endLine() {
	blank := l.lineLen == 1 || (l.lineLen == 2 && l.first == '\r')
	switch {
	case l.inHeader:
		l.inHeader = !blank
	case l.cand && l.matched == len(l.dash):
		l.inHeader = true
		l.header = 0
	}
	l.lineLen, l.matched, l.cand = 0, 0, true
}

// spillFile is the temporary file of one message's kept parts beyond Options.KeepMemory:
// parts are appended and read back by offset. It is created 0600 by os.CreateTemp and, where
// the system allows, unlinked at once, so that not even a crash leaves it behind.
type spillFile struct {
	f       *os.File
	name    string
	removed bool // unlinked already
	size    int64
}

func newSpillFile(dir string) (*spillFile, error) {
	f, err := os.CreateTemp(dir, "mimecrawl-parts-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file for attachments: %w", err)
	}
	// Fails on Windows, where an open file cannot be removed; close does it there.
	removed := os.Remove(f.Name()) == nil
	return &spillFile{f: f, name: f.Name(), removed: removed}, nil
}

// write appends b and returns its offset.
func (s *spillFile) write(b []byte) (int64, error) {
	off := s.size
	n, err := s.f.WriteAt(b, off)
	s.size += int64(n)
	if err != nil {
		return 0, fmt.Errorf("write temporary file for attachments: %w", err)
	}
	return off, nil
}

// truncate drops everything from off on; a failure only leaves the bytes in place.
func (s *spillFile) truncate(off int64) {
	if off < s.size && s.f.Truncate(off) == nil {
		s.size = off
	}
}

func (s *spillFile) read(off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := s.f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read temporary file for attachments: %w", err)
	}
	return b, nil
}

func (s *spillFile) close() error {
	err := s.f.Close()
	if !s.removed {
		if rerr := os.Remove(s.name); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}
