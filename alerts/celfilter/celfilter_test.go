package celfilter

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		expr string
		want string
	}{
		{`alert.verdict == `, "at 1:18"},
		{"alert.verdict == \"malicious\" &&\n  alert.nope == 1", `alert has no field "nope"`},
		{"alert.verdict == \"malicious\" &&\n  alert.nope == 1", "at 2:8"},
		{`alert["verdcit"] == "x"`, `alert has no field "verdcit"`},
		{`alert.verdict`, "not a bool"},
		{`raw.taggedMalicious`, "returns dyn, not a bool"},
		{`size(alert.recipients)`, "returns int, not a bool"},
		{`unknown_var == 1`, "undeclared reference to 'unknown_var'"},
		{``, "is empty"},
		{strings.Repeat("a", MaxExpressionBytes+1), "at most 4096"},
	}
	for _, tc := range tests {
		_, err := Compile(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%q) error = %v, want it to contain %q", tc.expr, err, tc.want)
		}
		var ce *Error
		if err != nil && !errors.As(err, &ce) {
			t.Errorf("Compile(%q) error is %T, want *Error", tc.expr, err)
		}
	}
}

func alertVars() map[string]any {
	return map[string]any{
		"source": "url_protection", "time": time.Date(2024, 3, 1, 11, 0, 0, 0, time.UTC),
		"verdict": "malicious", "type": "Phishing", "status": "blocked", "route": "inbound", "action": "block",
		"sender": "x@evil.example", "recipients": []any{"a@corp.example", "b@corp.example"},
		"subject": "Login", "message_id": "<m@x>",
		"files": []any{map[string]any{"name": "a.exe", "mime_type": "", "extension": "exe", "sha256": "ff", "size": int64(10)}},
		"url":   "http://phish.example/", "source_ip": "", "rule": "Default", "details": "",
	}
}

func TestEval(t *testing.T) {
	raw := map[string]any{"taggedMalicious": true, "hits": int64(3)}
	tests := []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{`alert.verdict == "malicious"`, true, false},
		{`source == "url_protection" && alert.route == "inbound"`, true, false},
		{`alert.recipients.exists(r, r.endsWith("@corp.example"))`, true, false},
		{`alert.files.exists(f, f.extension == "exe" && f.size > 5)`, true, false},
		{`alert.time > timestamp("2024-01-01T00:00:00Z")`, true, false},
		{`alert.time.getHours() == 11`, true, false},
		{`raw.taggedMalicious == true && raw.hits >= 3`, true, false},
		{`"missing" in raw && raw.missing == 1`, false, false},
		{`raw.missing == 1`, false, true},
		{`alert.subject.matches("(?i)^login$")`, true, false},
		// A comprehension that builds ever larger lists: stopped by the cost limit.
		{`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, e > 0)))))`, false, true},
	}
	for _, tc := range tests {
		p, err := Compile(tc.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.expr, err)
			continue
		}
		got, err := p.Eval(alertVars(), raw, "url_protection")
		if (err != nil) != tc.wantErr {
			t.Errorf("Eval(%q) error = %v, want error %v", tc.expr, err, tc.wantErr)
			continue
		}
		if err != nil && strings.Contains(tc.expr, "all(e,") && !errors.Is(err, ErrLimit) {
			t.Errorf("Eval(%q) error = %v, want a bound (the cost limit, or the deadline first on a slow machine)", tc.expr, err)
		}
		if err == nil && got != tc.want {
			t.Errorf("Eval(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestEveryAlertFieldIsKnown(t *testing.T) {
	for _, f := range AlertFields() {
		if _, err := Compile(`has(alert.` + f + `)`); err != nil {
			t.Errorf("field %s: %v", f, err)
		}
	}
}

// TestDocumentedExamples compiles the expressions docs/alerts.md shows.
func TestDocumentedExamples(t *testing.T) {
	for _, e := range []string{
		`alert.recipients.exists(r, r.endsWith("@lab.example.com"))`,
		`alert.verdict in ["malicious", "malware", "phishing"] || alert.status == "delivered"`,
		`raw.taggedMalicious == true`,
		`alert.source == "dlp"`,
		`alert.time > timestamp("2024-06-01T00:00:00Z")`,
		`alert.time.getHours() < 6`,
		`alert.verdict == "malicious"`,
		`alert.type.contains("newly_observed_domain")`,
		`alert.status == "delivered"`,
		`alert.route != "outbound"`,
		`alert.action in ["block", "Block"]`,
		`alert.sender.endsWith("@partner.example")`,
		`size(alert.recipients) > 10`,
		`alert.subject.matches("(?i)invoice")`,
		`alert.message_id != ""`,
		`alert.files.exists(f, f.extension in ["exe", "js"])`,
		`alert.url.startsWith("https://sharepoint.")`,
		`alert.source_ip.startsWith("10.")`,
		`alert.rule == "Default URL Protection"`,
		`alert.details == "Entry Scan"`,
		`source == "url_protection" && alert.details == "Entry Scan"`,
		`source != "impersonation" || ("hits" in raw && int(raw.hits) >= 2)`,
		`alert.recipients.exists(r, r == "phish-test@example.com")`,
	} {
		p, err := Compile(e)
		if err != nil {
			t.Errorf("Compile(%q): %v", e, err)
			continue
		}
		if _, err := p.Eval(alertVars(), map[string]any{"taggedMalicious": true, "hits": "3"}, "impersonation"); err != nil {
			t.Errorf("Eval(%q): %v", e, err)
		}
	}
}

// A filter sees every string cut to MaxStringBytes, at a character boundary, however deep in
// raw it is; short values are untouched.
func TestStringsAreCapped(t *testing.T) {
	v := alertVars()
	v["subject"] = strings.Repeat("a", 1<<20)
	v["recipients"] = []any{strings.Repeat("b", 10000) + "@x"}
	v["url"] = strings.Repeat("é", 3000) // 6000 bytes
	raw := map[string]any{"a": map[string]any{"b": strings.Repeat("c", 5000)}, "list": []any{strings.Repeat("d", 5000)}}
	for _, expr := range []string{
		`size(alert.subject) == 4096`,
		`alert.recipients.all(r, size(r) == 4096 && !r.endsWith("@x"))`,
		`size(alert.url) == 2048`,
		`size(raw.a.b) == 4096 && size(raw.list[0]) == 4096`,
		`alert.verdict == "malicious" && source == "url_protection"`,
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", expr, err)
		}
		if ok, err := p.Eval(v, raw, "url_protection"); !ok || err != nil {
			t.Errorf("Eval(%q) = %v, %v; want true", expr, ok, err)
		}
	}
}

// A pattern whose RE2 program is over MaxRegexProgramSize, or that is not a literal (so its
// size is unknown until the record comes), is refused when the configuration loads, with its
// position.
func TestRegexPatternsAreCheckedAtLoad(t *testing.T) {
	for expr, want := range map[string][]string{
		`alert.subject.matches("(.{0,100}){1,10}z")`:                       {"compiles to 2032 instructions; allowed: at most 1000", "at 1:23"},
		`matches(alert.subject, "(?:a?){1000}z")`:                          {"allowed: at most 1000", "at 1:24"},
		`alert.subject.matches(raw.pattern)`:                               {"must be a string literal", "at 1:"},
		"alert.verdict == \"x\" &&\n alert.subject.matches(\"a\" + \"b\")": {"must be a string literal", "at 2:"},
		`alert.subject.matches("(unclosed")`:                               {"invalid regular expression"},
	} {
		_, err := Compile(expr)
		var ce *Error
		if err == nil || !errors.As(err, &ce) {
			t.Errorf("Compile(%q) = %v; want an *Error", expr, err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Compile(%q) = %v; want it to contain %q", expr, err, w)
			}
		}
	}
	if _, err := Compile(`alert.subject.matches("(?:a?){450}z") && matches(alert.url, "(?i)^https://")`); err != nil {
		t.Errorf("patterns within the bound: %v", err)
	}
}

// The finding: a pathological pattern over a 1 MiB subject ran for 11 s before the cost limit
// applied, the limit being checked after the call. Now each call sees 4 KiB and is charged
// what RE2 does for it, so an expression of many such calls stops at the cost limit after
// the first few, fails open (ErrLimit) and is over in milliseconds. The wall-time check is a
// generous guard only (the unbounded evaluation took half a minute on the same machine).
func TestPathologicalRegexIsBounded(t *testing.T) {
	v := alertVars()
	v["subject"] = strings.Repeat("a", 1<<20)
	const pat = `alert.subject.matches("(?:a?){450}z")`
	one, err := Compile(pat)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if ok, err := one.Eval(v, nil, "dlp"); ok || err != nil {
		t.Errorf("one call: %v, %v; want false within the limit", ok, err)
	}
	many, err := Compile(strings.Repeat(pat+" || ", 9) + pat)
	if err != nil {
		t.Fatal(err)
	}
	_, err = many.Eval(v, nil, "dlp")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("ten calls: %v; want ErrLimit at the cost limit", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("bounded evaluations took %s", d)
	}
}

// doneContext is a context whose Done channel is closed but whose first Err is nil: the
// evaluation starts, and CEL's first interrupt check in a comprehension stops it. A real
// deadline does the same, at a time no test should depend on.
type doneContext struct {
	context.Context
	checks atomic.Int32
}

func (c *doneContext) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (c *doneContext) Err() error {
	if c.checks.Add(1) == 1 {
		return nil
	}
	return context.DeadlineExceeded
}

// A comprehension checks the deadline between iterations; a filter past it stops with
// ErrLimit (and so fails open). A deadline already passed stops it before it starts.
func TestDeadlineInterruptsAComprehension(t *testing.T) {
	p, err := Compile(`raw.list.all(x, x >= 0)`)
	if err != nil {
		t.Fatal(err)
	}
	list := make([]any, 1000)
	for i := range list {
		list[i] = int64(i)
	}
	raw := map[string]any{"list": list}
	if ok, err := p.Eval(alertVars(), raw, "dlp"); !ok || err != nil {
		t.Fatalf("without a deadline: %v, %v", ok, err)
	}
	_, err = p.EvalContext(&doneContext{Context: context.Background()}, alertVars(), raw, "dlp")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("past its deadline: %v; want ErrLimit, interrupted", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.EvalContext(ctx, alertVars(), raw, "dlp"); !errors.Is(err, ErrLimit) {
		t.Errorf("with an ended context: %v; want ErrLimit", err)
	}
}
