package simulator

import (
	"crypto/rand"
	"encoding/base64"
	"math"
	"sync"
	"time"
)

// tokenStore issues and checks bearer tokens. Expired tokens are kept so that they can be
// told apart from garbage: the real API answers token_expired for the first and
// token_verification_failed for the second.
type tokenStore struct {
	mu     sync.Mutex
	tokens map[string]tokenInfo
}

type tokenInfo struct {
	client  string
	expires time.Time
}

// tokenState is the outcome of checking a bearer token.
type tokenState int

const (
	tokenValid tokenState = iota
	tokenUnknown
	tokenExpired
)

// maxTokens bounds the store; the oldest expired tokens are dropped first beyond it.
const maxTokens = 100_000

func newTokenStore() *tokenStore { return &tokenStore{tokens: map[string]tokenInfo{}} }

func (ts *tokenStore) issue(client string, now, expires time.Time) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported platforms
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.tokens) >= maxTokens {
		// Forget expired tokens first, then arbitrary ones: a forgotten token answers
		// token_verification_failed, which clients handle like token_expired.
		for k, v := range ts.tokens {
			if !now.Before(v.expires) {
				delete(ts.tokens, k)
			}
		}
		for k := range ts.tokens {
			if len(ts.tokens) < maxTokens/2 {
				break
			}
			delete(ts.tokens, k)
		}
	}
	ts.tokens[tok] = tokenInfo{client: client, expires: expires}
	return tok
}

func (ts *tokenStore) check(tok string, now time.Time) (string, tokenState) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	info, ok := ts.tokens[tok]
	switch {
	case !ok:
		return "", tokenUnknown
	case !now.Before(info.expires):
		return info.client, tokenExpired
	}
	return info.client, tokenValid
}

// expireAll makes every live token answer token_expired from now on.
func (ts *tokenStore) expireAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for k, v := range ts.tokens {
		v.expires = time.Time{}
		ts.tokens[k] = v
	}
}

// limiter is a token bucket per client id: capacity perMinute, refilled continuously at
// perMinute per minute (the documented model adds calls back gradually).
type limiter struct {
	perMinute int
	mu        sync.Mutex
	buckets   map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// limitState is the bucket after a request: whether it was allowed, the whole calls left
// and the time until the next call is added back.
type limitState struct {
	allowed   bool
	remaining int
	reset     time.Duration
}

func newLimiter(perMinute int) *limiter {
	return &limiter{perMinute: perMinute, buckets: map[string]*bucket{}}
}

func (l *limiter) take(client string, now time.Time) limitState {
	if l.perMinute <= 0 {
		return limitState{allowed: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	capacity := float64(l.perMinute)
	perSecond := capacity / 60
	b := l.buckets[client]
	if b == nil {
		b = &bucket{tokens: capacity, last: now}
		l.buckets[client] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(capacity, b.tokens+elapsed*perSecond)
		b.last = now
	}
	st := limitState{}
	if b.tokens >= 1 {
		b.tokens--
		st.allowed = true
	}
	st.remaining = int(math.Floor(b.tokens))
	if b.tokens < capacity {
		missing := 1 - (b.tokens - math.Floor(b.tokens)) // fraction of a call still to refill
		st.reset = time.Duration(math.Ceil(missing/perSecond*1000)) * time.Millisecond
	}
	return st
}
