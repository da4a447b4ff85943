package metrics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", path, cc)
	}
	return rec.Code, rec.Body.String()
}

// Liveness follows the loops, readiness the sources: a forbidden source is live and ready, a
// failing one is live and ready until it failed for two intervals, and only a loop without a
// sign of life for StallAfter fails liveness.
func TestHealth(t *testing.T) {
	const interval = time.Minute
	const stall = interval + DefaultStallGrace
	ok := SourcePass{Source: "threats", Result: PassOK}
	fail := SourcePass{Source: "threats", Result: PassFailed, Error: "boom"}
	cases := []struct {
		name        string
		steps       func(h *Health, clk *testClock)
		live, ready bool
		want        SourceCondition
	}{
		{"no pass finished yet", func(_ *Health, clk *testClock) { clk.add(interval) }, true, true, SourceStarting},
		{"last pass succeeded", func(h *Health, clk *testClock) { h.Pass(ok); clk.add(interval) }, true, true, SourceOK},
		{"forbidden for hours", func(h *Health, clk *testClock) {
			for range 300 {
				h.Pass(SourcePass{Source: "threats", Result: PassForbidden, Permission: "Threats | Read"})
				clk.add(interval)
			}
		}, true, true, SourceForbidden},
		{"failed within two intervals of the last success", func(h *Health, clk *testClock) {
			h.Pass(ok)
			clk.add(interval)
			h.Pass(fail)
			clk.add(interval)
		}, true, true, SourceFailing},
		{"failing for hours", func(h *Health, clk *testClock) {
			for range 300 {
				h.Pass(fail)
				clk.add(interval)
			}
		}, true, false, SourceFailing},
		{"recovered", func(h *Health, clk *testClock) {
			h.Pass(fail)
			clk.add(3 * interval)
			h.Pass(ok)
		}, true, true, SourceOK},
		{"an interrupted pass changes nothing", func(h *Health, clk *testClock) {
			h.Pass(ok)
			h.Pass(SourcePass{Source: "threats", Result: PassInterrupted})
		}, true, true, SourceOK},
		{"a long pass that beats", func(h *Health, clk *testClock) {
			for range 10 {
				clk.add(stall / 2)
				h.Beat("threats")
			}
		}, true, true, SourceStarting},
		{"a loop silent beyond StallAfter", func(h *Health, clk *testClock) {
			h.Pass(ok)
			clk.add(stall + time.Second)
		}, false, false, SourceStalled},
		{"a loop that never started", func(_ *Health, clk *testClock) { clk.add(stall + time.Second) }, false, false, SourceStalled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{t: t0}
			h := NewHealth([]string{"threats", "dlp"}, HealthOptions{Interval: interval, Now: clk.now})
			tc.steps(h, clk)
			h.Beat("dlp") // the other source's loop is alive and says nothing of this one
			h.Pass(SourcePass{Source: "dlp", Result: PassOK})
			var st SourceState
			for _, s := range h.Sources() {
				if s.Source == "threats" {
					st = s
				}
			}
			if st.Condition != tc.want || st.Live != tc.live || st.Ready != tc.ready {
				t.Errorf("state %+v; want %s, live %v, ready %v", st, tc.want, tc.live, tc.ready)
			}
			srv := h.Handler()
			code, body := get(t, srv, "/healthz")
			if wantCode := map[bool]int{true: 200, false: 503}[tc.live]; code != wantCode {
				t.Errorf("/healthz %d, want %d: %s", code, wantCode, body)
			}
			if tc.live && strings.TrimSpace(body) != "ok" {
				t.Errorf("/healthz body %q, want ok", body)
			}
			if !tc.live && !strings.Contains(body, "threats: stalled") {
				t.Errorf("/healthz 503 does not name the stalled loop: %q", body)
			}
			code, body = get(t, srv, "/readyz")
			if wantCode := map[bool]int{true: 200, false: 503}[tc.ready]; code != wantCode {
				t.Errorf("/readyz %d, want %d: %s", code, wantCode, body)
			}
			if !strings.Contains(body, "threats: "+string(tc.want)) || !strings.Contains(body, "dlp: ok") {
				t.Errorf("/readyz does not list every source's state: %q", body)
			}
			if tc.want == SourceFailing && !strings.Contains(body, "boom") {
				t.Errorf("/readyz does not give the last error: %q", body)
			}
			if tc.want == SourceForbidden && !strings.Contains(body, "Threats | Read") {
				t.Errorf("/readyz does not name the permission: %q", body)
			}
			_, body = get(t, srv, "/status")
			var js healthStatus
			if err := json.Unmarshal([]byte(body), &js); err != nil {
				t.Fatalf("/status: %v: %s", err, body)
			}
			if js.Live != tc.live || js.Ready != tc.ready || len(js.Sources) != 2 || js.Sources[1].Condition != tc.want {
				t.Errorf("/status %s", body)
			}
		})
	}
}

// Sources report from their own goroutines while the probes read: no race, nothing lost.
func TestHealthConcurrentReports(t *testing.T) {
	clk := &testClock{t: t0}
	names := []string{"a", "b", "c", "d"}
	h := NewHealth(names, HealthOptions{Interval: time.Minute, Now: clk.now})
	srv := h.Handler()
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			for n := range 200 {
				h.Beat(name)
				r := PassOK
				if i%2 == 1 {
					r = PassFailed
				}
				h.Pass(SourcePass{Source: name, Result: r, Error: fmt.Sprint("pass ", n)})
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			get(t, srv, "/status")
			get(t, srv, "/healthz")
			clk.add(time.Second)
		}
	})
	wg.Wait()
	for _, s := range h.Sources() {
		want := SourceOK
		if s.Source == "b" || s.Source == "d" {
			want = SourceFailing
		}
		if s.Condition != want || (want == SourceFailing && s.LastError != "pass 199") {
			t.Errorf("%+v, want %s after the last pass", s, want)
		}
	}
}
