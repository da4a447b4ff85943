package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// builtBinary is the mimecrawl binary that the process tests start, built once per test binary
// and removed by TestMain.
var builtBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary.dir != "" {
		os.RemoveAll(builtBinary.dir)
	}
	os.Exit(code)
}

// mimecrawlBinary builds this package into an executable (with the race detector when the tests
// run with it) and returns its path. Tests that kill the process need a process of its own.
func mimecrawlBinary(t *testing.T) string {
	t.Helper()
	builtBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "mimecrawl-bin-")
		if err != nil {
			builtBinary.err = err
			return
		}
		builtBinary.dir = dir
		builtBinary.path = filepath.Join(dir, "mimecrawl")
		args := []string{"build", "-o", builtBinary.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool(), append(args, ".")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			builtBinary.err = fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
	})
	if builtBinary.err != nil {
		t.Fatalf("build mimecrawl: %v", builtBinary.err)
	}
	return builtBinary.path
}

// goTool is the go command: go test puts the toolchain that runs the tests first on PATH.
func goTool() string { return "go" }
