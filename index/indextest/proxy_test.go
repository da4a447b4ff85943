package indextest_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// TestProxySplicesItemsInOrder sends a bulk request with faults in the middle and checks that
// every item result sits at the position of its action, as bulk clients rely on.
func TestProxySplicesItemsInOrder(t *testing.T) {
	base := indextest.URL(t)
	prefix := indextest.Prefix(t, base)
	p := indextest.NewProxy(t, base)
	p.RejectTooMany("b", 1)
	p.RejectMapping("d")

	name := prefix + "-splice"
	var body strings.Builder
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		body.WriteString(`{"index":{"_index":"` + name + `","_id":"` + id + `"}}` + "\n" + `{"n":1}` + "\n")
	}
	body.WriteString(`{"delete":{"_index":"` + name + `","_id":"missing"}}` + "\n")

	type item struct {
		ID     string `json:"_id"`
		Status int    `json:"status"`
		Error  *struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	send := func() []map[string]item {
		res, err := http.Post(p.URL+"/_bulk", "application/x-ndjson", strings.NewReader(body.String()))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Errors bool              `json:"errors"`
			Items  []map[string]item `json:"items"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if !out.Errors {
			t.Error("errors = false, want true")
		}
		return out.Items
	}

	tests := []struct {
		name string
		want []string // op/id/status/error type, per position
	}{
		{"first request", []string{
			"index/a/201/", "index/b/429/es_rejected_execution_exception", "index/c/201/",
			"index/d/400/mapper_parsing_exception", "index/e/201/", "delete/missing/404/"}},
		{"429 given once only", []string{
			"index/a/200/", "index/b/201/", "index/c/200/",
			"index/d/400/mapper_parsing_exception", "index/e/200/", "delete/missing/404/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := send()
			if len(items) != len(tt.want) {
				t.Fatalf("%d items, want %d", len(items), len(tt.want))
			}
			for i, it := range items {
				for op, r := range it {
					got := op + "/" + r.ID + "/" + strconv.Itoa(r.Status) + "/"
					if r.Error != nil {
						got += r.Error.Type
					}
					if got != tt.want[i] {
						t.Errorf("item %d = %s, want %s", i, got, tt.want[i])
					}
				}
			}
		})
	}
	if got := p.Seen("b"); got != 2 {
		t.Errorf("Seen(b) = %d, want 2", got)
	}
	if got := p.BulkRequests(); got != 2 {
		t.Errorf("BulkRequests() = %d, want 2", got)
	}
}
