package crawler

import (
	"github.com/mimecrawl/mimecrawl/state"
)

// maxBatch bounds the positions written by one state transaction.
const maxBatch = 512

// committer writes the checkpoints of every view through one goroutine, joining those that
// arrive together into one transaction. Each transaction costs an fsync; a crawl of thousands
// of views with nothing new would otherwise spend its time in fsyncs, one view after another,
// while the views waiting their turn pile up in memory.
//
// Its goroutine is run (started by Crawler.Run with its other services); it ends when close is called,
// after every commit sent before has been answered. Commits are local file writes and are not
// cancelled: a stopping run still commits what was acknowledged.
type committer struct {
	store Store
	reqs  chan commitReq
}

type commitReq struct {
	key   state.Key
	pos   state.Position
	reply chan error
}

func newCommitter(store Store) *committer {
	return &committer{store: store, reqs: make(chan commitReq)}
}

// run serves commits until close.
func (c *committer) run() {
	for r := range c.reqs {
		batch := []commitReq{r}
	more:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		// A view waits for its reply before it commits again, so a key appears once per batch.
		updates := make(map[state.Key]state.Position, len(batch))
		for _, b := range batch {
			updates[b.key] = b.pos
		}
		err := c.store.Commit(updates)
		for _, b := range batch {
			b.reply <- err
		}
	}
}

// commit writes one view's position durably and returns when it is on disk.
func (c *committer) commit(k state.Key, pos state.Position) error {
	reply := make(chan error, 1)
	c.reqs <- commitReq{key: k, pos: pos, reply: reply}
	return <-reply
}

// close tells run to end once every commit sent has been answered. No commit may be sent after
// close.
func (c *committer) close() {
	close(c.reqs)
}
