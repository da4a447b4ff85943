package state

import (
	"reflect"
	"testing"
	"time"
)

// FuzzDecodePosition feeds arbitrary bytes to the value decoder: it must
// never panic, and whatever it accepts must encode and decode to itself.
func FuzzDecodePosition(f *testing.F) {
	seeds := []Position{
		{},
		{Token: day(1), Generation: 3, LastRun: day(2), Indexed: 10, Failures: 1},
		{Token: day(1), Pass: &Pass{End: day(4), Low: day(3), Full: true, Generation: 4, Started: day(4)}},
	}
	for _, p := range seeds {
		b, err := encodePosition(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"v":2}`, `{"v":1,"x":1}`, `{"v":1} {}`, `{"v":1}garbage`,
		`{"v":1,"pass":{}}`, `{"v":1,"indexed":-1}`, `{"v":1,"token":"9999-12-31T23:59:59-23:59"}`,
		`{"v":1,"pass":{"end":"2025-01-01T00:00:00Z","low":"2025-01-02T00:00:00Z"}}`,
		"\xff\xfe", `{"v":1,"token":"2025-01-01T00:00:00+01:00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePosition(b)
		if err != nil {
			return
		}
		again, err := encodePosition(p)
		if err != nil {
			t.Fatalf("decoded %q to %+v, which does not encode: %v", b, p, err)
		}
		q, err := decodePosition(again)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", again, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed %+v to %+v", p, q)
		}
		for _, tm := range []time.Time{p.Token, p.LastRun} {
			if tm.Location() != time.UTC {
				t.Fatalf("decoded time %v is not in UTC", tm)
			}
		}
	})
}
