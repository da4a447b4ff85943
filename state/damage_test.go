package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// damagedStore returns a Store holding 200 positions whose file is then damaged, while open, by
// damage; pageOf finds the page that holds a given key.
func damagedStore(t *testing.T, damage func(f *os.File, pageOf func(key string) int64)) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	up := make(map[Key]Position)
	for i := range 200 {
		up[Key{fmt.Sprintf("user%03d@example.com", i), "INBOX"}] = Position{Token: day(1), Indexed: int64(i)}
	}
	if err := s.Commit(up); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check of an intact file: %v", err)
	}
	pageSize := int64(s.db.Info().PageSize)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageOf := func(key string) int64 {
		i := bytes.Index(raw, []byte(key))
		if i < 0 {
			t.Fatalf("key %q not in the file", key)
		}
		return int64(i) / pageSize * pageSize
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	damage(f, pageOf)
	return s, path
}

func wantCorrupt(t *testing.T, what string, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("%s: error %v does not wrap ErrCorrupt", what, err)
		return
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("%s: error %q does not name the path", what, err)
	}
}

// TestPageDamagedMidRun: a page overwritten while the store is open (a disk error, another
// program) makes reads and commits fail with ErrCorrupt and the path, never a panic or a plain
// error, and Check lists it.
func TestPageDamagedMidRun(t *testing.T) {
	s, path := damagedStore(t, func(f *os.File, pageOf func(string) int64) {
		// The page header of the leaf that holds user100: an unknown page type.
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xEE}, 16), pageOf("user100@example.com")); err != nil {
			t.Fatal(err)
		}
	})
	_, err := s.Positions()
	wantCorrupt(t, "Positions", err, path)
	_, _, err = s.Position(Key{"user100@example.com", "INBOX"})
	wantCorrupt(t, "Position", err, path)
	err = s.Commit(map[Key]Position{{"user100@example.com", "INBOX"}: {Token: day(2)}})
	wantCorrupt(t, "Commit", err, path)
	err = s.Check()
	wantCorrupt(t, "Check", err, path)
	t.Logf("Check: %v", err)
	if err != nil && !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Check: %q does not say the file is damaged", err)
	}
}

// TestValueDamagedInPlace: bytes of a value changed under an intact page structure are found by
// Check's decoding of every record, with bucket and key.
func TestValueDamagedInPlace(t *testing.T) {
	s, path := damagedStore(t, func(f *os.File, _ func(string) int64) {
		raw, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		key := []byte("user042@example.com\x00INBOX")
		i := bytes.Index(raw, key)
		j := bytes.Index(raw[i:], []byte(`"v":1`))
		if i < 0 || j < 0 {
			t.Fatal("value not found")
		}
		// Same length, so the page stays well formed; the version turns into invalid UTF-8.
		if _, err := f.WriteAt([]byte("\"\xff\":1"), int64(i+j)); err != nil {
			t.Fatal(err)
		}
	})
	err := s.Check()
	wantCorrupt(t, "Check", err, path)
	if err != nil && !strings.Contains(err.Error(), `bucket "positions" key "user042@example.com\x00INBOX"`) {
		t.Errorf("Check: %q does not name bucket and key", err)
	}
}

// TestTruncatedMidRun: a file cut short under an open store (its pages are still mapped) is
// reported, not a crash.
func TestTruncatedMidRun(t *testing.T) {
	s, path := damagedStore(t, func(f *os.File, pageOf func(string) int64) {
		if err := f.Truncate(pageOf("user100@example.com")); err != nil {
			t.Fatal(err)
		}
	})
	err := s.Check()
	wantCorrupt(t, "Check", err, path)
	if err != nil && !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Check: %q does not say the file was truncated", err)
	}
	_, err = s.Positions()
	wantCorrupt(t, "Positions", err, path)
}
