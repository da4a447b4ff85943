// Package hostile generates hostile input for tests lazily: streams of hundreds of megabytes
// that the test itself never holds, so that a memory bound asserted on the code under test
// measures that code and not the test.
package hostile

import "io"

// repeatReader yields n bytes of pattern over and over.
type repeatReader struct {
	pattern []byte
	n, off  int64
}

// Repeat returns a reader of n bytes made of pattern repeated (the last copy cut short).
func Repeat(pattern string, n int64) io.Reader {
	return &repeatReader{pattern: []byte(pattern), n: n}
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for n := 0; n < len(p); {
		c := copy(p[n:], r.pattern[r.off%int64(len(r.pattern)):])
		n += c
		r.off += int64(c)
	}
	return len(p), nil
}
