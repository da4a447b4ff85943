package mimecast

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// BenchmarkDecodeListPage: one answer of the message list, 100 summaries, from the body's
// bytes to the summaries the crawler walks.
func BenchmarkDecodeListPage(b *testing.B) {
	var data []api.MessageSummary
	for i := range 100 {
		data = append(data, api.MessageSummary{
			ID:     fmt.Sprintf("eNoBdACL_3sic2VjdXJlaWQiOiI4YTNlMGM5ZGQ3NmM2MWY4OGM1ODU1NGMiLCJhcmNoaXZlaWQiOiIxOTgxOSJ9%04d", i),
			Status: "ARCHIVED", Received: "2025-03-04T09:15:00+0000", Subject: fmt.Sprintf("Besprechung über das Budget %d", i),
			Size: 48213, AttachmentCount: 1, Smash: "a1b2c3d4e5f6",
			From: api.Address{EmailAddress: "anna.schmidt@example.com", DisplayableName: "Anna Schmidt"},
			To:   api.Address{EmailAddress: "bob.meier@example.com", DisplayableName: "Bob Meier"},
		})
	}
	body, err := json.Marshal(map[string]any{
		"meta": map[string]any{"status": 200, "pagination": map[string]any{"pageSize": 100, "next": "eNoBcwCM_3sic2VjdXJlaWQi"}},
		"data": data, "fail": []any{},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := decodeResponse("POST /api/x", body)
		if err != nil {
			b.Fatal(err)
		}
		msgs, err := decodeMessages("POST /api/x", env, nil)
		if err != nil || len(msgs) != 100 || msgs[99].From.EmailAddress == "" {
			b.Fatalf("decoded %d messages, %v", len(msgs), err)
		}
	}
}
