package main

import (
	"os"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/config"
)

// TestCheckVerdictsFirstOneLinePerCause: the check lines come first and the effective
// configuration after the verdict, with derived values as in force; a wrong secret is one FAIL
// line (the alert sources that would repeat it are skipped and say why); --quiet prints what
// failed and the verdict only.
func TestCheckVerdictsFirstOneLinePerCause(t *testing.T) {
	w := alertsWorld(t)
	code, out, logs := w.run("check")
	if code != exitOK {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, logs)
	}
	verdict := strings.Index(out, "all checks passed")
	conf := strings.Index(out, "effective configuration")
	if !strings.HasPrefix(out, "ok    config") || verdict < 0 || conf < verdict {
		t.Errorf("check does not give its verdicts before the configuration:\n%s", out)
	}
	// The memory a crawl with this configuration needs (docs/deploy.md, Memory).
	if !strings.Contains(out, "ok    crawl memory                         up to 114.3 MiB with this configuration") {
		t.Errorf("check does not print the crawl's memory:\n%s", out[:verdict])
	}
	for _, want := range []string{"state_path: " + w.state + ".alerts", "spill_dir: " + os.TempDir(), "level: warn", "client_secret: <secret>"} {
		if !strings.Contains(out[conf:], want) {
			t.Errorf("effective configuration lacks %q:\n%s", want, out[conf:])
		}
	}
	for _, l := range strings.Split(out[:verdict], "\n") {
		if l == "" || strings.HasPrefix(l, "      ") {
			continue
		}
		if v, _, _ := strings.Cut(l, " "); v != "ok" && v != "warn" && v != "skip" && v != "FAIL" {
			t.Errorf("check line without a verdict: %q", l)
		}
		// The name column holds every name: at least two spaces before the detail.
		if len(l) > 6 && !strings.Contains(l[6:], "  ") {
			t.Errorf("check name runs into its detail: %q", l)
		}
	}

	setConfig(t, w.config, "mimecast.client_secret: wrong-secret", "logging.level: debug")
	data, _ := os.ReadFile(w.config)
	os.WriteFile(w.config, []byte(strings.Replace(string(data), "  client_secret: demo-secret\n", "", 1)), 0o600)
	code, out, _ = w.run("check")
	if code != exitFatal {
		t.Fatalf("check with a wrong secret: exit %d, want 1\n%s", code, out)
	}
	if n := strings.Count(out, "\nFAIL "); n != 1 {
		t.Errorf("a wrong secret gives %d FAIL lines, want 1:\n%s", n, out)
	}
	// One line per configured source (alertsWorld configures the six alert sources and audit).
	if n := strings.Count(out, "not probed: the Mimecast token failed"); n != 7 {
		t.Errorf("%d alert sources skipped for the token, want 7:\n%s", n, out)
	}
	if !strings.Contains(out, "1 check failed") || !strings.Contains(out, "level: debug") {
		t.Errorf("check with a wrong secret and logging.level debug:\n%s", out)
	}
	code, out, _ = w.run("check", "--quiet")
	if code != exitFatal || strings.Contains(out, "ok    ") || strings.Contains(out, "skip  ") ||
		strings.Contains(out, "effective configuration") || !strings.Contains(out, "FAIL  mimecast token") {
		t.Errorf("check --quiet: exit %d\n%s", code, out)
	}
}

// TestLevelInForce: --log-level wins; a level the configuration sets is honoured; only the
// default is raised to warn on a terminal (and by check).
func TestLevelInForce(t *testing.T) {
	parse := func(extra string) config.Logging {
		t.Helper()
		cfg, err := config.Parse([]byte("mimecast:\n  base_url: https://api.services.mimecast.com\n  client_id: x\n  client_secret: y\n"+
			"elasticsearch:\n  addresses: [\"http://127.0.0.1:9200\"]\nstate:\n  path: /tmp/x.db\n"+extra), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Logging
	}
	def, debug, info, null := parse(""), parse("logging:\n  level: debug\n"), parse("logging:\n  level: info\n"), parse("logging:\n  level:\n")
	for _, tc := range []struct {
		name, flag string
		l          config.Logging
		quiet      bool
		want       string
	}{
		{"default elsewhere", "", def, false, "info"},
		{"default on a terminal", "", def, true, "warn"},
		{"debug in the file on a terminal", "", debug, true, "debug"},
		{"info written on a terminal", "", info, true, "info"},
		{"null keeps the default", "", null, true, "warn"},
		{"flag wins", "error", debug, true, "error"},
	} {
		if got := levelInForce(tc.flag, tc.l, tc.quiet); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
