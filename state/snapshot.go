package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A running crawl holds the state file's lock, so `status` cannot open it. The crawl therefore
// writes what status would show (a Report with its Snapshot header) to SnapshotPath after each
// checkpoint commit and at its end; status reads that snapshot when the file is locked and says
// how old it is. The snapshot is written to a temporary file and renamed over the old one, so a
// reader sees a whole snapshot or the previous one, never half of one. Mode 0600: it holds
// mailbox addresses.

// snapshotVersion is the version of the snapshot's encoding, in its field "v". A snapshot
// without the field was written before it was versioned, in the same encoding as version 1:
// a crawl of that release may still be running while a newer `status` reads its snapshot.
const snapshotVersion = 1

// maxSnapshotBytes bounds what ReadSnapshot reads: a snapshot is a report, which lists at most
// every view and failure of the state file.
const maxSnapshotBytes = 256 << 20

// SnapshotPath is where a running crawl writes the snapshot of the state file statePath.
func SnapshotPath(statePath string) string { return statePath + ".status.json" }

// WriteSnapshot writes rep, which must have its Snapshot header, as the snapshot of the state
// file statePath, atomically: a temporary file in the same directory, synced, then renamed.
func WriteSnapshot(statePath string, rep Report) error {
	if rep.Snapshot == nil {
		return errors.New("write status snapshot: no snapshot header")
	}
	rep.V = snapshotVersion
	data, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode status snapshot: %w", err)
	}
	path := SnapshotPath(statePath)
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

// ReadSnapshot reads the snapshot of the state file statePath written by WriteSnapshot. A
// snapshot of a newer encoding is refused rather than misread.
func ReadSnapshot(statePath string) (Report, error) {
	path := SnapshotPath(statePath)
	f, err := os.Open(path)
	if err != nil {
		return Report{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSnapshotBytes+1))
	if err != nil {
		return Report{}, fmt.Errorf("read snapshot %s: %w", path, err)
	}
	if len(data) > maxSnapshotBytes {
		return Report{}, fmt.Errorf("snapshot %s: larger than %d bytes", path, maxSnapshotBytes)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return Report{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if rep.V > snapshotVersion {
		return Report{}, fmt.Errorf("snapshot %s: version %d, this mimecrawl reads up to %d: use a newer mimecrawl", path, rep.V, snapshotVersion)
	}
	if rep.Snapshot == nil {
		return Report{}, fmt.Errorf("snapshot %s: no snapshot header", path)
	}
	rep.V = 0
	return rep, nil
}
