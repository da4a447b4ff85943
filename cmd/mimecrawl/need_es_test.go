package main

import (
	"os"
	"testing"
)

// needElasticsearch skips a test that needs Elasticsearch when none is configured, and fails it
// in CI (CI=true): there a missing Elasticsearch is a broken pipeline, not a reason to pass.
func needElasticsearch(t *testing.T) {
	t.Helper()
	const msg = "ELASTICSEARCH_URL is not set; these tests need a real Elasticsearch (make test starts one)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
	}
	t.Skip(msg)
}
