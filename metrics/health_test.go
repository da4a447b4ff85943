package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func TestHealth(t *testing.T) {
	const interval = time.Minute
	cases := []struct {
		name    string
		observe func(h *Health, start time.Time)
		after   time.Duration // since start, when asked
		healthy bool
	}{
		{"no poll finished yet", func(*Health, time.Time) {}, time.Hour, true},
		{"last poll succeeded", func(h *Health, s time.Time) { h.Observe("threats", true, "", s) }, time.Hour, true},
		{"failed within two intervals of the last success", func(h *Health, s time.Time) {
			h.Observe("threats", true, "", s)
			h.Observe("threats", false, "boom", s.Add(interval))
		}, 2 * interval, true},
		{"failed for more than two intervals", func(h *Health, s time.Time) {
			h.Observe("threats", true, "", s)
			h.Observe("threats", false, "boom", s.Add(3*interval))
		}, 3 * interval, false},
		{"never succeeded, started long ago", func(h *Health, s time.Time) {
			h.Observe("threats", false, "boom", s.Add(3*interval))
		}, 3 * interval, false},
		{"recovered", func(h *Health, s time.Time) {
			h.Observe("threats", false, "boom", s.Add(3*interval))
			h.Observe("threats", true, "", s.Add(4*interval))
		}, 4 * interval, true},
		{"one source of two failing", func(h *Health, s time.Time) {
			h.Observe("threats", true, "", s.Add(3*interval))
			h.Observe("dlp", false, "boom", s.Add(3*interval))
		}, 3 * interval, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{t0}
			h := NewHealth([]string{"threats", "dlp"}, interval, clk.now)
			tc.observe(h, t0)
			clk.t = t0.Add(tc.after)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			want := http.StatusOK
			if !tc.healthy {
				want = http.StatusServiceUnavailable
			}
			if rec.Code != want {
				t.Errorf("status %d, want %d: %s", rec.Code, want, rec.Body.String())
			}
			if !tc.healthy && !strings.Contains(rec.Body.String(), "boom") {
				t.Errorf("503 body does not say why: %q", rec.Body.String())
			}
		})
	}
}
