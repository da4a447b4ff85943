package index_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/index"
)

// send makes one request to the real cluster and returns the answer's body; a status other
// than 2xx fails the test.
func send(t *testing.T, method, url, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		t.Fatalf("%s %s: status %d: %s", method, url, res.StatusCode, b)
	}
	return b
}

// status returns the status of a GET.
func status(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// An operator's objects under the names mimecrawl manages: Setup, Plan, Ensure and a deletion
// refuse them with a ForeignError that names the object and what to do, and leave every one
// byte for byte as it was, writing nothing else either. (The pipeline: TestForeignPipeline.)
func TestForeignObjectsAreRefusedAndUntouched(t *testing.T) {
	cases := []struct {
		name string
		// make creates the operator's objects and returns the URLs whose answers must not change.
		make   func(t *testing.T, e env) []string
		object string // the ForeignError's Object
		named  string // the suffix of the name the error gives, after the prefix
		says   string // the error also says this
		// deletes: DeleteWhere is asked to delete a document of the operator's.
		deletes bool
	}{
		{
			name: "index named like the alias",
			make: func(t *testing.T, e env) []string {
				name := e.prefix + "-messages"
				send(t, http.MethodPut, e.base+"/"+name, `{"settings":{"number_of_replicas":0},"mappings":{"properties":{"mimecast":{"properties":{"mailbox":{"type":"keyword"}}},"ticket":{"type":"keyword"}}}}`)
				send(t, http.MethodPut, e.base+"/"+name+"/_doc/ops-1?refresh=true", `{"ticket":"OPS-1","mimecast":{"mailbox":"a@example.com"}}`)
				return []string{"/" + name, "/" + name + "/_search?q=*&filter_path=hits.hits"}
			},
			object: "index", named: "-messages", says: "_mapping", deletes: true,
		},
		{
			name: "alias to an index of the operator's",
			make: func(t *testing.T, e env) []string {
				name := e.prefix + "-ops"
				send(t, http.MethodPut, e.base+"/"+name, `{"settings":{"number_of_replicas":0},"mappings":{"properties":{"mimecast":{"properties":{"mailbox":{"type":"keyword"}}}}},"aliases":{"`+e.prefix+`-messages":{}}}`)
				send(t, http.MethodPut, e.base+"/"+name+"/_doc/ops-1?refresh=true", `{"mimecast":{"mailbox":"a@example.com"}}`)
				return []string{"/" + name, "/_alias/" + e.prefix + "-messages", "/" + name + "/_search?q=*&filter_path=hits.hits"}
			},
			object: "alias", named: "-messages", says: "-ops", deletes: true,
		},
		{
			name: "index named like the versioned index, without the alias",
			make: func(t *testing.T, e env) []string {
				name := e.prefix + "-attachments-000001"
				send(t, http.MethodPut, e.base+"/"+name, `{"settings":{"number_of_replicas":0}}`)
				send(t, http.MethodPut, e.base+"/"+name+"/_doc/ops-1?refresh=true", `{"ticket":"OPS-2"}`)
				return []string{"/" + name, "/" + name + "/_search?q=*&filter_path=hits.hits"}
			},
			object: "index", named: "-attachments-000001", says: "_mapping",
		},
		{
			name: "index template",
			make: func(t *testing.T, e env) []string {
				path := "/_index_template/" + e.prefix + "-messages"
				send(t, http.MethodPut, e.base+path, `{"index_patterns":["`+e.prefix+`-messages-ops*"],"priority":7,"template":{"settings":{"number_of_replicas":0}}}`)
				return []string{path}
			},
			object: "index template", named: "-messages", says: "-messages@custom",
		},
		{
			name: "component template",
			make: func(t *testing.T, e env) []string {
				path := "/_component_template/" + e.prefix + "-attachments@mimecrawl"
				send(t, http.MethodPut, e.base+path, `{"template":{"settings":{"number_of_replicas":0}}}`)
				return []string{path}
			},
			object: "component template", named: "-attachments@mimecrawl", says: "index_prefix",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			urls := tc.make(t, e)
			before := make([][]byte, len(urls))
			for i, u := range urls {
				before[i] = send(t, http.MethodGet, e.base+u, "")
			}
			c, err := index.Open(ctx, e.config(t, ""))
			if err != nil {
				t.Fatal(err)
			}
			want := e.prefix + tc.named
			refused := func(what string, err error) {
				t.Helper()
				var fe *index.ForeignError
				if !errors.As(err, &fe) || !index.IsForeign(err) {
					t.Fatalf("%s: error %v, want a ForeignError", what, err)
				}
				if fe.Object != tc.object || fe.Name != want {
					t.Errorf("%s: refused %s %s, want %s %s", what, fe.Object, fe.Name, tc.object, want)
				}
				if msg := err.Error(); !strings.Contains(msg, want) || !strings.Contains(msg, "managed_by") ||
					!strings.Contains(msg, tc.says) || !strings.Contains(msg, "not created by mimecrawl") {
					t.Errorf("%s: error %q should name %s, the mark, and say %q", what, msg, want, tc.says)
				}
			}
			refused("setup", c.Setup(ctx))
			refused("ensure", c.Ensure(ctx, index.Messages, index.Attachments))
			_, err = c.Plan(ctx)
			refused("plan", err)
			if tc.deletes {
				_, err := c.DeleteWhere(ctx, index.Messages, index.Filter{Terms: map[string]string{index.FieldMailbox: "a@example.com"}})
				refused("delete", err)
			}
			for i, u := range urls {
				if after := send(t, http.MethodGet, e.base+u, ""); !bytes.Equal(after, before[i]) {
					t.Errorf("GET %s changed:\nbefore %s\nafter  %s", u, before[i], after)
				}
			}
			// Nothing else was written either: the check comes before every write.
			for _, u := range []string{"/" + e.prefix + "-messages-000001", "/" + e.prefix + "-attachments-000001",
				"/_component_template/" + e.prefix + "-messages@mimecrawl"} {
				if strings.HasSuffix(u, tc.named) {
					continue // the operator's own
				}
				if st := status(t, e.base+u); st != http.StatusNotFound {
					t.Errorf("GET %s: status %d, want 404: mimecrawl wrote something after refusing", u, st)
				}
			}
		})
	}
}

// What mimecrawl creates carries its mark and the schema version: templates, indices (in their
// mapping, also an index an operator's rollover adds) and the pipeline.
func TestSetupMarksWhatItCreates(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	isMark := func(what string, meta map[string]any) {
		t.Helper()
		if meta["managed_by"] != "mimecrawl" || meta["schema_version"] != float64(1) {
			t.Errorf("%s: _meta = %v, want managed_by mimecrawl and schema_version 1", what, meta)
		}
	}
	for _, k := range []index.Kind{index.Messages, index.Attachments} {
		alias := c.IndexName(k)
		isMark(alias+" mapping", getMapping(t, e.base, alias).Meta)
		var it struct {
			IndexTemplates []struct {
				IndexTemplate struct {
					Meta map[string]any `json:"_meta"`
				} `json:"index_template"`
			} `json:"index_templates"`
		}
		getJSON(t, e.base+"/_index_template/"+alias, &it)
		if len(it.IndexTemplates) != 1 {
			t.Fatalf("index template %s: %d found", alias, len(it.IndexTemplates))
		}
		isMark(alias+" index template", it.IndexTemplates[0].IndexTemplate.Meta)
		var ct struct {
			ComponentTemplates []struct {
				ComponentTemplate struct {
					Meta map[string]any `json:"_meta"`
				} `json:"component_template"`
			} `json:"component_templates"`
		}
		getJSON(t, e.base+"/_component_template/"+alias+"@mimecrawl", &ct)
		if len(ct.ComponentTemplates) != 1 {
			t.Fatalf("component template %s@mimecrawl: %d found", alias, len(ct.ComponentTemplates))
		}
		isMark(alias+"@mimecrawl", ct.ComponentTemplates[0].ComponentTemplate.Meta)
	}
	if c.AttachmentProcessor() {
		var p map[string]struct {
			Meta map[string]any `json:"_meta"`
		}
		getJSON(t, e.base+"/_ingest/pipeline/"+c.PipelineName(), &p)
		isMark("pipeline", p[c.PipelineName()].Meta)
	}
	// A rollover, as an operator's ILM policy does it: the new index is ours too, and a
	// deletion reaches documents in both.
	write(t, c, message("before", "a@example.com", "INBOX", 1))
	send(t, http.MethodPost, e.base+"/"+c.IndexName(index.Messages)+"/_rollover", "")
	isMark("rolled-over index", getMapping(t, e.base, e.prefix+"-messages-000002").Meta)
	write(t, c, message("after", "a@example.com", "INBOX", 1))
	n, err := c.DeleteWhere(context.Background(), index.Messages, index.Filter{Terms: map[string]string{index.FieldMailbox: "a@example.com"}})
	if err != nil || n != 2 {
		t.Fatalf("delete across the rollover: %d, %v; want 2 deleted", n, err)
	}
	if err := c.Setup(context.Background()); err != nil {
		t.Fatalf("setup after the rollover: %v", err)
	}
}

// An index of an earlier release, created before the mark, behind its alias and with the
// index template that release installed (which carried the mark): Setup recognises it, marks
// it without losing the operator's _meta keys, and goes on as before.
func TestSetupMarksAnIndexOfAnEarlierRelease(t *testing.T) {
	e := newEnv(t)
	alias := e.prefix + "-messages"
	send(t, http.MethodPut, e.base+"/_index_template/"+alias,
		`{"index_patterns":["`+alias+`-0*"],"priority":500,"template":{"settings":{"number_of_replicas":0},"mappings":{"properties":{"mimecast":{"properties":{"mailbox":{"type":"keyword"}}}}}},"_meta":{"managed_by":"mimecrawl"}}`)
	send(t, http.MethodPut, e.base+"/"+alias+"-000001", `{"mappings":{"_meta":{"owner":"mail-ops"}},"aliases":{"`+alias+`":{"is_write_index":true}}}`)
	send(t, http.MethodPut, e.base+"/"+alias+"/_doc/old?refresh=true", `{"mimecast":{"mailbox":"a@example.com"}}`)

	c, err := index.Open(context.Background(), e.config(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if plan, err := c.Plan(context.Background()); err != nil || len(plan) != 0 {
		t.Fatalf("plan: %v, %v; want nothing to migrate", plan, err)
	}
	if m := getMapping(t, e.base, alias).Meta; m["managed_by"] != nil {
		t.Errorf("plan marked the index: %v; it changes nothing", m)
	}
	if err := c.Setup(context.Background()); err != nil {
		t.Fatalf("setup: %v", err)
	}
	m := getMapping(t, e.base, alias)
	if m.Meta["managed_by"] != "mimecrawl" || m.Meta["schema_version"] != float64(1) || m.Meta["owner"] != "mail-ops" {
		t.Errorf("_meta after setup = %v; want the mark, the schema version and the operator's owner", m.Meta)
	}
	if m.field(index.FieldSubject) == nil {
		t.Errorf("setup did not add this release's fields to the index of the earlier release")
	}
	if n := count(t, c, index.Messages, index.Filter{}); n != 1 {
		t.Errorf("%d documents after setup, want the 1 of the earlier release", n)
	}
}

// An operator adds an index of their own to mimecrawl's alias after Setup: a deletion whose
// filter matches documents there refuses, and leaves them in place.
func TestDeleteWhereRefusesAnIndexAddedToTheAlias(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	write(t, c, message("ours", "a@example.com", "INBOX", 1))
	ops := e.prefix + "-ops"
	send(t, http.MethodPut, e.base+"/"+ops, `{"settings":{"number_of_replicas":0},"mappings":{"properties":{"mimecast":{"properties":{"mailbox":{"type":"keyword"}}}}},"aliases":{"`+c.IndexName(index.Messages)+`":{}}}`)
	send(t, http.MethodPut, e.base+"/"+ops+"/_doc/theirs?refresh=true", `{"mimecast":{"mailbox":"a@example.com"}}`)

	_, err := c.DeleteWhere(context.Background(), index.Messages, index.Filter{Terms: map[string]string{index.FieldMailbox: "a@example.com"}})
	var fe *index.ForeignError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), ops) {
		t.Fatalf("delete: %v; want a ForeignError naming %s", err, ops)
	}
	var hits struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	getJSON(t, e.base+"/"+ops+"/_search", &hits)
	if hits.Hits.Total.Value != 1 {
		t.Errorf("the operator's index holds %d documents, want its 1", hits.Hits.Total.Value)
	}
}
