package alerts

import (
	"testing"
	"time"
)

// FuzzDecodeCursor: whatever the state file holds, decoding never panics, and a cursor that
// decodes encodes to one that decodes to the same position.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursor{Since: t0}.encode())
	f.Add(cursor{From: t0, To: t0.Add(time.Hour), Token: "100"}.encode())
	f.Add(cursor{Token: "NDU1NA==", Latest: t0, Forbidden: true, Permission: "x"}.encode())
	f.Add(`{"v":1,"from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}`)
	f.Add(`{"v":2}`)
	f.Add(`not json`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor("alerts/x", s)
		if err != nil {
			return
		}
		again, err := decodeCursor("alerts/x", c.encode())
		if err != nil {
			t.Fatalf("re-encoded cursor does not decode: %v", err)
		}
		if !samePosition(again, c) {
			t.Fatalf("position changed through encoding: %+v then %+v", c, again)
		}
	})
}
