package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// An alert's file hash finds, in one search on related.hash, the alert and every archived copy
// of the file: each attachment document with that digest and the message that carried it. The
// same hash finds the same attachments through the top-level file.hash.sha256 that Elastic's
// rules read. The simulator's attachment alerts about archived mail name a file the message
// really carries, so the expected copies come from its truth.
func TestAlertsHashFindsArchivedCopies(t *testing.T) {
	w := alertsWorldWith(t, simulator.AlertOptions{Attachment: 60, Span: 2 * time.Hour})
	setConfig(t, w.config, "attachments.extract: true")
	if code, out, logs := w.run("crawl"); code != 0 {
		t.Fatalf("crawl exit %d\n%s\n%s", code, out, logs)
	}
	if code, out, logs := w.run("alerts", "--once"); code != 0 {
		t.Fatalf("alerts exit %d\n%s\n%s", code, out, logs)
	}
	esURL := os.Getenv("ELASTICSEARCH_URL")
	alertsIndex, messages, attachments := "logs-"+alerts.Dataset+"-"+indextest.Namespace(w.prefix), w.prefix+"-messages", w.prefix+"-attachments"
	all := alertsIndex + "," + messages + "," + attachments
	if res, err := http.Post(esURL+"/"+all+"/_refresh", "application/json", nil); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}

	// The archive's copies of each file, from the simulator: digest -> message ids.
	copies := map[string][]string{}
	for _, mb := range w.sim.Truth().Mailboxes {
		for _, m := range mb.Messages {
			for _, a := range m.Attachments {
				copies[a.SHA256] = append(copies[a.SHA256], m.ID)
			}
		}
	}

	type hit struct {
		Index  string         `json:"_index"`
		ID     string         `json:"_id"`
		Source map[string]any `json:"_source"`
	}
	search := func(index, field, value string) []hit {
		t.Helper()
		q, _ := json.Marshal(map[string]any{"size": 1000, "query": map[string]any{"term": map[string]any{field: value}},
			"_source": []string{"mimecast.id", "mimecast.message_doc_id", "file.hash.sha256", "email.attachments.file.hash.sha256"}})
		res, err := http.Post(esURL+"/"+index+"/_search", "application/json", bytes.NewReader(q))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Hits struct {
				Hits []hit `json:"hits"`
			} `json:"hits"`
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("search %s for %s=%s: status %d", index, field, value, res.StatusCode)
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Hits.Hits
	}
	// An alias's versioned index, or a data stream's backing index (.ds-{stream}-{date}-{generation}).
	in := func(h hit, alias string) bool {
		return h.Index == alias || strings.HasPrefix(h.Index, alias+"-") || strings.HasPrefix(h.Index, ".ds-"+alias+"-")
	}

	// Every distinct file.hash.sha256 of the alerts' files (of email.attachments, and of the
	// top-level file where an alert has one).
	var hashes []string
	sha256Of := func(file any) {
		f, _ := file.(map[string]any)
		hash, _ := f["hash"].(map[string]any)
		if s, _ := hash["sha256"].(string); s != "" && !slices.Contains(hashes, s) {
			hashes = append(hashes, s)
		}
	}
	for _, h := range search(alertsIndex, "event.kind", "alert") {
		sha256Of(h.Source["file"])
		email, _ := h.Source["email"].(map[string]any)
		atts, _ := email["attachments"].([]any)
		for _, a := range atts {
			a, _ := a.(map[string]any)
			sha256Of(a["file"])
		}
	}
	if len(hashes) == 0 {
		t.Fatal("no alert carries a SHA-256")
	}

	pivoted := 0
	for _, sha := range hashes {
		hits := search(all, "related.hash", sha)
		var alertHits int
		var attMessages, msgIDs []string
		for _, h := range hits {
			switch {
			case in(h, alertsIndex):
				alertHits++
			case in(h, attachments):
				mc, _ := h.Source["mimecast"].(map[string]any)
				attMessages = append(attMessages, fmt.Sprint(mc["message_doc_id"]))
				file, _ := h.Source["file"].(map[string]any)
				hash, _ := file["hash"].(map[string]any)
				if hash["sha256"] != sha {
					t.Errorf("attachment %s found by related.hash %s has file.hash.sha256 %v", h.ID, sha, hash["sha256"])
				}
			case in(h, messages):
				mc, _ := h.Source["mimecast"].(map[string]any)
				msgIDs = append(msgIDs, fmt.Sprint(mc["id"]))
			}
		}
		if alertHits == 0 {
			t.Errorf("related.hash %s does not find the alert that carries it", sha)
		}
		want := copies[sha]
		if len(want) == 0 {
			if len(attMessages)+len(msgIDs) > 0 {
				t.Errorf("hash %s, which the archive does not hold, found %d attachments and %d messages", sha, len(attMessages), len(msgIDs))
			}
			continue
		}
		pivoted++
		// One attachment document per archived copy, and each one's message.
		if len(attMessages) != len(want) {
			t.Errorf("hash %s: %d attachment documents, want one for each of the %d copies in the archive", sha, len(attMessages), len(want))
		}
		slices.Sort(msgIDs)
		wantIDs := slices.Compact(slices.Sorted(slices.Values(want)))
		if !slices.Equal(slices.Compact(msgIDs), wantIDs) {
			t.Errorf("hash %s: messages %v, want %v", sha, msgIDs, wantIDs)
		}
		for _, id := range attMessages {
			found := false
			for _, h := range hits {
				found = found || (in(h, messages) && h.ID == id)
			}
			if !found {
				t.Errorf("hash %s: the message %s of an attachment found is not found by the same search", sha, id)
			}
		}
		if byFile := search(attachments, "file.hash.sha256", sha); len(byFile) != len(attMessages) {
			t.Errorf("hash %s: file.hash.sha256 finds %d attachment documents, related.hash %d", sha, len(byFile), len(attMessages))
		}
	}
	if pivoted == 0 {
		t.Fatalf("none of the %d alert hashes is a file of the archive: the test proves nothing", len(hashes))
	}
	t.Logf("%d of %d alert file hashes lead to archived copies", pivoted, len(hashes))
}
