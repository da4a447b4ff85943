package state

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// createChildEnv names the file a child process of TestCreateFailureLeavesNoFile opens.
const createChildEnv = "MIMECRAWL_STATE_CREATE_CHILD"

// A write that fails while a new state file is being made (a full disk; here the file size
// limit, which fails writes with EFBIG the way a full disk fails them with ENOSPC) leaves no
// file behind: neither an empty state file, which a reader would take for damage, nor a
// half-made temporary one. The limit applies to a whole process, so a child does the open.
func TestCreateFailureLeavesNoFile(t *testing.T) {
	if path := os.Getenv(createChildEnv); path != "" {
		// The child: writes beyond the limit fail instead of raising SIGXFSZ.
		signal.Ignore(syscall.SIGXFSZ)
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 0, Max: 0}); err != nil {
			os.Stderr.WriteString("setrlimit: " + err.Error())
			os.Exit(2)
		}
		s, err := Open(path, Options{LockTimeout: testLock})
		if err == nil {
			s.Close()
			os.Stderr.WriteString("open succeeded")
			os.Exit(3)
		}
		os.Stderr.WriteString(err.Error())
		os.Exit(0)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db.alerts")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCreateFailureLeavesNoFile$")
	cmd.Env = append(os.Environ(), createChildEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), path) {
		t.Errorf("the error does not name the file: %s", out)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, _ := e.Info()
		t.Errorf("a failed creation left %s (%d bytes)", e.Name(), info.Size())
	}

	// Without the limit the same path is created as usual.
	s := openAt(t, path)
	if err := s.SetCursors(map[string]string{"alerts/x": "1"}); err != nil {
		t.Fatal(err)
	}
}

// An empty file (left by an older mimecrawl that ran out of disk while creating it) is not
// damage: a reader is told there is nothing yet (ErrEmpty), a writer initialises it.
func TestEmptyFileIsNotDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db.alerts")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrEmpty) || errors.Is(err, ErrCorrupt) {
		t.Errorf("read-only open of an empty file: %v; want ErrEmpty", err)
	}
	s := openAt(t, path)
	if err := s.SetCursors(map[string]string{"alerts/x": "1"}); err != nil {
		t.Fatal(err)
	}
}
