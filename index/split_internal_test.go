package index

import (
	"bytes"
	"encoding/json"
	"testing"
)

// splitActions cuts a body into the actions countActions counts, each with its own lines,
// and a too-large item names the action's index and id.
func TestSplitActions(t *testing.T) {
	body := []byte(`{"index":{"_index":"i","_id":"a"}}
{"x":1}
{"delete":{"_index":"i","_id":"b"}}
{"create":{"_index":"i","_id":"c"}}
{"y":"` + string(bytes.Repeat([]byte("z"), 70000)) + `"}
{"update":{"_index":"i","_id":"d","retry_on_conflict":5}}
{"doc":{"x":2},"doc_as_upsert":true}
`)
	acts, err := splitActions(body)
	if err != nil {
		t.Fatal(err)
	}
	n, err := countActions(bytes.NewReader(body))
	if err != nil || n != len(acts) || n != 4 {
		t.Fatalf("%d actions, countActions says %d (%v); want 4", len(acts), n, err)
	}
	var joined []byte
	for _, a := range acts {
		joined = append(joined, a.raw...)
	}
	if !bytes.Equal(joined, body) {
		t.Errorf("the actions put together differ from the body")
	}
	if acts[1].size != 0 || acts[2].size != 70008 || acts[0].size != 7 {
		t.Errorf("source sizes %d, %d, %d; want 7, 0 (a delete has none), 70008", acts[0].size, acts[1].size, acts[2].size)
	}
	item, err := tooLargeItem(acts[2])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]struct {
		Index  string `json:"_index"`
		ID     string `json:"_id"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(item, &got); err != nil || got["create"].ID != "c" || got["create"].Index != "i" || got["create"].Status != 413 {
		t.Errorf("too-large item %s (%v); want create of c in i, status 413", item, err)
	}
	if _, err := splitActions([]byte(`{"index":{"_id":"a"}}` + "\n")); err == nil {
		t.Errorf("an action without its source line was accepted")
	}
}
