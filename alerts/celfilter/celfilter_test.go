package celfilter

import (
	"errors"
	"strings"
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
		if err != nil && strings.Contains(tc.expr, "all(e,") && !strings.Contains(err.Error(), "cost") {
			t.Errorf("Eval(%q) error = %v, want the cost limit", tc.expr, err)
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
