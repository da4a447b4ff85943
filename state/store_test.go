package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testLock is the lock timeout used by tests that expect a lock to be busy.
const testLock = 200 * time.Millisecond

func openTemp(t *testing.T) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "state.db"))
}

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{LockTimeout: testLock})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawUpdate edits a closed state file with bbolt directly, the way damage
// or another program would.
func rawUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("raw open %s: %v", path, err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatalf("raw update %s: %v", path, err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("raw close %s: %v", path, err)
	}
}

func day(d int) time.Time {
	return time.Date(2025, 3, d, 12, 30, 15, 123456789, time.UTC)
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "state.db")
	s := openAt(t, path)
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode of new state file = %o, want 600", got)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("mode of created directory = %o, want 700", got)
	}
}

func TestOpenTightensPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode after reopening a 644 file = %o, want 600", got)
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("readOnly=%t", readOnly), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			first := openAt(t, path)

			// bbolt locks with flock, which also excludes a second open
			// file description in the same process.
			start := time.Now()
			second, err := Open(path, Options{LockTimeout: testLock, ReadOnly: readOnly})
			waited := time.Since(start)
			if err == nil {
				_ = second.Close()
				t.Fatal("second Open of a held state file succeeded")
			}
			if !errors.Is(err, ErrLocked) {
				t.Errorf("error %v does not wrap ErrLocked", err)
			}
			want := fmt.Sprintf("state file %s is locked by another mimecrawl run (waited %s)", path, testLock)
			if err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
			// A guard against waiting forever, not a timing assertion.
			if waited > testLock+10*time.Second {
				t.Errorf("second Open took %s with a lock timeout of %s", waited, testLock)
			}

			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			third, err := Open(path, Options{LockTimeout: testLock, ReadOnly: readOnly})
			if err != nil {
				t.Fatalf("Open after the holder closed: %v", err)
			}
			_ = third.Close()
		})
	}
}

func TestReadOnlyStoresShareTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	k := Key{"a@example.com", "INBOX"}
	if err := s.Commit(map[Key]Position{k: {Token: day(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	r1, err := Open(path, Options{ReadOnly: true, LockTimeout: testLock})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := Open(path, Options{ReadOnly: true, LockTimeout: testLock})
	if err != nil {
		t.Fatalf("second read-only Open: %v", err)
	}
	defer r2.Close()

	p, ok, err := r2.Position(k)
	if err != nil || !ok || !p.Token.Equal(day(1)) {
		t.Errorf("read-only Position = %+v, %t, %v", p, ok, err)
	}
	writes := map[string]func() error{
		"Commit":         func() error { return r1.Commit(map[Key]Position{k: {}}) },
		"NextGeneration": func() error { _, err := r1.NextGeneration(); return err },
		"RecordFailure":  func() error { return r1.RecordFailure(Failure{Key: k, DocID: "d"}) },
		"ClearFailure":   func() error { return r1.ClearFailure("d") },
		"AddRun":         func() error { return r1.AddRun(RunRecord{}) },
		"DeleteMailbox":  func() error { return r1.DeleteMailbox(k.Mailbox) },
	}
	for name, write := range writes {
		err := write()
		if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly naming %s", name, err, path)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("read-only use changed the file")
	}
}

func TestReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.db")
	_, err := Open(path, Options{ReadOnly: true})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("read-only Open of a missing file: %v", err)
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("read-only Open created %s", path)
	}
}

// validStateFile returns the bytes of a state file with some content.
func validStateFile(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "valid.db")
	s := openAt(t, path)
	up := make(map[Key]Position)
	for i := range 200 {
		up[Key{fmt.Sprintf("user%03d@example.com", i), "INBOX"}] = Position{Token: day(1), Indexed: int64(i)}
	}
	if err := s.Commit(up); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenCorruptFileIsRefusedAndUntouched(t *testing.T) {
	valid := validStateFile(t)
	garbage := bytes.Repeat([]byte("not a bbolt file\x00\xff"), 1000)

	cases := []struct {
		name    string
		content []byte
		edit    func(t *testing.T, path string) // applied to a valid file instead of content
	}{
		{name: "short garbage", content: []byte("hello")},
		{name: "long garbage", content: garbage},
		{name: "truncated to one page", content: valid[:4096]},
		{name: "truncated to two pages", content: valid[:8192]},
		{name: "truncated to three pages", content: valid[:12288]},
		{name: "zeroed meta pages", content: append(make([]byte, 8192), valid[8192:]...)},
		{
			name: "bbolt file of another program",
			edit: func(t *testing.T, path string) {
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					_, err := tx.CreateBucket([]byte("something-else"))
					return err
				})
			},
		},
		{
			name: "meta bucket without schema version",
			edit: func(t *testing.T, path string) {
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					_, err := tx.CreateBucket(bucketMeta)
					return err
				})
			},
		},
		{
			name: "unreadable schema version",
			edit: func(t *testing.T, path string) {
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					b, err := tx.CreateBucket(bucketMeta)
					if err != nil {
						return err
					}
					return b.Put(keySchema, []byte("one"))
				})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if tc.edit != nil {
				tc.edit(t, path)
			} else if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}

			s, err := Open(path, Options{LockTimeout: testLock})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open of a corrupt file succeeded")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "state file "+path+" is corrupt") || !strings.Contains(msg, "move it away") {
				t.Errorf("error %q does not name the path and the remedy", msg)
			}

			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("Open changed the bytes of a corrupt file")
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o644 {
				t.Errorf("Open changed the mode of a corrupt file to %o", fi.Mode().Perm())
			}
		})
	}
}

func TestCorruptValueNamesPathBucketAndKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	good := Key{"good@example.com", "INBOX"}
	if err := s.Commit(map[Key]Position{good: {Token: day(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bad := Key{"bad@example.com", "SENT"}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPositions).Put(bad.bytes(), []byte(`{"v":1,"token":"yesterday"}`)); err != nil {
			return err
		}
		return tx.Bucket(bucketFailures).Put([]byte("doc-1"), []byte(`{"v":1`))
	})
	s = openAt(t, path)

	calls := map[string]func() error{
		"Position":         func() error { _, _, err := s.Position(bad); return err },
		"Positions":        func() error { _, err := s.Positions(); return err },
		"Failures":         func() error { _, err := s.Failures(nil); return err },
		"FailedMessageIDs": func() error { _, err := s.FailedMessageIDs(bad); return err },
		"Mailboxes":        func() error { _, err := s.Mailboxes(); return err },
		"DeleteMailbox":    func() error { return s.DeleteMailbox("good@example.com") },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, path) {
			t.Errorf("%s: error %q does not name the path", name, msg)
		}
		if !strings.Contains(msg, `bucket "positions" key "bad@example.com\x00SENT"`) &&
			!strings.Contains(msg, `bucket "failures" key "doc-1"`) {
			t.Errorf("%s: error %q does not name bucket and key", name, msg)
		}
	}
	// The intact value stays readable, and the failed delete changed nothing.
	if p, ok, err := s.Position(good); err != nil || !ok || !p.Token.Equal(day(1)) {
		t.Errorf("Position(good) = %+v, %t, %v", p, ok, err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion+1)))
	})
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{LockTimeout: testLock, ReadOnly: ro})
		if !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("Open(readOnly=%t) of a newer schema file: %v, want ErrNewerSchema", ro, err)
		}
		want := fmt.Sprintf("state file %s has schema version %d, this mimecrawl supports up to %d", path, SchemaVersion+1, SchemaVersion)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Open changed a file with a newer schema")
	}
}

func TestOpenIntactFileDoesNotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	before := validStateFile(t)
	if err := os.WriteFile(path, before, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path)
	if _, err := s.Positions(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("opening and reading an intact file changed it")
	}
}

func TestPositionRoundTrip(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	cases := []struct {
		name string
		pos  Position
	}{
		{name: "zero", pos: Position{}},
		{name: "token only", pos: Position{Token: day(2)}},
		{name: "completed pass", pos: Position{Token: day(3), Generation: 4, LastRun: day(3).Add(time.Minute), Indexed: 1234, Failures: 5}},
		{name: "first pass in progress", pos: Position{Pass: &Pass{End: day(5), Started: day(5)}}},
		{name: "pass with resume point", pos: Position{Token: day(1), Pass: &Pass{End: day(5), Low: day(4), Generation: 2, Started: day(5)}, Indexed: 9}},
		{name: "full pass", pos: Position{Token: day(1), Generation: 1, Pass: &Pass{End: day(6), Low: day(2), Full: true, Generation: 2, Started: day(6)}}},
		{name: "non-UTC times", pos: Position{Token: day(7).In(paris), LastRun: time.Now(), Pass: &Pass{End: day(8).In(paris), Low: day(8).In(paris)}}},
	}
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	want := make(map[Key]Position)
	for i, tc := range cases {
		k := Key{fmt.Sprintf("user%d@example.com", i), "INBOX"}
		want[k] = tc.pos
		if err := s.Commit(map[Key]Position{k: tc.pos}); err != nil {
			t.Fatalf("%s: Commit: %v", tc.name, err)
		}
	}
	check := func(t *testing.T, s *Store) {
		all, err := s.Positions()
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(cases) {
			t.Errorf("Positions() has %d entries, want %d", len(all), len(cases))
		}
		for i, tc := range cases {
			k := Key{fmt.Sprintf("user%d@example.com", i), "INBOX"}
			got, ok, err := s.Position(k)
			if err != nil || !ok {
				t.Errorf("%s: Position = %t, %v", tc.name, ok, err)
				continue
			}
			if !samePosition(got, tc.pos) {
				t.Errorf("%s: Position = %+v (pass %+v), want %+v (pass %+v)", tc.name, got, got.Pass, tc.pos, tc.pos.Pass)
			}
			if !reflect.DeepEqual(all[k], got) {
				t.Errorf("%s: Positions()[k] = %+v, Position(k) = %+v", tc.name, all[k], got)
			}
			if got.Token.Location() != time.UTC {
				t.Errorf("%s: stored times come back in %v, want UTC", tc.name, got.Token.Location())
			}
		}
	}
	check(t, s)

	// Durability within the API: a reopened store sees what was committed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, openAt(t, path))
}

// samePosition compares positions by instant, not by time zone.
func samePosition(a, b Position) bool {
	norm := func(p Position) Position {
		p.Token, p.LastRun = p.Token.UTC().Round(0), p.LastRun.UTC().Round(0)
		if p.Pass != nil {
			ps := *p.Pass
			ps.End, ps.Low, ps.Started = ps.End.UTC().Round(0), ps.Low.UTC().Round(0), ps.Started.UTC().Round(0)
			p.Pass = &ps
		}
		return p
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func TestPositionMissing(t *testing.T) {
	s := openTemp(t)
	p, ok, err := s.Position(Key{"nobody@example.com", "INBOX"})
	if err != nil || ok || !reflect.DeepEqual(p, Position{}) {
		t.Errorf("Position of an unknown key = %+v, %t, %v", p, ok, err)
	}
	all, err := s.Positions()
	if err != nil || len(all) != 0 {
		t.Errorf("Positions of a new store = %v, %v", all, err)
	}
}

func TestCommitRejectsInvalidUpdatesWhole(t *testing.T) {
	good := Key{"a@example.com", "INBOX"}
	cases := []struct {
		name string
		key  Key
		pos  Position
	}{
		{name: "empty mailbox", key: Key{"", "INBOX"}},
		{name: "empty view", key: Key{"a@example.com", ""}},
		{name: "NUL in mailbox", key: Key{"a\x00b", "INBOX"}},
		{name: "NUL in view", key: Key{"a@example.com", "IN\x00BOX"}},
		{name: "negative indexed", key: Key{"b@example.com", "INBOX"}, pos: Position{Indexed: -1}},
		{name: "negative failures", key: Key{"b@example.com", "INBOX"}, pos: Position{Failures: -1}},
		{name: "negative generation", key: Key{"b@example.com", "INBOX"}, pos: Position{Generation: -1}},
		{name: "pass without end", key: Key{"b@example.com", "INBOX"}, pos: Position{Pass: &Pass{Low: day(1)}}},
		{name: "resume point after end", key: Key{"b@example.com", "INBOX"}, pos: Position{Pass: &Pass{End: day(1), Low: day(2)}}},
		{name: "year beyond 9999", key: Key{"b@example.com", "INBOX"}, pos: Position{Token: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			err := s.Commit(map[Key]Position{good: {Token: day(1)}, tc.key: tc.pos})
			if err == nil {
				t.Fatal("Commit accepted an invalid update")
			}
			if !strings.Contains(err.Error(), s.Path()) {
				t.Errorf("error %q does not name the path", err)
			}
			if _, ok, _ := s.Position(good); ok {
				t.Error("the valid update of a rejected Commit was stored")
			}
		})
	}
}

func TestCommitManyKeysIsAtomic(t *testing.T) {
	s := openTemp(t)
	const n = 2000
	batch := func(token time.Time) map[Key]Position {
		up := make(map[Key]Position, n)
		for i := range n {
			up[Key{fmt.Sprintf("user%05d@example.com", i), []string{"INBOX", "SENT"}[i%2]}] =
				Position{Token: token, Indexed: int64(i)}
		}
		return up
	}
	if err := s.Commit(batch(day(1))); err != nil {
		t.Fatal(err)
	}

	// A second commit fails inside the transaction, on its last key
	// (keys are written in sorted order, and bbolt refuses keys over 32 KiB):
	// none of its earlier puts may survive.
	failing := batch(day(2))
	failing[Key{"zzz" + strings.Repeat("z", 40000), "INBOX"}] = Position{Token: day(2)}
	if err := s.Commit(failing); err == nil {
		t.Fatal("Commit with an oversized key succeeded")
	} else if !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("error %q does not name the path", err)
	}

	all, err := s.Positions()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("Positions() has %d entries, want %d", len(all), n)
	}
	for k, p := range all {
		if !p.Token.Equal(day(1)) {
			t.Fatalf("%s has token %s after a failed commit, want %s", k, p.Token, day(1))
		}
	}
}

func TestCommitEmptyIsNoop(t *testing.T) {
	s := openTemp(t)
	if err := s.Commit(nil); err != nil {
		t.Fatal(err)
	}
}

func TestNextGenerationPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	for want := int64(1); want <= 3; want++ {
		got, err := s.NextGeneration()
		if err != nil || got != want {
			t.Fatalf("NextGeneration() = %d, %v, want %d", got, err, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := openAt(t, path).NextGeneration()
	if err != nil || got != 4 {
		t.Fatalf("NextGeneration() after reopen = %d, %v, want 4", got, err)
	}
}

func TestMailboxesAndDeleteMailbox(t *testing.T) {
	s := openTemp(t)
	// "a@example.com" is a byte prefix of "a@example.com.au": deleting the
	// first must not touch the second.
	keys := []Key{
		{"a@example.com", "INBOX"}, {"a@example.com", "SENT"},
		{"a@example.com.au", "INBOX"}, {"b@example.com", "INBOX"},
	}
	up := make(map[Key]Position)
	for _, k := range keys {
		up[k] = Position{Token: day(1)}
	}
	if err := s.Commit(up); err != nil {
		t.Fatal(err)
	}
	failures := []Failure{
		{Key: keys[0], DocID: "a1", MessageID: "m1"},
		{Key: keys[1], DocID: "a2", MessageID: "m2"},
		{Key: keys[2], DocID: "au1", MessageID: "m3"},
		{Key: Key{"c@example.com", "INBOX"}, DocID: "c1", MessageID: "m4"}, // failure without position
	}
	for _, f := range failures {
		if err := s.RecordFailure(f); err != nil {
			t.Fatal(err)
		}
	}

	got, err := s.Mailboxes()
	want := []string{"a@example.com", "a@example.com.au", "b@example.com", "c@example.com"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Mailboxes() = %v, %v, want %v", got, err, want)
	}

	if err := s.DeleteMailbox("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox("nobody@example.com"); err != nil {
		t.Errorf("DeleteMailbox of an unknown mailbox: %v", err)
	}
	if err := s.DeleteMailbox(""); err == nil {
		t.Error("DeleteMailbox(\"\") succeeded")
	}

	got, err = s.Mailboxes()
	want = []string{"a@example.com.au", "b@example.com", "c@example.com"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Mailboxes() after delete = %v, %v, want %v", got, err, want)
	}
	all, err := s.Positions()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all[keys[2]]; !ok || len(all) != 2 {
		t.Errorf("Positions() after delete = %v", all)
	}
	fs, err := s.Failures(nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.DocID)
	}
	if !reflect.DeepEqual(ids, []string{"au1", "c1"}) {
		t.Errorf("failures after delete = %v, want [au1 c1]", ids)
	}
}

func TestFailures(t *testing.T) {
	s := openTemp(t)
	inbox := Key{"a@example.com", "INBOX"}
	sent := Key{"a@example.com", "SENT"}
	record := []Failure{
		{Key: inbox, DocID: "d3", MessageID: "m2", AttachmentID: "att1", Reason: "too large", Status: 413, At: day(3)},
		{Key: inbox, DocID: "d1", MessageID: "m1", Reason: "mapping", Status: 400, At: day(1)},
		{Key: sent, DocID: "d2", MessageID: "m9", Reason: "bad", Status: 400, At: day(2)},
		{Key: inbox, DocID: "d4", Reason: "no message id", At: day(4)},
		// Re-recording d1 replaces it.
		{Key: inbox, DocID: "d1", MessageID: "m1", Reason: "mapping again", Status: 400, At: day(5)},
	}
	for _, f := range record {
		if err := s.RecordFailure(f); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(fs []Failure) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.DocID)
		}
		return out
	}

	all, err := s.Failures(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), []string{"d2", "d3", "d4", "d1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Failures(nil) = %v, want %v (oldest first)", got, want)
	}
	if !reflect.DeepEqual(all[1], record[0]) {
		t.Errorf("stored failure = %+v, want %+v", all[1], record[0])
	}
	if all[3].Reason != "mapping again" {
		t.Errorf("re-recorded failure has reason %q", all[3].Reason)
	}

	in, err := s.Failures(&inbox)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(in), []string{"d3", "d4", "d1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Failures(inbox) = %v, want %v", got, want)
	}
	msgs, err := s.FailedMessageIDs(inbox)
	if err != nil || !reflect.DeepEqual(msgs, map[string]bool{"m1": true, "m2": true}) {
		t.Errorf("FailedMessageIDs(inbox) = %v, %v", msgs, err)
	}

	if err := s.ClearFailure("d3"); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearFailure("never-failed"); err != nil {
		t.Errorf("ClearFailure of an absent id: %v", err)
	}
	msgs, err = s.FailedMessageIDs(inbox)
	if err != nil || !reflect.DeepEqual(msgs, map[string]bool{"m1": true}) {
		t.Errorf("FailedMessageIDs(inbox) after clear = %v, %v", msgs, err)
	}
	none, err := s.Failures(&Key{"x@example.com", "INBOX"})
	if err != nil || len(none) != 0 {
		t.Errorf("Failures of a key without failures = %v, %v", none, err)
	}
}

func TestRecordFailureRejectsInvalid(t *testing.T) {
	s := openTemp(t)
	cases := map[string]Failure{
		"empty doc id":  {Key: Key{"a@example.com", "INBOX"}},
		"empty mailbox": {Key: Key{"", "INBOX"}, DocID: "d"},
		"empty view":    {Key: Key{"a@example.com", ""}, DocID: "d"},
	}
	for name, f := range cases {
		if err := s.RecordFailure(f); err == nil {
			t.Errorf("%s: RecordFailure succeeded", name)
		}
	}
	if err := s.ClearFailure(""); err == nil {
		t.Error("ClearFailure(\"\") succeeded")
	}
}

func TestRecordFailureCapsReason(t *testing.T) {
	s := openTemp(t)
	// 3-byte characters do not divide MaxReasonBytes, so the cut must back off.
	long := strings.Repeat("€", MaxReasonBytes)
	k := Key{"a@example.com", "INBOX"}
	if err := s.RecordFailure(Failure{Key: k, DocID: "d", Reason: long}); err != nil {
		t.Fatal(err)
	}
	fs, err := s.Failures(&k)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Failures = %v, %v", fs, err)
	}
	r := fs[0].Reason
	if len(r) > MaxReasonBytes || len(r) < MaxReasonBytes-3 || !strings.HasPrefix(long, r) || strings.ContainsRune(r, '\uFFFD') {
		t.Errorf("capped reason has %d bytes and is not a clean prefix", len(r))
	}
}

func TestRunsKeepsNewest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	const added = KeptRuns + 13
	for i := range added {
		if err := s.AddRun(RunRecord{Command: "crawl", ExitCode: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)

	all, err := s.Runs(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != KeptRuns {
		t.Fatalf("Runs(0) returned %d summaries, want %d", len(all), KeptRuns)
	}
	for i, r := range all {
		if want := added - 1 - i; r.ExitCode != want {
			t.Fatalf("Runs(0)[%d] is run %d, want %d", i, r.ExitCode, want)
		}
	}
	three, err := s.Runs(3)
	if err != nil || len(three) != 3 || three[0].ExitCode != added-1 {
		t.Errorf("Runs(3) = %+v, %v", three, err)
	}

	// Old summaries are deleted, not only hidden.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketRuns).Stats().KeyN; n != KeptRuns {
			t.Errorf("runs bucket holds %d keys, want %d", n, KeptRuns)
		}
		return nil
	})
}

func TestRunsOfNewStore(t *testing.T) {
	runs, err := openTemp(t).Runs(5)
	if err != nil || len(runs) != 0 {
		t.Errorf("Runs of a new store = %+v, %v", runs, err)
	}
}

func TestFullSinceAndFullDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openAt(t, path)
	if _, ok, err := s.FullSince(); ok || err != nil {
		t.Fatalf("new file: pending full re-crawl %v, %v", ok, err)
	}
	since := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := s.SetFullSince(since); err != nil {
		t.Fatal(err)
	}
	k := Key{Mailbox: "a@x.com", View: "INBOX"}
	done := since.Add(time.Minute)
	if err := s.Commit(map[Key]Position{k: {Token: done, FullDone: done}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openAt(t, path)
	defer s.Close()
	got, ok, err := s.FullSince()
	if err != nil || !ok || !got.Equal(since) {
		t.Errorf("after reopen: full since %v %v %v, want %v", got, ok, err, since)
	}
	if p, _, _ := s.Position(k); !p.FullDone.Equal(done) {
		t.Errorf("FullDone %v, want %v", p.FullDone, done)
	}
	if err := s.SetFullSince(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.FullSince(); ok {
		t.Errorf("cleared full re-crawl still pending")
	}
}

func TestReadOnlyOpenOfEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("read-only open of an empty file: %v; want an error naming the file as empty", err)
	}
	s, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("a writer must initialise an empty file: %v", err)
	}
	s.Close()
}

// A run stopped after bbolt created the file but before the schema was written leaves a file
// without buckets. Reading it (status, or a check while nothing was crawled) finds an empty
// state, not a damaged one, and the next run initialises it.
func TestFileWithoutBucketsReadsAsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, Options{ReadOnly: true, LockTimeout: testLock})
	if err != nil {
		t.Fatalf("read-only open of a file without buckets: %v", err)
	}
	pos, err := r.Positions()
	if err != nil || len(pos) != 0 {
		t.Errorf("positions = %v, %v; want none", pos, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	w := openAt(t, path)
	if err := w.Commit(map[Key]Position{{"a@example.com", "INBOX"}: {Token: day(1)}}); err != nil {
		t.Errorf("commit after initialising: %v", err)
	}
}
