package simulator

import (
	"sync"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// TestConcurrentUse lists, reads details and downloads while mailboxes and messages are
// added and deleted, so the race detector sees every shared path.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, Options{Seed: 6, Messages: 15})
	tok := h.token()
	tr := h.sim.Truth()
	var boxes []TruthMailbox
	for _, mb := range tr.Mailboxes {
		if mb.Type == TypeMailbox {
			boxes = append(boxes, mb)
		}
	}
	var wg sync.WaitGroup
	for _, mb := range boxes[:3] {
		wg.Go(func() {
			for _, view := range []string{api.ViewInbox, api.ViewSent} {
				next := ""
				for range 10 {
					r := h.call(tok, listPath, 4, next, wide(mb.Address, view))
					if r.status != 200 {
						t.Errorf("list %s: %d", mb.Address, r.status)
						return
					}
					for _, m := range decodeData[api.MessageSummary](t, r) {
						if r := h.call(tok, detailPath, 0, "", map[string]string{"id": m.ID}); r.status != 200 {
							t.Errorf("detail: %d", r.status)
						}
					}
					if next = r.env.Meta.Pagination.Next; next == "" {
						break
					}
				}
			}
		})
	}
	wg.Go(func() {
		victim := boxes[len(boxes)-1]
		for i := range 5 {
			if _, err := h.sim.AddMessages(boxes[0].Address, 2); err != nil {
				t.Errorf("add: %v", err)
			}
			if err := h.sim.DeleteMessage(victim.Messages[i].ID); err != nil {
				t.Errorf("delete: %v", err)
			}
			_ = h.sim.Stats()
		}
		if err := h.sim.DeleteMailbox(victim.Address); err != nil {
			t.Errorf("delete mailbox: %v", err)
		}
		if err := h.sim.AddMailbox("late.joiner@" + victim.Domain); err != nil {
			t.Errorf("add mailbox: %v", err)
		}
	})
	wg.Go(func() {
		for range 3 {
			_ = h.sim.TruthOf(TruthQuery{SkipAttachments: true})
		}
	})
	wg.Wait()
}
