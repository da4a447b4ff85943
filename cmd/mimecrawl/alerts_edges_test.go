package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/state"
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

// status shows the crawl's state whatever the alerts state file is like: an empty one (left by
// a full disk) is "nothing yet", a damaged one is named in the alerts part, and the exit code
// says so, but the crawl's views are still shown.
func TestStatusShowsTheCrawlWhateverTheAlertsState(t *testing.T) {
	cases := []struct {
		name     string
		content  []byte
		wantCode int
		wantText string
	}{
		{"empty", []byte{}, exitOK, "no pass has committed anything yet"},
		{"garbage", []byte(strings.Repeat("not a bbolt file ", 1000)), exitFatal, "is corrupt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := alertsWorld(t)
			st, err := state.Open(w.state, state.Options{LockTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Commit(map[state.Key]state.Position{{Mailbox: "ceo@example.com", View: "INBOX"}: {Token: time.Now().UTC(), Indexed: 7}}); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if err := os.WriteFile(w.state+".alerts", tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, asJSON := range []bool{false, true} {
				args := []string{"status"}
				if asJSON {
					args = append(args, "--json")
				}
				code, out, logs := w.run(args...)
				if code != tc.wantCode {
					t.Errorf("%v: exit %d, want %d\n%s\n%s", args, code, tc.wantCode, out, logs)
				}
				if !strings.Contains(out, "ceo@example.com") {
					t.Errorf("%v hides the crawl's state:\n%s\n%s", args, out, logs)
				}
				if !strings.Contains(out, tc.wantText) {
					t.Errorf("%v does not say %q of the alerts state:\n%s\n%s", args, tc.wantText, out, logs)
				}
			}
		})
	}
}
