package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// MaxReasonBytes caps the stored Failure.Reason; longer reasons are cut on
// a UTF-8 boundary. Reasons come from remote error messages of any length,
// and the file should stay small enough to read quickly at every start.
const MaxReasonBytes = 2048

// Failure is a document that failed permanently, kept where a person can
// see it until it is indexed or cleared.
type Failure struct {
	Key          Key
	DocID        string // the document id; identifies the failure
	MessageID    string
	AttachmentID string
	Reason       string
	Status       int // HTTP or bulk item status, 0 when there was none
	At           time.Time
}

const failureVersion = 1

type failureRecord struct {
	V            int       `json:"v"`
	Mailbox      string    `json:"mailbox"`
	View         string    `json:"view"`
	DocID        string    `json:"docId"`
	MessageID    string    `json:"messageId,omitempty"`
	AttachmentID string    `json:"attachmentId,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Status       int       `json:"status,omitzero"`
	At           time.Time `json:"at,omitzero"`
}

func encodeFailure(f Failure) ([]byte, error) {
	if err := f.Key.validate(); err != nil {
		return nil, err
	}
	if f.DocID == "" {
		return nil, errors.New("empty document id")
	}
	if err := checkTimes("time", f.At); err != nil {
		return nil, err
	}
	return json.Marshal(failureRecord{
		V:            failureVersion,
		Mailbox:      f.Key.Mailbox,
		View:         f.Key.View,
		DocID:        f.DocID,
		MessageID:    f.MessageID,
		AttachmentID: f.AttachmentID,
		Reason:       truncateUTF8(f.Reason, MaxReasonBytes),
		Status:       f.Status,
		At:           f.At.UTC(),
	})
}

func decodeFailure(docID, b []byte) (Failure, error) {
	var r failureRecord
	if err := strictUnmarshal(b, &r); err != nil {
		return Failure{}, err
	}
	if err := checkVersion(r.V, failureVersion); err != nil {
		return Failure{}, err
	}
	f := Failure{
		Key:          Key{Mailbox: r.Mailbox, View: r.View},
		DocID:        r.DocID,
		MessageID:    r.MessageID,
		AttachmentID: r.AttachmentID,
		Reason:       r.Reason,
		Status:       r.Status,
		At:           r.At.UTC(),
	}
	if err := f.Key.validate(); err != nil {
		return Failure{}, err
	}
	if f.DocID != string(docID) {
		return Failure{}, fmt.Errorf("document id %q differs from its key", f.DocID)
	}
	return f, nil
}

// truncateUTF8 cuts s to at most max bytes without splitting a character.
func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// eachFailure calls fn for every stored failure, in document id order.
func eachFailure(tx *bolt.Tx, fn func(Failure) error) error {
	b := tx.Bucket(bucketFailures)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		f, err := decodeFailure(k, v)
		if err != nil {
			return &decodeError{bucket: bucketFailures, key: k, err: err}
		}
		return fn(f)
	})
}

// RecordFailure stores f under its DocID, replacing an earlier failure of
// the same document.
func (s *Store) RecordFailure(f Failure) error {
	v, err := encodeFailure(f)
	if err != nil {
		return fmt.Errorf("record failure of document %q in state file %s: %w", f.DocID, s.path, err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFailures).Put([]byte(f.DocID), v)
	})
	if err != nil {
		return s.writeError(fmt.Sprintf("record failure of document %q", f.DocID), err)
	}
	return nil
}

// ClearFailure removes the failure of docID; clearing an absent one is not
// an error.
func (s *Store) ClearFailure(docID string) error {
	if docID == "" {
		return fmt.Errorf("clear failure in state file %s: empty document id", s.path)
	}
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFailures).Delete([]byte(docID))
	})
	if err != nil {
		return s.writeError(fmt.Sprintf("clear failure of document %q", docID), err)
	}
	return nil
}

// Failures returns the failures of k, or of every key when k is nil,
// oldest first (ties in document id order).
func (s *Store) Failures(k *Key) ([]Failure, error) {
	var out []Failure
	err := s.view(func(tx *bolt.Tx) error {
		return eachFailure(tx, func(f Failure) error {
			if k == nil || f.Key == *k {
				out = append(out, f)
			}
			return nil
		})
	})
	if err != nil {
		return nil, s.readError(err)
	}
	slices.SortStableFunc(out, func(a, b Failure) int { return a.At.Compare(b.At) })
	return out, nil
}

// FailedMessageIDs returns the message ids that have a recorded failure
// under k, so a pass can retry them.
func (s *Store) FailedMessageIDs(k Key) (map[string]bool, error) {
	out := make(map[string]bool)
	err := s.view(func(tx *bolt.Tx) error {
		return eachFailure(tx, func(f Failure) error {
			if f.Key == k && f.MessageID != "" {
				out[f.MessageID] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, s.readError(err)
	}
	return out, nil
}
