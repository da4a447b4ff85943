package job

import (
	"context"
	"sync"
	"time"
)

// The shutdown clock. A command has one: the signal context it is given, and the grace
// (performance.shutdown_grace) that starts when that context ends. Every deadline of a stopping
// run is a fraction of that one grace, set here and nowhere else:
//
//   - at the signal, no new work starts (no listing, no fetch, no poll);
//   - AckGrace(grace) after it, components stop waiting for Elasticsearch's acknowledgements
//     of what they sent, and commit what was acknowledged;
//   - grace after it, the context Shutdown returns ends: the bulk writer closes (failing what
//     is still in flight) and the summary is written;
//   - grace + HardStopAfter after it, hardStop runs: the command exits without its summary, so
//     that the promise to stop holds even if some wait does not honour its context.
//
// Components take these contexts and durations as parameters; none keeps a clock of its own.

// HardStopAfter is how long past the grace a command that still has not returned is stopped
// outright.
const HardStopAfter = 5 * time.Second

// AckGrace is how long after the signal a stopping component waits for acknowledgements: most
// of the grace, the rest being for the writer to fail what is still in flight, for the commits
// and for the summary.
func AckGrace(grace time.Duration) time.Duration { return grace * 3 / 4 }

// Shutdown returns the stopping context: it ends grace after ctx ends, or when the returned
// function is called (the command returned). hardStop runs if the command still runs
// HardStopAfter after that; the returned function disarms it.
func Shutdown(ctx context.Context, grace time.Duration, hardStop func()) (context.Context, func()) {
	stopping, cancel := context.WithCancel(context.Background())
	var (
		mu     sync.Mutex
		done   bool
		timers []*time.Timer
	)
	unwatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		timers = append(timers, time.AfterFunc(grace, cancel), time.AfterFunc(grace+HardStopAfter, hardStop))
	})
	return stopping, func() {
		unwatch()
		mu.Lock()
		done = true
		for _, t := range timers {
			t.Stop()
		}
		mu.Unlock()
		cancel()
	}
}
