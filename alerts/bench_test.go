package alerts

import (
	"encoding/json"
	"testing"

	"github.com/mimecrawl/mimecrawl/config"
)

func BenchmarkNormalize(b *testing.B) {
	raw := json.RawMessage(attachmentDocx)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Normalize(AttachmentProtection, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecideWithFilters(b *testing.B) {
	c := config.Default().Alerts
	c.Filters = []config.AlertFilter{
		{Expression: `alert.recipients.exists(r, r.endsWith("@lab.example.com"))`, Action: "exclude"},
		{Expression: `alert.verdict in ["malicious", "malware"] || raw.taggedMalicious == true`, Action: "include"},
	}
	r, err := NewRules(c)
	if err != nil {
		b.Fatal(err)
	}
	a, err := Normalize(AttachmentProtection, json.RawMessage(attachmentDocx))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Decide(&a)
	}
}
