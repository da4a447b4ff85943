package index

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// The attachment pipeline is only installed on a cluster with the attachment processor, which
// the test cluster may lack; the check that comes before it is run here on its own. A pipeline
// of the operator's under our name is refused and left as it was; one written by a release
// before the mark (its description, no _meta) and one with the mark are ours.
func TestForeignPipeline(t *testing.T) {
	base := indextest.URL(t)
	prefix := indextest.Prefix(t, base)
	ctx := context.Background()
	c, err := Open(ctx, Config{Addresses: []string{base}, IndexPrefix: prefix, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	u := base + "/_ingest/pipeline/" + c.PipelineName()
	call := func(method, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d: %s", method, u, res.StatusCode, b)
		}
		return string(b)
	}
	put := func(body string) { call(http.MethodPut, body) }
	get := func() string { return call(http.MethodGet, "") }
	if err := c.claimPipeline(ctx); err != nil {
		t.Fatalf("no pipeline yet: %v", err)
	}
	put(`{"description":"the operator's","processors":[]}`)
	before := get()
	err = c.claimPipeline(ctx)
	var fe *ForeignError
	if !errors.As(err, &fe) || fe.Object != "ingest pipeline" || fe.Name != c.PipelineName() ||
		!strings.Contains(err.Error(), "managed_by") || !strings.Contains(err.Error(), "index_prefix") {
		t.Fatalf("operator's pipeline: %v, want a ForeignError naming it, the mark and the way out", err)
	}
	if after := get(); after != before {
		t.Errorf("the pipeline changed: %s, was %s", after, before)
	}
	put(`{"description":"` + pipelineDescription + `","processors":[]}`)
	if err := c.claimPipeline(ctx); err != nil {
		t.Errorf("pipeline of a release before the mark: %v", err)
	}
	put(`{"description":"changed by hand","_meta":{"managed_by":"mimecrawl"},"processors":[]}`)
	if err := c.claimPipeline(ctx); err != nil {
		t.Errorf("marked pipeline: %v", err)
	}
}
