package indextest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// URL returns the test cluster's address from ELASTICSEARCH_URL. Without it the test is skipped
// on a developer's machine and fails in CI (CI=true): there a missing Elasticsearch is a broken
// pipeline, not a reason to pass. Every test that needs Elasticsearch goes through here.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("ELASTICSEARCH_URL")
	if u == "" {
		const msg = "ELASTICSEARCH_URL is not set; these tests need a real Elasticsearch (make test starts one)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}
	return strings.TrimRight(u, "/")
}

// Prefix returns an index prefix no other test uses, and removes at the end of the test every
// index, index template and ingest pipeline whose name starts with it.
func Prefix(t testing.TB, baseURL string) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random prefix: %v", err)
	}
	p := "mctest-" + hex.EncodeToString(b)
	t.Cleanup(func() { Remove(t, baseURL, p) })
	return p
}

// Namespace returns the data stream namespace that goes with a test's prefix: tests that share
// the cluster isolate their data streams (logs-{dataset}-{namespace}) by it, and Remove
// removes them with the prefix's indices.
func Namespace(prefix string) string { return strings.ReplaceAll(prefix, "-", "_") }

// Remove deletes the indices, index templates and ingest pipelines whose names start with
// prefix+"-", and the data streams of the namespace Namespace(prefix) with their templates.
// Index deletions name each index: clusters refuse wildcard deletes by default.
func Remove(t testing.TB, baseURL, prefix string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	removeStreams(t, c, baseURL, Namespace(prefix))
	pattern := prefix + "-*"

	var indices []struct {
		Index string `json:"index"`
	}
	getJSON(t, c, baseURL+"/_cat/indices/"+pattern+"?format=json&h=index&expand_wildcards=all", &indices)
	for _, i := range indices {
		del(t, c, baseURL+"/"+i.Index)
	}

	removeTemplates(t, c, baseURL, pattern, pattern)

	pipelines := map[string]json.RawMessage{}
	getJSON(t, c, baseURL+"/_ingest/pipeline/"+pattern, &pipelines)
	for name := range pipelines {
		del(t, c, baseURL+"/_ingest/pipeline/"+name)
	}
}

// getJSON decodes a 200 answer into out; a 404 (nothing matches) leaves out as it is.
func getJSON(t testing.TB, c *http.Client, u string, out any) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Errorf("cleanup: GET %s: %v", u, err)
		return
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Errorf("cleanup: GET %s: status %d: %s", u, res.StatusCode, b)
		return
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Errorf("cleanup: GET %s: %v", u, err)
	}
}

func del(t testing.TB, c *http.Client, u string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, u, nil)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	res, err := c.Do(req)
	if err != nil {
		t.Errorf("cleanup: DELETE %s: %v", u, err)
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusNotFound {
		b, _ := io.ReadAll(res.Body)
		t.Errorf("cleanup: DELETE %s: status %d: %s", u, res.StatusCode, b)
	}
}

// removeStreams deletes the data streams logs-*-{ns} and their templates. A cluster without the
// data stream API (the integration-test distribution) cannot delete a stream: there the
// backing indices are deleted but the write index, which is closed, so that it holds no open
// shard; its stream and templates stay, empty.
func removeStreams(t testing.TB, c *http.Client, baseURL, ns string) {
	t.Helper()
	pattern := "logs-*-" + ns
	var res struct {
		DataStreams []struct {
			Name    string   `json:"name"`
			Backing []string `json:"backing_indices"`
		} `json:"data_streams"`
	}
	getJSON(t, c, baseURL+"/_resolve/index/"+pattern+"?expand_wildcards=all", &res)
	removed := true
	for _, ds := range res.DataStreams {
		if softDo(c, http.MethodDelete, baseURL+"/_data_stream/"+ds.Name) {
			continue
		}
		removed = false
		last := ""
		for _, b := range ds.Backing {
			if last == "" || generationOf(b) > generationOf(last) {
				last = b
			}
		}
		for _, b := range ds.Backing {
			if b != last {
				del(t, c, baseURL+"/"+b)
			}
		}
		if last != "" {
			softDo(c, http.MethodPost, baseURL+"/"+last+"/_close")
		}
	}
	if !removed {
		return
	}
	removeTemplates(t, c, baseURL, pattern, pattern+"@*")
}

// removeTemplates deletes the index templates whose names match indexPattern, then the
// component templates whose names match componentPattern (after the index templates that
// use them).
func removeTemplates(t testing.TB, c *http.Client, baseURL, indexPattern, componentPattern string) {
	t.Helper()
	var templates struct {
		IndexTemplates []struct {
			Name string `json:"name"`
		} `json:"index_templates"`
	}
	getJSON(t, c, baseURL+"/_index_template/"+indexPattern, &templates)
	for _, tp := range templates.IndexTemplates {
		del(t, c, baseURL+"/_index_template/"+tp.Name)
	}
	var components struct {
		ComponentTemplates []struct {
			Name string `json:"name"`
		} `json:"component_templates"`
	}
	getJSON(t, c, baseURL+"/_component_template/"+componentPattern, &components)
	for _, tp := range components.ComponentTemplates {
		del(t, c, baseURL+"/_component_template/"+tp.Name)
	}
}

func generationOf(backing string) string {
	if i := strings.LastIndexByte(backing, '-'); i >= 0 {
		return backing[i+1:]
	}
	return backing
}

// softDo sends a request whose failure is expected on some clusters, and reports success.
func softDo(c *http.Client, method, u string) bool {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return false
	}
	res, err := c.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode == http.StatusOK
}
