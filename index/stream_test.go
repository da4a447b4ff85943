package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// streamKind is a data stream kind of the tests' own, as a document owner makes one.
var streamKind = index.NewKind(index.Spec{Name: "test-stream", DataStream: "mimecrawl.indextest",
	Mapping: func() map[string]any {
		return map[string]any{"dynamic": false, "properties": map[string]any{
			"@timestamp": map[string]any{"type": "date"}, "n": map[string]any{"type": "long"}}}
	}})

// A data stream kind: Ensure installs a marked template of Elastic's naming and priority
// above the built-in logs template; documents are created in the stream; StreamIDs finds an
// id in any backing index after rollovers, and Remove deletes every copy.
func TestDataStreamEnsureAndIDsAcrossRollover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := index.Open(ctx, e.config(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ensure(ctx, streamKind); err != nil {
		t.Fatal(err)
	}
	name := c.IndexName(streamKind)
	if want := "logs-mimecrawl.indextest-" + c.Namespace(); name != want {
		t.Fatalf("name = %s, want %s", name, want)
	}
	var tmpl struct {
		IndexTemplates []struct {
			IndexTemplate struct {
				Patterns   []string       `json:"index_patterns"`
				Priority   int            `json:"priority"`
				DataStream map[string]any `json:"data_stream"`
				Meta       map[string]any `json:"_meta"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if err := json.Unmarshal(send(t, http.MethodGet, e.base+"/_index_template/"+name, ""), &tmpl); err != nil {
		t.Fatal(err)
	}
	it := tmpl.IndexTemplates[0].IndexTemplate
	if it.Meta["managed_by"] != "mimecrawl" || it.Priority <= 100 || it.DataStream == nil || len(it.Patterns) != 1 || it.Patterns[0] != name {
		t.Errorf("template = %+v; want marked, priority above 100, a data stream of exactly %s", it, name)
	}

	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	write := func(id string) index.Result {
		t.Helper()
		done := make(chan index.Result, 1)
		body := map[string]any{"@timestamp": time.Now().UTC().Format(time.RFC3339), "n": 1}
		if err := w.Add(ctx, index.Doc{Kind: streamKind, ID: id, Op: index.OpCreate, Body: body}, func(r index.Result) { done <- r }); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return <-done
	}
	if r := write("a"); r.Err != nil {
		t.Fatalf("create in the stream: %v", r.Err)
	}
	send(t, http.MethodPost, e.base+"/"+name+"/_rollover", "")
	if r := write("b"); r.Err != nil {
		t.Fatalf("create after rollover: %v", r.Err)
	}
	send(t, http.MethodPost, e.base+"/"+name+"/_rollover", "")
	defer w.Close(ctx)

	ids, err := c.StreamIDs(ctx, streamKind)
	if err != nil {
		t.Fatal(err)
	}
	has, err := ids.Has(ctx, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if !has["a"] || !has["b"] || has["c"] || len(has) != 2 {
		t.Errorf("Has = %v; want a and b, in two backing indices, and not c", has)
	}
	// The id again in the new write index: create alone accepts it (the reason for Has).
	if r := write("a"); r.Err != nil || r.Existed {
		t.Fatalf("create of a repeated id after a rollover = %+v; Elasticsearch accepted it before", r)
	}
	n, err := ids.Remove(ctx, []string{"a"})
	if err != nil || n != 2 {
		t.Errorf("Remove = %d, %v; want both copies of a deleted", n, err)
	}
	if has, err := ids.Has(ctx, []string{"a"}); err != nil || has["a"] {
		send(t, http.MethodPost, e.base+"/"+name+"/_refresh", "")
		if has, err = ids.Has(ctx, []string{"a"}); err != nil || has["a"] {
			t.Errorf("a still there after Remove: %v %v", has, err)
		}
	}
	if err := c.Ensure(ctx, streamKind); err != nil {
		t.Errorf("Ensure again on the rolled-over stream: %v", err)
	}
}

// Objects of the stream's name that are not mimecrawl's are refused: a template without the
// mark, and a data stream another template created (its backing indices lack the mark).
func TestDataStreamForeignRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		object string
		make   func(t *testing.T, base, stream string)
	}{
		{"foreign template", "index template", func(t *testing.T, base, stream string) {
			send(t, http.MethodPut, base+"/_index_template/"+stream, fmt.Sprintf(`{"index_patterns":[%q],"data_stream":{},"priority":300}`, stream))
		}},
		{"stream of another template", "data stream", func(t *testing.T, base, stream string) {
			send(t, http.MethodPut, base+"/_index_template/"+stream+"-other", fmt.Sprintf(`{"index_patterns":[%q],"data_stream":{},"priority":301}`, stream+"*"))
			send(t, http.MethodPost, base+"/"+stream+"/_doc?refresh=true", fmt.Sprintf(`{"@timestamp":%q}`, time.Now().UTC().Format(time.RFC3339)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			c, err := index.Open(ctx, e.config(t, ""))
			if err != nil {
				t.Fatal(err)
			}
			stream := c.IndexName(streamKind)
			tc.make(t, e.base, stream)
			err = c.Ensure(ctx, streamKind)
			var fe *index.ForeignError
			if !errors.As(err, &fe) || fe.Object != tc.object || fe.Name != stream {
				t.Fatalf("Ensure = %v; want a ForeignError for the %s %s", err, tc.object, stream)
			}
			if !strings.Contains(err.Error(), "mimecrawl leaves it untouched") {
				t.Errorf("error = %v", err)
			}
		})
	}
}

// A lookup that meets a search answering 503 while a shard starts (a new backing index's
// primary, created by another source's first write) tries again and finds what the stream
// holds; a shard that stays unavailable is an error, never "absent".
func TestStreamIDsWaitForShardsToStart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	proxy := indextest.NewProxy(t, e.base)
	c, err := index.Open(ctx, e.config(t, proxy.URL))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ensure(ctx, streamKind); err != nil {
		t.Fatal(err)
	}
	w, err := c.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan index.Result, 1)
	body := map[string]any{"@timestamp": time.Now().UTC().Format(time.RFC3339), "n": 1}
	if err := w.Add(ctx, index.Doc{Kind: streamKind, ID: "a", Op: index.OpCreate, Body: body}, func(r index.Result) { done <- r }); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Err != nil {
		t.Fatal(r.Err)
	}
	ids, err := c.StreamIDs(ctx, streamKind)
	if err != nil {
		t.Fatal(err)
	}
	proxy.FailSearches(3)
	found, err := ids.Has(ctx, []string{"a", "z"})
	if err != nil || !found["a"] || found["z"] {
		t.Fatalf("Has after 3 answers 503 = %v, %v; want a found, z not", found, err)
	}
	proxy.FailSearches(1000)
	if found, err := ids.Has(ctx, []string{"a"}); err == nil {
		t.Fatalf("Has while every search answers 503 = %v, want an error", found)
	}
	proxy.FailSearches(0)
}
