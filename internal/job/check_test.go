package job

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// check fails (exit 1) when a check failed; a warning, a skipped check or an ok one does not.
func TestCheckReportCode(t *testing.T) {
	var r CheckReport
	for _, v := range []Verdict{VerdictOK, VerdictSkip, VerdictWarn} {
		r.add(CheckLine{Verdict: v, Name: string(v)}, nil)
	}
	if r.Code() != CodeOK || r.Warned != 1 || r.Failed != 0 {
		t.Errorf("ok, skip and warn: exit %d, %d warned, %d failed; want 0, 1, 0", r.Code(), r.Warned, r.Failed)
	}
	var seen []string
	r.add(CheckLine{Verdict: VerdictFail, Name: "elasticsearch"}, func(l CheckLine) { seen = append(seen, l.Name) })
	if r.Code() != CodeFatal || r.Failed != 1 || len(r.Lines) != 4 || len(seen) != 1 {
		t.Errorf("a failed check: exit %d, %d failed, %d lines, seen %v", r.Code(), r.Failed, len(r.Lines), seen)
	}
	cf := ConfigFailed(errors.New("alerts.sources: unknown source \"x\""), nil)
	if cf.Code() != CodeFatal || len(cf.Lines) != 1 || cf.Lines[0].Name != "config" || cf.Lines[0].Fix == "" {
		t.Errorf("a configuration that does not load: %+v", cf)
	}
}

// The name column holds the longest alert source's name.
func TestCheckNameWidth(t *testing.T) {
	c := config.Default()
	c.Alerts.Sources = nil
	if w := CheckNameWidth(c); w != len("elasticsearch attachment text") {
		t.Errorf("no sources: width %d", w)
	}
	c.Alerts.Sources = []string{"attachment_protection_with_a_long_name"}
	if w := CheckNameWidth(c); w != len("alerts source attachment_protection_with_a_long_name") {
		t.Errorf("a long source name: width %d", w)
	}
}

// A 403 always says which permission to grant: the error's, else the source's spec's.
func TestCheckForbiddenNamesThePermission(t *testing.T) {
	sp, ok := alerts.Spec("dlp")
	if !ok || sp.Permission == "" {
		t.Fatal("the dlp source has no permission in its spec")
	}
	err := fmt.Errorf("probe: %w", &mimecast.Error{Op: "POST /api/ttp/dlp/get-logs", Status: 403})
	if fix := MimecastFix(withPermission(err, "dlp")); !strings.Contains(fix, fmt.Sprintf("%q", sp.Permission)) {
		t.Errorf("fix %q does not name the spec's permission %q", fix, sp.Permission)
	}
	own := &mimecast.Error{Status: 403, Permission: "Own | Permission"}
	if fix := MimecastFix(withPermission(own, "dlp")); !strings.Contains(fix, `"Own | Permission"`) {
		t.Errorf("fix %q does not keep the error's own permission", fix)
	}
	if fix := MimecastFix(&mimecast.Error{Status: 500, Retryable: true}); !strings.Contains(fix, "mimecast.base_url") {
		t.Errorf("a retryable error's fix %q", fix)
	}
	if fix := MimecastFix(errors.New("other")); fix != "" {
		t.Errorf("an unknown error's fix %q, want none", fix)
	}
}
