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
	old := `{"settings":{"number_of_replicas":0},"mappings":{"dynamic":false,"properties":{"mailbox":{"type":"keyword"},"view":{"type":"keyword"},"received":{"type":"date"},"generation":{"type":"long"}}}}`
	put(http.MethodPut, "/"+w.prefix+"-messages", old)
	put(http.MethodPut, "/"+w.prefix+"-attachments", old)
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
