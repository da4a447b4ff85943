package index_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/index"
)

// testEvents is a kind of the tests' own, made the way other packages make theirs.
var testEvents = index.NewKind(index.Spec{
	Name: "test-events",
	Mapping: func() map[string]any {
		return map[string]any{"dynamic": false, "properties": map[string]any{
			"key":   map[string]any{"type": "keyword"},
			"count": map[string]any{"type": "long"},
			"seen":  map[string]any{"type": "keyword"},
		}}
	},
	Settings: func() map[string]any { return map[string]any{"number_of_shards": 1} },
})

func TestKinds(t *testing.T) {
	for name, k := range map[string]index.Kind{"messages": index.Messages, "attachments": index.Attachments, "test-events": testEvents} {
		if k.String() != name {
			t.Errorf("String() = %q, want %q", k.String(), name)
		}
	}
	if index.Messages == index.Attachments || index.Messages == (index.Kind{}) {
		t.Error("the archive's kinds are not distinct, non-zero kinds")
	}
	twin := index.NewKind(index.Spec{Name: "test-events", Mapping: func() map[string]any { return nil }})
	if twin == testEvents {
		t.Error("two kinds made by NewKind compare equal")
	}
	if copied := testEvents; copied != testEvents {
		t.Error("a copy of a kind is not that kind")
	}
}

// A cluster refuses, before it writes anything, a kind that shares its name with one it
// manages (the archive's from the start): both would install templates under that name.
func TestEnsureRefusesATakenName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := index.Open(ctx, e.config(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	impostor := index.NewKind(index.Spec{Name: "messages", Mapping: func() map[string]any {
		return map[string]any{"properties": map[string]any{"x": map[string]any{"type": "long"}}}
	}})
	if err := c.Ensure(ctx, impostor); err == nil || !strings.Contains(err.Error(), `"messages"`) {
		t.Fatalf("Ensure of a second kind named messages = %v; want an error naming it", err)
	}
	if err := c.Ensure(ctx, testEvents, testEvents); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	if err := c.Ensure(ctx, testEvents); err != nil {
		t.Fatalf("ensure again: %v", err)
	}
	twin := index.NewKind(index.Spec{Name: "test-events", Mapping: func() map[string]any { return nil }})
	if err := c.Ensure(ctx, twin); err == nil {
		t.Fatal("Ensure of a second kind named test-events succeeded")
	}
	for _, name := range []string{c.IndexName(index.Messages), c.IndexName(index.Messages) + "@mimecrawl"} {
		req, _ := http.NewRequest(http.MethodHead, e.base+"/_index_template/"+name, nil)
		if strings.HasSuffix(name, "@mimecrawl") {
			req, _ = http.NewRequest(http.MethodHead, e.base+"/_component_template/"+name, nil)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("template %s: status %d; the refused Ensure must write nothing", name, resp.StatusCode)
		}
	}
}

// A create of an id already there is "already there", not a failure; an update with upsert
// creates the document and then updates it.
func TestWriterCreateAndScriptedUpdate(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	ctx := context.Background()
	if err := c.Ensure(ctx, testEvents); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	first := write(t, c, index.Doc{Kind: testEvents, ID: "a", Op: index.OpCreate, Body: map[string]any{"key": "first"}})
	if r := first.one("a"); r.Err != nil || r.Existed {
		t.Fatalf("first create: %+v", r)
	}
	again := write(t, c, index.Doc{Kind: testEvents, ID: "a", Op: index.OpCreate, Body: map[string]any{"key": "second"}})
	if r := again.one("a"); r.Err != nil || !r.Existed || r.Status != 409 {
		t.Fatalf("second create = %+v; want success with Existed and status 409", r)
	}

	// The shared test cluster has no scripting module, so the update here is a partial
	// document with doc_as_upsert; a script body goes through the same path.
	upd := func(seen string, n int) index.Doc {
		return index.Doc{Kind: testEvents, ID: "g", Op: index.OpUpdate, Body: map[string]any{
			"doc":           map[string]any{"key": "g", "seen": []string{seen}, "count": n},
			"doc_as_upsert": true,
		}}
	}
	res := write(t, c, upd("x", 1))
	if r := res.one("g"); r.Err != nil {
		t.Fatalf("upsert: %v", r.Err)
	}
	res = write(t, c, upd("y", 2))
	if r := res.one("g"); r.Err != nil {
		t.Fatalf("update: %v", r.Err)
	}
	if err := c.RefreshKinds(ctx, testEvents); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Source struct {
			Key   string   `json:"key"`
			Seen  []string `json:"seen"`
			Count int      `json:"count"`
		} `json:"_source"`
	}
	getJSON(t, e.base+"/"+c.IndexName(testEvents)+"/_doc/g", &doc)
	if doc.Source.Count != 2 || len(doc.Source.Seen) != 1 || doc.Source.Seen[0] != "y" {
		t.Errorf("document after upsert and update = %+v; want the update's fields", doc.Source)
	}
	getJSON(t, e.base+"/"+c.IndexName(testEvents)+"/_doc/a", &doc)
	if doc.Source.Key != "first" {
		t.Errorf("created document = %+v; the second create must not overwrite it", doc.Source)
	}

	hits, err := c.FindByTerms(ctx, testEvents, "key", []string{"first", "g", "absent"}, []string{"key"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, h := range hits {
		var s struct{ Key string }
		if err := json.Unmarshal(h.Source, &s); err != nil {
			t.Fatal(err)
		}
		found[h.ID] = s.Key
		if h.Index != c.IndexName(testEvents) {
			t.Errorf("hit index %q", h.Index)
		}
	}
	if len(found) != 2 || found["a"] != "first" || found["g"] != "g" {
		t.Errorf("FindByTerms = %v; want a and g", found)
	}
}
