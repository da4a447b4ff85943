package state

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// MaxCursorBytes bounds one cursor value. Cursors are small (a time and a page token); a
// bound keeps a runaway caller from bloating the file.
const MaxCursorBytes = 64 << 10

// Cursors live in a bucket of their own, never in the positions bucket: nothing that lists
// mailboxes (Mailboxes, Positions, DeleteMailbox) ever sees them, so a poller's cursor cannot
// be taken for a mailbox that disappeared.

func checkCursorName(name string) error {
	if name == "" {
		return fmt.Errorf("empty cursor name")
	}
	if len(name) > 256 || !utf8.ValidString(name) {
		return fmt.Errorf("cursor name %q: want at most 256 bytes of UTF-8", name)
	}
	return nil
}

// Cursor returns the cursor stored under name, an opaque string its owner encoded. ok is
// false when there is none.
func (s *Store) Cursor(name string) (value string, ok bool, err error) {
	if err := checkCursorName(name); err != nil {
		return "", false, fmt.Errorf("read cursor: %w", err)
	}
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		if b == nil {
			return nil // a version 1 file opened read-only
		}
		if v := b.Get([]byte(name)); v != nil {
			value, ok = string(v), true
		}
		return nil
	})
	if err != nil {
		return "", false, s.readError(err)
	}
	return value, ok, nil
}

// Cursors returns every cursor by name.
func (s *Store) Cursors() (map[string]string, error) {
	out := map[string]string{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		return nil, s.readError(err)
	}
	return out, nil
}

// SetCursors stores every cursor of updates in one durable transaction; names not in updates
// keep their values. Every name and value is checked before anything is written.
func (s *Store) SetCursors(updates map[string]string) error {
	if len(updates) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(updates))
	for _, n := range names {
		if err := checkCursorName(n); err != nil {
			return fmt.Errorf("set cursor: %w", err)
		}
		if len(updates[n]) > MaxCursorBytes {
			return fmt.Errorf("set cursor %q: value of %d bytes exceeds %d", n, len(updates[n]), MaxCursorBytes)
		}
	}
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		for _, n := range names {
			// bbolt keeps references to the slices until commit: give it copies.
			if err := b.Put([]byte(n), bytes.Clone([]byte(updates[n]))); err != nil {
				return fmt.Errorf("put cursor %q: %w", n, err)
			}
		}
		return nil
	})
	if err != nil {
		return s.writeError("set cursors", err)
	}
	return nil
}
