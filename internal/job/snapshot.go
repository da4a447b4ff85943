package job

import (
	"os"
	"sync"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/state"
)

// snapshotter writes the status snapshot of a running crawl. Commits only signal it; one
// goroutine, owned by the crawl command (start, then stop), does the writing, so that a slow
// disk never holds up a checkpoint and bursts of commits give one snapshot.
type snapshotter struct {
	store *state.Store
	base  state.Report
	live  func() state.SnapshotInfo

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	// onError reports a failed write; the crawl goes on without a fresh snapshot.
	onError func(error)
}

func newSnapshotter(store *state.Store, base state.Report, live func() state.SnapshotInfo, onError func(error)) *snapshotter {
	return &snapshotter{store: store, base: base, live: live, onError: onError,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *snapshotter) start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.done:
				return
			case <-s.kick:
				s.write()
			}
		}
	}()
}

// changed asks for a new snapshot; it never blocks.
func (s *snapshotter) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// stop ends the goroutine and writes the final snapshot.
func (s *snapshotter) stop() {
	close(s.done)
	s.wg.Wait()
	s.write()
}

func (s *snapshotter) write() {
	rep, err := s.store.Report(s.base, false)
	if err != nil {
		s.onError(err)
		return
	}
	// A crawl is running: this one, whether or not an earlier one ever finished.
	rep.NoCrawlYet = false
	info := s.live()
	info.Written, info.PID = time.Now().UTC(), os.Getpid()
	rep.Snapshot = &info
	if err := state.WriteSnapshot(s.store.Path(), rep); err != nil {
		s.onError(err)
	}
}

// snapshotStore is the crawl's store with a snapshot after every checkpoint commit.
type snapshotStore struct {
	*state.Store
	snap *snapshotter
}

var _ crawler.Store = snapshotStore{}

// Commit commits, then asks for a snapshot.
func (s snapshotStore) Commit(updates map[state.Key]state.Position) error {
	err := s.Store.Commit(updates)
	if err == nil {
		s.snap.changed()
	}
	return err
}
