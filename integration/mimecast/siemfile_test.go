package mimecast

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The decompression bound follows the size the listing states: a small file cannot cost
// what the absolute bound allows.
func TestSIEMFileCapFollowsListedSize(t *testing.T) {
	for size, want := range map[int64]int64{-1: maxSIEMFile, 1000: minSIEMFileCap, 5 << 20: 500 << 20, 1 << 40: maxSIEMFile} {
		if got := siemFileCap(size); got != want {
			t.Errorf("cap of a %d-byte file = %d, want %d", size, got, want)
		}
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(strings.Repeat(`{"a":1}`+"\n", 20_000))) // 160 kB inflated
	_ = zw.Close()
	n := 0
	err := streamNDJSON(bytes.NewReader(b.Bytes()), 64<<10, func(json.RawMessage) error { n++; return nil })
	if !errors.Is(err, ErrMalformedFile) || !strings.Contains(err.Error(), "decompressed") {
		t.Errorf("past the bound: %v", err)
	}
	if n == 0 || n >= 20_000 {
		t.Errorf("%d records before the bound", n)
	}
}
