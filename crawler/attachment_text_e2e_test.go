package crawler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// TestAttachmentTextIsSearchable crawls an archive with real office files (the cluster has no
// attachment processor, so the crawler extracts the text) and searches Elasticsearch for every
// file's text token: each finds its attachment document in the attachments index and its
// message in the messages index (attachment_text). Broken files are counted and indexed with
// their metadata, and the crawl completes. The archive holds every format the crawler reads
// text from; the test fails if one is missing.
func TestAttachmentTextIsSearchable(t *testing.T) {
	ctx := context.Background()
	// 200 messages: every turn of the simulator's document rotation (one message in eight, 14
	// kinds), including the turn that the large message 67 takes, comes round.
	e := newEnv(t, simulator.Options{Seed: 5, Domains: 2, Mailboxes: 4, Messages: 50})
	run := e.crawl(ctx, crawler.Rules{}, func(o *crawler.Options) { o.AttachmentPipeline = false })
	if !run.complete() || run.err != nil {
		t.Fatalf("crawl incomplete (%v): %+v\n%s", run.err, run.results, e.log)
	}
	ex := e.expect(truthFilter{})

	type want struct{ msgDocID, token, ext string }
	var tokens []want
	broken := 0
	exts := map[string]bool{}
	for id, m := range ex.messages {
		for _, a := range m.Attachments {
			if a.TextBroken {
				broken++
			}
			if a.TextToken == "" {
				continue
			}
			// The format by content type: unnamed attachments have no extension.
			ext, ok := formatByType[a.ContentType]
			if !ok {
				t.Errorf("attachment %s has text token %s and an unexpected type %q", a.Filename, a.TextToken, a.ContentType)
			}
			if x := strings.TrimPrefix(path.Ext(a.Filename), "."); a.Filename != "" && x != ext {
				t.Errorf("attachment %s of type %s: extension %q, want %q", a.Filename, a.ContentType, x, ext)
			}
			exts[ext] = true
			tokens = append(tokens, want{msgDocID: id, token: a.TextToken, ext: ext})
		}
	}
	var covered []string
	for ext := range exts {
		covered = append(covered, ext)
	}
	sort.Strings(covered)
	if want := []string{"csv", "docx", "eml", "html", "odp", "ods", "odt", "pdf", "pptx", "rtf", "txt", "xlsx"}; !slices.Equal(covered, want) {
		t.Errorf("formats with a text token: %v, want %v", covered, want)
	}
	if broken == 0 {
		t.Errorf("the archive under test has no broken file")
	}
	if run.totals.TextFailed != int64(broken) {
		t.Errorf("attachments_text_failed = %d, want %d (the broken files)", run.totals.TextFailed, broken)
	}
	// Every miss is counted by format and reason, and each reason is named once at warn with
	// the file, the RFC Message-ID and the mailbox; the rest go to debug.
	var byReason int64
	for _, m := range run.totals.TextMisses {
		byReason += m.Count
		if m.Format == "" || m.Reason == "" {
			t.Errorf("text miss without a format or reason: %+v", m)
		}
		warned := 0
		for _, line := range strings.Split(e.log.String(), "\n") {
			if strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "attachment text not extracted") &&
				strings.Contains(line, `"reason":"`+m.Reason+`"`) {
				warned++
				for _, field := range []string{`"file":`, `"rfc_message_id":"<`, `"mailbox":"`} {
					if !strings.Contains(line, field) {
						t.Errorf("warning for %s lacks %s: %s", m.Reason, field, line)
					}
				}
			}
		}
		if warned != 1 {
			t.Errorf("%d warnings for reason %s, want 1", warned, m.Reason)
		}
	}
	if byReason != run.totals.TextFailed {
		t.Errorf("misses by reason add up to %d, want attachments_text_failed %d", byReason, run.totals.TextFailed)
	}

	e.es(http.MethodPost, "/"+e.prefix+"-*/_refresh", "", nil)
	for _, w := range tokens {
		atts := e.search("attachments", "mimecast.content", w.token)
		if len(atts) != 1 {
			t.Errorf("%s token %s: %d attachment documents, want 1", w.ext, w.token, len(atts))
		} else if got := flatten(atts[0])["mimecast.message_doc_id"]; got != w.msgDocID {
			t.Errorf("%s token %s: attachment of message %v, want %s", w.ext, w.token, got, w.msgDocID)
		}
		msgs := e.searchIDs("messages", "mimecast.attachment_text", w.token)
		if len(msgs) != 1 || msgs[0] != w.msgDocID {
			t.Errorf("%s token %s: messages %v, want [%s]", w.ext, w.token, msgs, w.msgDocID)
		}
	}

	// Broken files: indexed with metadata and the reason, without text.
	failed := e.searchExists("attachments", "mimecast.attachment_error")
	if len(failed) != broken {
		t.Errorf("%d attachment documents carry mimecast.attachment_error, want %d", len(failed), broken)
	}
	for _, src := range failed {
		if f := flatten(src); f["mimecast.content"] != nil || f["email.attachments.file.hash.sha256"] == nil {
			t.Errorf("broken file indexed as %v; want metadata without text", src)
		}
	}
	t.Logf("%d files with text tokens in formats %v, %d broken; totals %+v", len(tokens), covered, broken, run.totals)
}

// formatByType names, by its content type, the format of an attachment that carries a text
// token.
var formatByType = map[string]string{
	"application/pdf": "pdf",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   "docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         "xlsx",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
	"application/vnd.oasis.opendocument.text":                                   "odt",
	"application/vnd.oasis.opendocument.spreadsheet":                            "ods",
	"application/vnd.oasis.opendocument.presentation":                           "odp",
	"application/rtf": "rtf",
	"text/html":       "html",
	"text/csv":        "csv",
	"text/plain":      "txt",
	"message/rfc822":  "eml",
}

func (e *env) search(kind, field, term string) []map[string]any {
	var out []map[string]any
	for _, h := range e.query(kind, map[string]any{"match": map[string]any{field: term}}) {
		out = append(out, h.Source)
	}
	return out
}

func (e *env) searchIDs(kind, field, term string) []string {
	var out []string
	for _, h := range e.query(kind, map[string]any{"match": map[string]any{field: term}}) {
		out = append(out, h.ID)
	}
	return out
}

func (e *env) searchExists(kind, field string) []map[string]any {
	var out []map[string]any
	for _, h := range e.query(kind, map[string]any{"exists": map[string]any{"field": field}}) {
		out = append(out, h.Source)
	}
	return out
}

type hit struct {
	ID     string         `json:"_id"`
	Source map[string]any `json:"_source"`
}

func (e *env) query(kind string, q map[string]any) []hit {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{"query": q, "size": 100})
	if err != nil {
		e.t.Fatal(err)
	}
	var out struct {
		Hits struct {
			Hits []hit `json:"hits"`
		} `json:"hits"`
	}
	e.es(http.MethodPost, "/"+e.prefix+"-"+kind+"/_search", string(body), &out)
	return out.Hits.Hits
}
