package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse. It must never panic, and whatever it
// accepts must be valid and must survive a trip through Redacted.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "../examples/demo.yaml", "../examples/production.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("mimecast: &m {client_id: a, client_secret: b}\nelasticsearch: *m\n"))
	f.Add([]byte("<<: {mimecast: {client_id: a}}\n"))
	f.Add([]byte("mimecast: {client_id: a, client_secret: b}\nmessages: {views: [!!binary aGk=]}\n"))

	env := map[string]string{EnvMimecastClientID: "fuzz-client", EnvMimecastClientSecret: "fuzz-secret"}
	getenv := func(k string) string { return env[k] }
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, getenv)
		if err != nil {
			if strings.Contains(err.Error(), "fuzz-secret") {
				t.Fatalf("error reveals the secret: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		text := c.Redacted()
		if strings.Contains(text, "fuzz-secret") {
			t.Fatalf("Redacted reveals the secret:\n%s", text)
		}
		if _, err := Parse([]byte(text), getenv); err != nil {
			t.Fatalf("Redacted output does not load again: %v\n%s", err, text)
		}
	})
}
