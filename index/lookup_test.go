package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/mimecrawl/mimecrawl/index"
)

// GetDocs and PutDocs: a missing index reads as no documents; create refuses an existing
// document, a stale version is refused, the current one is written, each per item.
func TestGetDocsPutDocs(t *testing.T) {
	e := newEnv(t)
	c, err := index.Open(context.Background(), e.config(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := c.GetDocs(ctx, testEvents, []string{"a"})
	if err != nil || len(got) != 0 {
		t.Fatalf("GetDocs before the index exists = %v, %v; want nothing, no error", got, err)
	}
	if err := c.Ensure(ctx, testEvents); err != nil {
		t.Fatal(err)
	}
	doc := func(n int) json.RawMessage { b, _ := json.Marshal(map[string]any{"count": n}); return b }
	errs, err := c.PutDocs(ctx, testEvents, []index.CondWrite{{ID: "a", Doc: doc(1), Create: true}, {ID: "b", Doc: doc(1), Create: true}})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("create two = %v, %v", errs, err)
	}
	got, err = c.GetDocs(ctx, testEvents, []string{"a", "b", "missing"})
	if err != nil || len(got) != 2 {
		t.Fatalf("GetDocs = %v, %v; want a and b", got, err)
	}
	va, vb := got["a"].Version, got["b"].Version
	stale := vb
	stale.SeqNo-- // an older version than stored: another writer won
	errs, err = c.PutDocs(ctx, testEvents, []index.CondWrite{
		{ID: "a", Doc: doc(2), Version: va},    // current: written
		{ID: "b", Doc: doc(2), Version: stale}, // stale: refused
		{ID: "c", Doc: doc(1), Create: true},   // new: written
		{ID: "a", Doc: doc(3), Create: true},   // exists: refused
	})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], index.ErrConflict) || errs[2] != nil || !errors.Is(errs[3], index.ErrConflict) {
		t.Errorf("per-item results = %v; want nil, conflict, nil, conflict", errs)
	}
	got, err = c.GetDocs(ctx, testEvents, []string{"a", "b"})
	if err != nil || string(got["a"].Source) != string(doc(2)) || string(got["b"].Source) != string(doc(1)) {
		t.Errorf("after the writes: a=%s b=%s (%v); want a updated and b unchanged", got["a"].Source, got["b"].Source, err)
	}
}
