package simulator

import (
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// BenchmarkMessageList fetches pages of 100 over HTTP from a mailbox with 3,000 messages.
func BenchmarkMessageList(b *testing.B) {
	h := newHarness(b, Options{Seed: 1, Mailboxes: 1, Messages: 3000})
	tok := h.token()
	mb := firstMailbox(b, h.sim.Truth())
	f := wide(mb.Address, api.ViewInbox)
	next := ""
	b.ResetTimer()
	for b.Loop() {
		r := h.call(tok, listPath, 100, next, f)
		if r.status != 200 || len(r.env.Data) == 0 {
			b.Fatalf("status %d", r.status)
		}
		next = r.env.Meta.Pagination.Next
	}
}
