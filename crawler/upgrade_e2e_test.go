package crawler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/state"
)

// The upgrade from the release before ECS and versioned indices: that release kept each kind
// in a concrete index named {prefix}-messages / {prefix}-attachments, with flat field names,
// installed by an index template of the same name. The test builds such an installation from
// the documents of a real crawl (turned back into the old shapes), adds an operator's @custom
// component templates, and lets the new release's check and Setup loose on it.

// oldMessageMapping and oldAttachmentMapping are the mappings that release installed.
const oldMessageMapping = `{"dynamic":false,"properties":{
 "mailbox":{"type":"keyword"},"domain":{"type":"keyword"},"view":{"type":"keyword"},
 "message_id":{"type":"keyword"},"mime_message_id":{"type":"keyword"},"received":{"type":"date"},
 "subject":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}},
 "from":{"properties":{"address":{"type":"keyword"},"name":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}}}},
 "to":{"properties":{"address":{"type":"keyword"},"name":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}}}},
 "cc":{"properties":{"address":{"type":"keyword"},"name":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}}}},
 "reply_to":{"properties":{"address":{"type":"keyword"},"name":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}}}},
 "headers":{"type":"flattened","ignore_above":2048},"body":{"type":"text"},"body_from_html":{"type":"boolean"},
 "oversize":{"type":"boolean"},"size":{"type":"long"},"attachment_count":{"type":"integer"},
 "attachment_names":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}},
 "smash":{"type":"keyword"},"generation":{"type":"long"},"indexed_at":{"type":"date"}}}`

const oldAttachmentMapping = `{"dynamic":false,"_source":{"excludes":["data"]},"properties":{
 "mailbox":{"type":"keyword"},"domain":{"type":"keyword"},"view":{"type":"keyword"},
 "message_id":{"type":"keyword"},"message_doc_id":{"type":"keyword"},"attachment_id":{"type":"keyword"},
 "received":{"type":"date"},"subject":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}},
 "filename":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}},
 "content_type":{"type":"keyword"},"size":{"type":"long"},"sha256":{"type":"keyword"},"oversize":{"type":"boolean"},
 "content":{"type":"text"},
 "attachment":{"properties":{"content":{"type":"text"},"content_type":{"type":"keyword"},"content_length":{"type":"long"},
   "language":{"type":"keyword"},"title":{"type":"text"},"author":{"type":"text"}}},
 "attachment_error":{"type":"keyword","ignore_above":1024},"generation":{"type":"long"},"indexed_at":{"type":"date"}}}`

// oldAddress is the old {address, name} object of the i-th address of a group.
func oldAddress(src map[string]any, group string, i int) map[string]any {
	addrs, _ := asList(src["email."+group+".address"])
	if i >= len(addrs) {
		return nil
	}
	a := map[string]any{"address": addrs[i]}
	if names, _ := asList(src["mimecast."+group+".name"]); i < len(names) {
		a["name"] = names[i]
	}
	return a
}

func asList(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case nil:
		return nil, false
	}
	return []any{v}, true
}

// oldMessage turns a (flattened) message document of this release into what the old release
// wrote for the same message.
func oldMessage(src map[string]any) map[string]any {
	old := map[string]any{
		"mailbox": src["mimecast.mailbox"], "domain": src["mimecast.domain"], "view": src["mimecast.view"],
		"message_id": src["mimecast.id"], "mime_message_id": src["email.message_id"], "received": src["@timestamp"],
		"subject": src["email.subject"], "from": oldAddress(src, "from", 0), "body": src["mimecast.body"],
		"body_from_html": src["mimecast.body_from_html"], "oversize": src["mimecast.oversize"], "size": src["mimecast.size"],
		"attachment_count": src["mimecast.attachment_count"], "smash": src["mimecast.smash"],
		"generation": src["mimecast.generation"], "indexed_at": src["event.ingested"],
	}
	for _, g := range []string{"to", "cc"} {
		var as []any
		for i := 0; oldAddress(src, g, i) != nil; i++ {
			as = append(as, oldAddress(src, g, i))
		}
		if as != nil {
			old[g] = as
		}
	}
	if r := oldAddress(src, "reply_to", 0); r != nil {
		old["reply_to"] = r
	}
	headers := map[string]any{}
	for k, v := range src {
		if name, ok := strings.CutPrefix(k, "mimecast.headers."); ok {
			headers[name] = v
		}
	}
	if len(headers) > 0 {
		old["headers"] = headers
	}
	// email.attachments: several stay a list of objects; exactly one was flattened.
	var names []any
	if n, ok := src["email.attachments.file.name"]; ok {
		names = append(names, n)
	}
	list, _ := asList(src["email.attachments"])
	for _, a := range list {
		if file, ok := a.(map[string]any)["file"].(map[string]any); ok {
			names = append(names, file["name"])
		}
	}
	if names != nil {
		old["attachment_names"] = names
	}
	return dropNil(old)
}

// oldAttachment turns a (flattened) attachment document of this release into the old shape.
func oldAttachment(src map[string]any) map[string]any {
	old := map[string]any{
		"mailbox": src["mimecast.mailbox"], "domain": src["mimecast.domain"], "view": src["mimecast.view"],
		"message_id": src["mimecast.id"], "message_doc_id": src["mimecast.message_doc_id"],
		"attachment_id": src["mimecast.attachment_id"], "received": src["@timestamp"], "subject": src["email.subject"],
		"filename": src["email.attachments.file.name"], "content_type": src["email.attachments.file.mime_type"],
		"size": src["email.attachments.file.size"], "sha256": src["email.attachments.file.hash.sha256"],
		"oversize": src["mimecast.oversize"], "content": src["mimecast.content"],
		"generation": src["mimecast.generation"], "indexed_at": src["event.ingested"],
	}
	return dropNil(old)
}

func dropNil(m map[string]any) map[string]any {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	return m
}

// install writes an old-release installation of one kind: its template, its concrete index
// and its documents, under their ids.
func (e *env) installOld(kind, mapping string, docs map[string]map[string]any) {
	e.t.Helper()
	name := e.prefix + "-" + kind
	e.es(http.MethodPut, "/_index_template/"+name, fmt.Sprintf(
		`{"index_patterns":[%q],"priority":500,"template":{"settings":{"number_of_replicas":0},"mappings":%s},"_meta":{"managed_by":"mimecrawl"}}`,
		name, mapping), nil)
	e.es(http.MethodPut, "/"+name, "", nil)
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for id, d := range docs {
		enc.Encode(map[string]any{"index": map[string]any{"_index": name, "_id": id}})
		enc.Encode(d)
	}
	var res struct {
		Errors bool `json:"errors"`
	}
	e.es(http.MethodPost, "/_bulk?refresh=true", body.String(), &res)
	if res.Errors {
		e.t.Fatalf("writing the old %s documents failed", kind)
	}
}

// customTemplates are an operator's @custom component templates: fewer replicas, a bigger
// result window, an analyzer of their own used on the message body, and a mapping _meta of their own.
const customMessages = `{"template":{"settings":{"number_of_replicas":0,"max_result_window":20000,
 "analysis":{"analyzer":{"folding":{"tokenizer":"standard","filter":["lowercase"]}}}},
 "mappings":{"_meta":{"owner":"mail-ops"},"properties":{"mimecast":{"properties":{"body":{"type":"text","analyzer":"folding"}}}}}}}`

const customAttachments = `{"template":{"settings":{"number_of_replicas":0,"max_result_window":20000}}}`

// assertCustomKept checks that what customMessages set is on the messages index.
func (e *env) assertCustomKept(when string) {
	e.t.Helper()
	var settings map[string]struct {
		Settings struct {
			Index struct {
				Replicas string         `json:"number_of_replicas"`
				Window   string         `json:"max_result_window"`
				Analysis map[string]any `json:"analysis"`
			} `json:"index"`
		} `json:"settings"`
	}
	e.es(http.MethodGet, "/"+e.prefix+"-messages/_settings", "", &settings)
	var mappings map[string]struct {
		Mappings struct {
			Meta       map[string]any `json:"_meta"`
			Properties struct {
				Mimecast struct {
					Properties struct {
						Body map[string]any `json:"body"`
					} `json:"properties"`
				} `json:"mimecast"`
			} `json:"properties"`
		} `json:"mappings"`
	}
	e.es(http.MethodGet, "/"+e.prefix+"-messages/_mapping", "", &mappings)
	if len(settings) != 1 || len(mappings) != 1 {
		e.t.Fatalf("%s: %s-messages names %d indices, want 1", when, e.prefix, len(settings))
	}
	for name, s := range settings {
		ix := s.Settings.Index
		if ix.Replicas != "0" || ix.Window != "20000" || ix.Analysis == nil {
			e.t.Errorf("%s: %s settings replicas %q, max_result_window %q, analysis %v; want the operator's 0, 20000 and the folding analyzer",
				when, name, ix.Replicas, ix.Window, ix.Analysis)
		}
		m := mappings[name].Mappings
		if m.Meta["owner"] != "mail-ops" || m.Properties.Mimecast.Properties.Body["analyzer"] != "folding" {
			e.t.Errorf("%s: %s mapping _meta %v, mimecast.body %v; want the operator's", when, name, m.Meta, m.Properties.Mimecast.Properties.Body)
		}
	}
}

func TestUpgradeFromConcreteIndicesKeepsEverything(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, smallArchive())
	first := e.crawl(ctx, crawler.Rules{}, nil)
	if !first.complete() {
		t.Fatalf("first crawl incomplete: %+v\n%s", first.results, e.log)
	}
	current := map[string]map[string]map[string]any{"messages": e.indexed("messages"), "attachments": e.indexed("attachments")}
	if len(current["messages"]) == 0 || len(current["attachments"]) == 0 {
		t.Fatalf("the archive under test has %d messages and %d attachments; the test needs both",
			len(current["messages"]), len(current["attachments"]))
	}

	// The old installation, with the same documents under the same ids, and the state file
	// of the crawl that wrote them.
	indextest.Remove(t, e.esURL, e.prefix)
	oldDocs := map[string]map[string]map[string]any{"messages": {}, "attachments": {}}
	for id, src := range current["messages"] {
		oldDocs["messages"][id] = oldMessage(src)
	}
	for id, src := range current["attachments"] {
		oldDocs["attachments"][id] = oldAttachment(src)
	}
	e.installOld("messages", oldMessageMapping, oldDocs["messages"])
	e.installOld("attachments", oldAttachmentMapping, oldDocs["attachments"])
	e.es(http.MethodPut, "/_component_template/"+e.prefix+"-messages@custom", customMessages, nil)
	e.es(http.MethodPut, "/_component_template/"+e.prefix+"-attachments@custom", customAttachments, nil)
	positions := e.positions()

	// check: reports the migration, installs templates, migrates nothing.
	zero := 0
	c, err := index.Open(ctx, index.Config{Addresses: []string{e.esURL}, IndexPrefix: e.prefix, Replicas: &zero, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(ctx)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if len(plan) != 2 || !plan[0].Concrete || plan[0].To != e.prefix+"-messages-000001" ||
		plan[0].Docs != int64(len(current["messages"])) || plan[1].Docs != int64(len(current["attachments"])) {
		t.Errorf("plan = %+v; want both concrete indices moved with all their documents", plan)
	}
	if err := c.InstallTemplates(ctx); err != nil {
		t.Fatalf("install templates: %v", err)
	}
	var resolved struct {
		Indices []struct {
			Name string `json:"name"`
		} `json:"indices"`
	}
	e.es(http.MethodGet, "/_resolve/index/"+e.prefix+"-*", "", &resolved)
	if len(resolved.Indices) != 2 {
		t.Errorf("after check: indices %+v; want the two old ones, untouched", resolved.Indices)
	}

	// Setup migrates; the documents are the same, in the new names.
	if err := c.Setup(ctx); err != nil {
		t.Fatalf("setup (migration): %v\n%s", err, e.log)
	}
	if !strings.Contains(e.log.String(), "migrated index") {
		t.Errorf("the migration logged nothing")
	}
	for _, kind := range []string{"messages", "attachments"} {
		var aliases map[string]struct {
			Aliases map[string]any `json:"aliases"`
		}
		e.es(http.MethodGet, "/"+e.prefix+"-"+kind+"/_alias", "", &aliases)
		if _, ok := aliases[e.prefix+"-"+kind+"-000001"]; len(aliases) != 1 || !ok {
			t.Errorf("%s: the alias points to %v, want %s-%s-000001 only", kind, aliases, e.prefix, kind)
		}
		got := e.indexed(kind) // fails on a duplicate id
		if len(got) != len(current[kind]) {
			t.Errorf("%s: %d documents after the migration, want %d", kind, len(got), len(current[kind]))
		}
		// Every field the old document held comes back under the name the new release writes.
		for id, want := range current[kind] {
			have, ok := got[id]
			if !ok {
				t.Errorf("%s: document %s lost", kind, id)
				continue
			}
			for _, f := range migratedFields[kind] {
				w := want[f]
				if f == "email.direction" && w == "internal" {
					// The old document does not say which domains are the organisation's: the
					// migration keeps the view's direction, the next crawl of the message
					// tells internal mail apart (convert.go).
					w = index.Direction(fmt.Sprint(want["mimecast.view"]))
				}
				if !reflect.DeepEqual(have[f], w) {
					t.Errorf("%s %s: %s = %v after the migration, want %v", kind, id, f, have[f], w)
				}
			}
			if _, old := have["mailbox"]; old {
				t.Errorf("%s %s: the old field mailbox survived the migration", kind, id)
			}
		}
	}
	if after := e.positions(); !reflect.DeepEqual(after, positions) {
		t.Errorf("the migration changed the state's positions:\n%v\nwant\n%v", after, positions)
	}
	e.assertCustomKept("after the migration")
	if err := c.Setup(ctx); err != nil {
		t.Fatalf("setup again: %v", err)
	}
	e.assertCustomKept("after a second setup")

	// The next incremental crawl: one list call per view, nothing written.
	before := e.indexingTotal()
	e.sim.ResetStats()
	next := e.crawl(ctx, crawler.Rules{}, nil)
	if !next.complete() {
		t.Fatalf("crawl after the upgrade incomplete: %+v\n%s", next.results, e.log)
	}
	if n := requests(e.sim.Stats(), "/api/archive/get-message-list"); n != int64(len(next.results)) {
		t.Errorf("crawl after the upgrade made %d list calls for %d views; want one per view (delta tokens kept)", n, len(next.results))
	}
	if next.writer.Added != 0 || e.indexingTotal() != before {
		t.Errorf("crawl after the upgrade wrote %d documents (index operations %d → %d), want none",
			next.writer.Added, before, e.indexingTotal())
	}
	e.assertCustomKept("after the crawl")
}

// migratedFields are the fields whose values the old documents carried.
var migratedFields = map[string][]string{
	"messages": {"@timestamp", "email.subject", "email.message_id", "email.local_id", "email.direction",
		"email.from.address", "email.to.address", "email.delivery_timestamp", "email.origination_timestamp",
		"user.email", "mimecast.id", "mimecast.mailbox", "mimecast.view", "mimecast.body", "mimecast.generation",
		"mimecast.size", "mimecast.auth.spf", "mimecast.auth.dkim", "mimecast.auth.dmarc", "event.kind", "event.dataset",
		"event.ingested", "ecs.version"},
	// The email fields of the message come from the migrated message documents.
	"attachments": {"@timestamp", "email.subject", "email.local_id", "email.direction", "email.attachments.file.name",
		"email.message_id", "email.from.address", "email.to.address", "email.origination_timestamp",
		"email.attachments.file.hash.sha256", "email.attachments.file.size", "email.attachments.file.extension",
		"email.attachments.file.mime_type", "mimecast.id", "mimecast.mailbox", "mimecast.view",
		"mimecast.message_doc_id", "mimecast.attachment_id", "mimecast.generation", "event.dataset", "ecs.version"},
}

// positions reads every position of the state file.
func (e *env) positions() map[state.Key]state.Position {
	e.t.Helper()
	st, err := state.Open(e.statePath, state.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	ps, err := st.Positions()
	if err != nil {
		e.t.Fatal(err)
	}
	if len(ps) == 0 {
		e.t.Fatal("the state file holds no position")
	}
	return ps
}
