package crawler

import (
	"context"
	"sync"
)

// startServices does for a test that drives a pass directly what Run does: it sets the run's
// contexts and starts the hand-off and committer goroutines. The returned function stops them
// and waits for them.
func startServices(c *Crawler) func() {
	work, stop := context.WithCancelCause(context.Background())
	grace, endGrace := context.WithCancel(context.Background())
	c.work, c.grace, c.stop = work, grace, stop
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.ready.run(grace) }()
	go func() { defer wg.Done(); _ = c.commits.run() }()
	return func() {
		stop(nil)
		endGrace()
		c.commits.close()
		wg.Wait()
	}
}
