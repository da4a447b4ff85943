package backoff

import (
	"testing"
	"time"
)

func TestExponential(t *testing.T) {
	base, ceiling := 100*time.Millisecond, time.Second
	for _, tc := range []struct {
		n      int
		lo, hi time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second}, // 1.6 s capped
		{60, 500 * time.Millisecond, time.Second},
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
	} {
		for range 200 {
			if d := Exponential(tc.n, base, ceiling); d < tc.lo || d > tc.hi {
				t.Fatalf("Exponential(%d) = %v, want within [%v, %v]", tc.n, d, tc.lo, tc.hi)
			}
		}
	}
}

func TestJitterSmall(t *testing.T) {
	for _, d := range []time.Duration{0, 1, -5} {
		if got := Jitter(d); got != d {
			t.Errorf("Jitter(%v) = %v", d, got)
		}
	}
}
