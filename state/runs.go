package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// KeptRuns is how many run summaries AddRun keeps; older ones are dropped.
const KeptRuns = 50

// AddRun appends a run summary, a JSON value built by the caller, and drops
// all but the newest KeptRuns summaries, in one transaction.
func (s *Store) AddRun(summary []byte) error {
	if !json.Valid(summary) {
		return fmt.Errorf("add run summary to state file %s: not valid JSON", s.path)
	}
	// Compact keeps the file small and the stored bytes independent of the
	// caller's buffer, which bbolt must not see change before commit.
	var buf bytes.Buffer
	if err := json.Compact(&buf, summary); err != nil {
		return fmt.Errorf("add run summary to state file %s: %w", s.path, err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		// Big-endian sequence numbers sort in insertion order.
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), buf.Bytes()); err != nil {
			return err
		}
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for len(keys) > KeptRuns {
			if err := b.Delete(keys[0]); err != nil {
				return err
			}
			keys = keys[1:]
		}
		return nil
	})
	if err != nil {
		return s.writeError("add run summary", err)
	}
	return nil
}

// Runs returns up to n run summaries, newest first; n <= 0 returns all kept.
func (s *Store) Runs(n int) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			if len(k) != 8 || !json.Valid(v) {
				return &decodeError{bucket: bucketRuns, key: k, err: errors.New("not a run summary")}
			}
			// Values are only valid inside the transaction.
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, s.readError(err)
	}
	return out, nil
}
