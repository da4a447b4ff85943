package main

import (
	"os"
	"strings"
	"testing"
)

// With credentials the token endpoint refuses, alerts --once is fatal (exit 1) as the crawl
// is and the README says, not a pass whose every source failed (exit 3); the summary names the
// refusal and no cursor is written.
func TestAlertsWrongCredentialsAreFatal(t *testing.T) {
	w := alertsWorld(t)
	data, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "client_secret: demo-secret", "client_secret: not-the-secret", 1)
	if err := os.WriteFile(w.config, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, logs := w.run("alerts", "--once")
	if code != exitFatal {
		t.Fatalf("alerts --once with a wrong secret: exit %d, want %d\n%s\n%s", code, exitFatal, out, logs)
	}
	if !strings.Contains(out, "error") || !strings.Contains(out, "token") {
		t.Errorf("the summary does not name the refused credentials:\n%s", out)
	}
	if code, out, _ := w.run("crawl"); code != exitFatal {
		t.Errorf("crawl with a wrong secret: exit %d, want %d (the two agree)\n%s", code, exitFatal, out)
	}
}
