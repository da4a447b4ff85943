package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionString: a version set at link time wins; without it the commit and time the Go
// toolchain recorded name the build.
func TestVersionString(t *testing.T) {
	info := func(main string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: main}, Settings: settings}, true
		}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}
	at := debug.BuildSetting{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	for _, tc := range []struct {
		name, set string
		info      func() (*debug.BuildInfo, bool)
		want      string
	}{
		{"link time", "v1.2.3", info("(devel)", rev, at), "v1.2.3"},
		{"vcs", "dev", info("(devel)", rev, at), "dev (commit 0123456789ab, 2026-12-01T10:00:00Z)"},
		{"vcs modified", "dev", info("(devel)", rev, dirty), "dev (commit 0123456789ab+modified)"},
		{"go install of a tag", "dev", info("v1.4.0"), "v1.4.0"},
		{"nothing known", "dev", func() (*debug.BuildInfo, bool) { return nil, false }, "dev"},
	} {
		if got := versionString(tc.set, tc.info); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestHelpOfTheBuiltins: usage lists `version` and `help`, so `help version` and `help help`
// answer.
func TestHelpOfTheBuiltins(t *testing.T) {
	var usage bytes.Buffer
	printUsage(&usage)
	for _, name := range []string{"version", "help"} {
		if !strings.Contains(usage.String(), "mimecrawl "+name) {
			t.Errorf("usage does not list %s", name)
		}
		var out, errb bytes.Buffer
		if code := run([]string{"help", name}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "mimecrawl "+name+": ") {
			t.Errorf("help %s: exit %d\n%s%s", name, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "mimecrawl ") {
		t.Errorf("version: exit %d %q", code, out.String())
	}
}
