package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/config"
)

// An unknown name in alerts.sources fails the load of every command, with the field, the value
// and the allowed names of the alerts package's source table (config cannot import it, so the
// command checks the names right after loading).
func TestLoadRejectsUnknownAlertSource(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	cfg := "mimecast: {client_id: a, client_secret: b}\nalerts:\n  sources: [attachment_protection, bogus]\n"
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newAppWith(context.Background(), config.Load, p, "", "", io.Discard, io.Discard, true)
	want := `alerts.sources[1]: "bogus" is not allowed; allowed values: attachment_protection, url_protection, impersonation, dlp, threats, siem`
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
		t.Fatalf("load error %v; want one naming %s and saying %q", err, p, want)
	}
}
