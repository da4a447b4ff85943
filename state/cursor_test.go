package state

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestCursorRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	if _, ok, err := s.Cursor("alerts/dlp"); err != nil || ok {
		t.Fatalf("Cursor of a new file = ok %t, err %v; want none", ok, err)
	}
	if err := s.SetCursors(map[string]string{"alerts/dlp": `{"v":1}`, "alerts/siem/receipt": "NDU1NA=="}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursors(map[string]string{"alerts/dlp": `{"v":2}`}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	got, err := s.Cursors()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alerts/dlp": `{"v":2}`, "alerts/siem/receipt": "NDU1NA=="}
	if len(got) != len(want) || got["alerts/dlp"] != want["alerts/dlp"] || got["alerts/siem/receipt"] != want["alerts/siem/receipt"] {
		t.Errorf("Cursors() = %v, want %v", got, want)
	}
}

func TestSetCursorsRejectsBadInputWhole(t *testing.T) {
	s := openTemp(t)
	for name, updates := range map[string]map[string]string{
		"empty name": {"ok": "1", "": "2"},
		"too large":  {"ok": "1", "big": strings.Repeat("x", MaxCursorBytes+1)},
	} {
		if err := s.SetCursors(updates); err == nil {
			t.Errorf("%s: SetCursors accepted it", name)
		}
	}
	if got, err := s.Cursors(); err != nil || len(got) != 0 {
		t.Errorf("after refused updates Cursors() = %v, %v; want nothing written", got, err)
	}
}

// Cursors must never look like mailboxes: the crawler removes mailboxes the state file knows
// and enumeration no longer finds.
func TestCursorsAreNotMailboxes(t *testing.T) {
	s := openTemp(t)
	if err := s.SetCursors(map[string]string{"alerts/dlp": "x", "someone@example.com/INBOX": "y"}); err != nil {
		t.Fatal(err)
	}
	boxes, err := s.Mailboxes()
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 0 {
		t.Errorf("Mailboxes() = %v, want none: cursors leaked into the mailbox listing", boxes)
	}
	ps, err := s.Positions()
	if err != nil || len(ps) != 0 {
		t.Errorf("Positions() = %v, %v; want none", ps, err)
	}
}

// A file of schema 1 (before cursors) keeps its data and gains the cursors bucket.
func TestMigrateSchema1KeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	k := Key{Mailbox: "a@example.com", View: "INBOX"}
	if err := s.Commit(map[Key]Position{k: {Token: day(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketCursors); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	})

	// Read-only: an old file reads as having no cursors, and is not changed.
	ro, err := Open(path, Options{LockTimeout: testLock, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := ro.Cursors(); err != nil || len(cs) != 0 {
		t.Errorf("read-only Cursors() of a schema 1 file = %v, %v", cs, err)
	}
	if err := ro.SetCursors(map[string]string{"x": "y"}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("SetCursors on a read-only store: %v, want ErrReadOnly", err)
	}
	_ = ro.Close()

	s = openAt(t, path)
	p, ok, err := s.Position(k)
	if err != nil || !ok || !p.Token.Equal(day(1)) {
		t.Fatalf("position after migration = %+v, %t, %v; want the old one", p, ok, err)
	}
	if err := s.SetCursors(map[string]string{"alerts/dlp": "c"}); err != nil {
		t.Fatalf("SetCursors after migration: %v", err)
	}
	var schema string
	if err := s.view(func(tx *bolt.Tx) error {
		schema = string(tx.Bucket(bucketMeta).Get(keySchema))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if schema != "2" {
		t.Errorf("schema after migration = %q, want 2", schema)
	}
}

// The crawler and the alerts poller keep separate files so that neither waits for the
// other's lock: both must open at once in one process.
func TestTwoStateFilesOpenAtOnce(t *testing.T) {
	dir := t.TempDir()
	crawl := openAt(t, filepath.Join(dir, "state.db"))
	poll := openAt(t, filepath.Join(dir, "state.db.alerts"))
	if err := crawl.Commit(map[Key]Position{{Mailbox: "a@example.com", View: "INBOX"}: {Token: day(2)}}); err != nil {
		t.Fatal(err)
	}
	if err := poll.SetCursors(map[string]string{"alerts/dlp": "c"}); err != nil {
		t.Fatal(err)
	}
}
