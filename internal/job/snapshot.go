package job

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/state"
)

// A running crawl holds the state file's lock, so `status` cannot open it. The crawl therefore
// writes what status would show to <state.path>.status.json after each checkpoint commit and at
// its end; status reads that snapshot when the file is locked and says how old it is. The
// snapshot is written to a temporary file and renamed over the old one, so a reader sees a
// whole snapshot or the previous one, never half of one. Mode 0600: it holds mailbox addresses.

// SnapshotInfo says where a status report came from when it is a running crawl's snapshot.
type SnapshotInfo struct {
	Written    time.Time `json:"written"`
	Age        string    `json:"age,omitempty"` // filled by the reader
	PID        int       `json:"pid"`
	ViewsDone  int       `json:"views_done"`
	ViewsTotal int       `json:"views_total"`
	Messages   int64     `json:"messages_indexed"`
}

// maxSnapshotBytes bounds what status reads: a snapshot is a status report, which lists at most
// every view and failure of the state file.
const maxSnapshotBytes = 256 << 20

// SnapshotPath is where a running crawl writes its status snapshot for the state file statePath.
func SnapshotPath(statePath string) string { return statePath + ".status.json" }

// readSnapshot reads a snapshot written by writeSnapshotFile.
func readSnapshot(path string) (StatusReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return StatusReport{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSnapshotBytes+1))
	if err != nil {
		return StatusReport{}, fmt.Errorf("read snapshot %s: %w", path, err)
	}
	if len(data) > maxSnapshotBytes {
		return StatusReport{}, fmt.Errorf("snapshot %s: larger than %d bytes", path, maxSnapshotBytes)
	}
	var rep StatusReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return StatusReport{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if rep.Snapshot == nil {
		return StatusReport{}, fmt.Errorf("snapshot %s: no snapshot header", path)
	}
	return rep, nil
}

// writeSnapshotFile writes rep to path atomically: a temporary file in the same directory,
// synced, then renamed over path.
func writeSnapshotFile(path string, rep StatusReport) error {
	data, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode status snapshot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write status snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write status snapshot: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write status snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write status snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write status snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write status snapshot: %w", err)
	}
	return nil
}

// snapshotter writes the status snapshot of a running crawl. Commits only signal it; one
// goroutine, owned by the crawl command (start, then stop), does the writing, so that a slow
// disk never holds up a checkpoint and bursts of commits give one snapshot.
type snapshotter struct {
	store *state.Store
	path  string
	base  StatusReport
	live  func() SnapshotInfo

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	// onError reports a failed write; the crawl goes on without a fresh snapshot.
	onError func(error)
}

func newSnapshotter(store *state.Store, base StatusReport, live func() SnapshotInfo, onError func(error)) *snapshotter {
	return &snapshotter{store: store, path: SnapshotPath(store.Path()), base: base, live: live, onError: onError,
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
	rep, _, err := fillStatus(s.store, s.base, false)
	if err != nil {
		s.onError(err)
		return
	}
	// A crawl is running: this one, whether or not an earlier one ever finished.
	rep.NoCrawlYet = false
	info := s.live()
	info.Written, info.PID = time.Now().UTC(), os.Getpid()
	rep.Snapshot = &info
	if err := writeSnapshotFile(s.path, rep); err != nil {
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
