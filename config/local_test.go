package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadLocalNeedsNoCredentials: LoadLocal accepts a configuration without any secret and
// does not read secret files, yet reports every other problem as Load does.
func TestLoadLocalNeedsNoCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "messages:\n  start_date: \"2020-01-01\"\nelasticsearch:\n  addresses: [\"http://127.0.0.1:9200\"]\n  password_file: " +
		filepath.Join(dir, "missing") + "\nstate:\n  path: " + filepath.Join(dir, "state.db") + "\n"
	p := write("bare.yaml", base)
	if _, err := Load(p, nil); err == nil || !strings.Contains(err.Error(), "mimecast.client_secret") {
		t.Errorf("Load without credentials: %v, want the missing secret named", err)
	}
	cfg, err := LoadLocal(p, nil)
	if err != nil {
		t.Fatalf("LoadLocal without credentials: %v", err)
	}
	if cfg.State.Path != filepath.Join(dir, "state.db") {
		t.Errorf("state.path %q", cfg.State.Path)
	}
	bad := write("bad.yaml", base+"performance:\n  page_size: -3\n")
	if _, err := LoadLocal(bad, nil); err == nil || !strings.Contains(err.Error(), "performance.page_size") {
		t.Errorf("LoadLocal with a bad page size: %v, want it named", err)
	}
}
