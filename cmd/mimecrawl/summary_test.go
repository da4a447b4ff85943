package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// The summary shows the concurrency the run used when the client had a bound, and nothing
// about it otherwise.
func TestSummaryPrintsConcurrency(t *testing.T) {
	var s Summary
	s.setConcurrency(mimecast.ConcurrencyStats{Adaptive: true, Initial: 16, Limit: 48, LimitAvg: 37.24, LimitMax: 52, InFlightMax: 48})
	var b strings.Builder
	s.Print(&b)
	if want := "  concurrency   adaptive, 16 → 48 (avg 37.2, highest 52), max in flight 48\n"; !strings.Contains(b.String(), want) {
		t.Errorf("summary:\n%s\nwant the line %q", b.String(), want)
	}
	blob, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"api_concurrency_limit":48`, `"api_concurrency_limit_avg":37.24`, `"api_inflight_max":48`} {
		if !strings.Contains(string(blob), field) {
			t.Errorf("summary JSON %s lacks %s", blob, field)
		}
	}

	var none Summary
	none.setConcurrency(mimecast.ConcurrencyStats{})
	b.Reset()
	none.Print(&b)
	if strings.Contains(b.String(), "concurrency") {
		t.Errorf("a client without a bound printed a concurrency line:\n%s", b.String())
	}
}
