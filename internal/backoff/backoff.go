// Package backoff is the one rule of exponential backoff with jitter, shared by the Mimecast
// client and the Elasticsearch writer so that the two cannot drift apart.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Exponential returns the wait before retry number n (1-based): base, doubled for each retry
// after the first, never above ceiling, then jittered (see Jitter).
func Exponential(n int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return Jitter(min(d, ceiling))
}

// Jitter returns a random duration in [d/2, d], so that callers that failed together do not
// retry together.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
