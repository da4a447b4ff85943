package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// An installation of the release before versioned indices: check says what the next crawl
// will do and leaves the old index alone; the crawl migrates it and keeps its documents.
func TestCheckReportsMigrationAndCrawlRunsIt(t *testing.T) {
	w := newWorld(t)
	esURL := os.Getenv("ELASTICSEARCH_URL")
	put := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, esURL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
	}
	// That release installed an index template of the index's name, marked as mimecrawl's,
	// and then created the index from it: the template is how this release recognises the
	// index as one of its own.
	old := `{"settings":{"number_of_replicas":0},"mappings":{"dynamic":false,"properties":{"mailbox":{"type":"keyword"},"view":{"type":"keyword"},"received":{"type":"date"},"generation":{"type":"long"}}}}`
	for _, kind := range []string{"messages", "attachments"} {
		name := w.prefix + "-" + kind
		put(http.MethodPut, "/_index_template/"+name, `{"index_patterns":["`+name+`"],"priority":500,"template":`+old+`,"_meta":{"managed_by":"mimecrawl"}}`)
		put(http.MethodPut, "/"+name, "")
	}
	put(http.MethodPut, "/"+w.prefix+"-messages/_doc/old-1?refresh=true",
		`{"mailbox":"gone@example.com","view":"INBOX","received":"2024-03-01T12:00:00Z","subject":"kept","generation":1}`)

	code, out, logs := w.run("check")
	if code != 0 || !strings.Contains(out, "elasticsearch upgrade") || !strings.Contains(out, "the next crawl migrates "+w.prefix+"-messages") {
		t.Fatalf("check: exit %d, want 0 and the pending migration named:\n%s\n%s", code, out, logs)
	}
	if n := w.count("mailbox:\"gone@example.com\""); n != 1 {
		t.Errorf("check changed the old index: %d old documents, want 1", n)
	}

	if code, out, logs := w.run("crawl"); code != 0 {
		t.Fatalf("crawl exit %d\n%s\n%s", code, out, logs)
	}
	if n := w.count(`mimecast.mailbox:"gone@example.com" AND email.subject:"kept"`); n != 1 {
		t.Errorf("the old document after the migration: %d found by its new field names, want 1", n)
	}
	if code, out, _ := w.run("check"); code != 0 || strings.Contains(out, "elasticsearch upgrade") {
		t.Errorf("check after the migration: exit %d, still reports an upgrade:\n%s", code, out)
	}
}

// An operator's own index under the name of mimecrawl's alias, with no template of an earlier
// mimecrawl: check and crawl refuse it (exit 1) with a message naming it and the way out, and
// the index keeps its document.
func TestCheckAndCrawlRefuseAnIndexNotOurs(t *testing.T) {
	w := newWorld(t)
	esURL := os.Getenv("ELASTICSEARCH_URL")
	name := w.prefix + "-messages"
	for _, r := range []struct{ path, body string }{
		{"/" + name, `{"settings":{"number_of_replicas":0},"mappings":{"properties":{"ticket":{"type":"keyword"}}}}`},
		{"/" + name + "/_doc/ops-1?refresh=true", `{"ticket":"OPS-1"}`},
	} {
		req, _ := http.NewRequest(http.MethodPut, esURL+r.path, strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("PUT %s: status %d", r.path, res.StatusCode)
		}
	}
	for _, cmd := range []string{"check", "crawl"} {
		code, out, logs := w.run(cmd)
		if code != 1 || !strings.Contains(out+logs, "index "+name+" was not created by mimecrawl") ||
			!strings.Contains(out+logs, "elasticsearch.index_prefix") || strings.Contains(out, "view_index_metadata") {
			t.Errorf("%s: exit %d, want 1 and the index named with the way out:\n%s\n%s", cmd, code, out, logs)
		}
	}
	if n := w.count(`ticket:"OPS-1"`); n != 1 {
		t.Errorf("the operator's document: %d found, want 1", n)
	}
}
