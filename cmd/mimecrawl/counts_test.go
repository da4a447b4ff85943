package main

import (
	"testing"

	"github.com/mimecrawl/mimecrawl/state"
)

// TestStatusCountsEachDocumentOnce: after one uninterrupted crawl into an empty index, the
// documents the state file counts per mailbox view (status "documents indexed") are exactly the
// documents the run indexed for that view. Frequent checkpoints while acknowledgements keep
// arriving are what a miscount needs, so the config commits every 20 ms.
func TestStatusCountsEachDocumentOnce(t *testing.T) {
	w := newProcWorld(t, procOptions{sim: killArchive})
	if code, p := w.runToEnd("crawl"); code != exitOK {
		t.Fatalf("crawl: exit code %d, want 0\n%s", code, p.tail(30))
	}
	ex := w.expect()
	w.assertIndexEquals(ex)
	want := map[state.Key]int64{}
	for _, m := range ex.messages {
		want[m.key] += 1 + int64(len(m.attachments))
	}
	s := w.snapshot()
	var counted, total int64
	for k, n := range want {
		total += n
		counted += s.pos[k].Indexed
		if got := s.pos[k].Indexed; got != n {
			t.Errorf("%s: the state file counts %d documents indexed, the crawl indexed %d", k, got, n)
		}
	}
	t.Logf("%d documents counted in the state file, %d indexed", counted, total)
}
