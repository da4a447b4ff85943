package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// archive describes one simulated archive: mailboxes × perMailbox messages.
type archive struct {
	Seed       int64
	Mailboxes  int
	PerMailbox int
	RateLimit  int // requests per minute, 0 = unlimited
}

func (a archive) messages() int { return a.Mailboxes * a.PerMailbox }

// archiveFor spreads total messages over mailboxes (rounding up, so at least total).
func archiveFor(seed int64, mailboxes, total int) archive {
	per := (total + mailboxes - 1) / mailboxes
	return archive{Seed: seed, Mailboxes: mailboxes, PerMailbox: max(per, 1)}
}

// sim is a running bin/mimecast-sim. It runs as a child process so that its CPU time is its
// own and does not blur the crawler's or this program's.
type sim struct {
	cmd  *exec.Cmd
	url  string
	http *http.Client
	dir  string
	done chan error
}

func startSim(ctx context.Context, bin string, a archive, dir string) (*sim, error) {
	ready := filepath.Join(dir, "sim.ready")
	_ = os.Remove(ready)
	args := []string{"--addr", "127.0.0.1:0", "--ready-file", ready, "--log-level", "warn",
		"--seed", strconv.FormatInt(a.Seed, 10), "--mailboxes", strconv.Itoa(a.Mailboxes),
		"--messages", strconv.Itoa(a.PerMailbox), "--rate-limit", strconv.Itoa(a.RateLimit)}
	logf, err := os.Create(filepath.Join(dir, "sim.log"))
	if err != nil {
		return nil, fmt.Errorf("create simulator log: %w", err)
	}
	cmd := exec.Command(filepath.Join(bin, "mimecast-sim"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start simulator %s: %w", cmd.Path, err)
	}
	s := &sim{cmd: cmd, http: &http.Client{Timeout: 10 * time.Minute}, dir: dir, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(ready)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			s.url = "http://" + string(bytes.TrimSpace(b))
			return s, nil
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("simulator exited before listening (%v); see %s", err, filepath.Join(dir, "sim.log"))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("simulator did not listen within 30s; see %s", filepath.Join(dir, "sim.log"))
		}
	}
}

func (s *sim) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// cpu returns the user+system CPU seconds the simulator has used so far.
func (s *sim) cpu() float64 { return procCPU(s.cmd.Process.Pid) }

func (s *sim) stats(ctx context.Context) (simulator.Stats, error) {
	var st simulator.Stats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/_sim/stats", nil)
	resp, err := s.http.Do(req)
	if err != nil {
		return st, fmt.Errorf("read simulator stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("decode simulator stats: %w", err)
	}
	return st, nil
}

func (s *sim) resetStats(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, s.url+"/_sim/stats", nil)
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("reset simulator stats: %w", err)
	}
	resp.Body.Close()
	return nil
}

// apiCounts sums the /api/ requests of a stats snapshot: those the rate limit applies to.
type apiCounts struct {
	Admitted int64 `json:"admitted"` // answered with anything but 429
	Limited  int64 `json:"rate_limited"`
	Lists    int64 `json:"list_calls"`
}

func countAPI(st simulator.Stats) apiCounts {
	var c apiCounts
	for path, byStatus := range st.Requests {
		if !strings.HasPrefix(path, "/api/") {
			continue
		}
		for status, n := range byStatus {
			if status == http.StatusTooManyRequests {
				c.Limited += n
			} else {
				c.Admitted += n
				if path == pathList {
					c.Lists += n
				}
			}
		}
	}
	return c
}

// Paths of the simulator's counters that classify requests. Enumeration and listing are
// per mailbox, not per message; everything else under /api/ and every download serves one
// message (its detail, its RFC 822 file, a part of it).
const (
	pathList     = "/api/archive/get-message-list"
	pathGetFile  = "/api/archive/get-file"
	pathDownload = "/_download"
)

var enumerationPrefixes = []string{"/api/domain/", "/api/user/"}

// requestCounts is what one crawl asked of the simulator.
type requestCounts struct {
	apiCounts
	// Enumeration counts admitted calls of the domain and user enumeration.
	Enumeration int64 `json:"enumeration_calls"`
	// PerMessage counts requests of any status on the per-message paths (API calls and
	// downloads): the requests a message waits for one after the other.
	PerMessage int64 `json:"per_message_requests"`
	// GetFile counts answered get-file calls: one per message fetched.
	GetFile int64 `json:"get_file_calls"`
	// ByPath counts requests of any status by path (downloads as "/_download").
	ByPath map[string]int64 `json:"by_path"`
}

func classify(st simulator.Stats) requestCounts {
	c := requestCounts{apiCounts: countAPI(st), ByPath: map[string]int64{}}
	for path, byStatus := range st.Requests {
		var all, admitted int64
		for status, n := range byStatus {
			all += n
			if status != http.StatusTooManyRequests {
				admitted += n
			}
		}
		c.ByPath[path] = all
		switch {
		case path == pathList:
		case hasAnyPrefix(path, enumerationPrefixes):
			c.Enumeration += admitted
		case path == pathDownload || strings.HasPrefix(path, "/api/"):
			c.PerMessage += all
			if path == pathGetFile {
				c.GetFile += byStatus[http.StatusOK]
			}
		}
	}
	return c
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// setLatency adds ms milliseconds to every request the simulator answers (the token
// endpoint, /api/ and downloads; the control API never waits), or clears it with 0.
func (s *sim) setLatency(ctx context.Context, ms int) error {
	method, body := http.MethodPut, []byte(fmt.Sprintf(`[{"path_prefix":"/","latency_ms":%d}]`, ms))
	if ms == 0 {
		method, body = http.MethodDelete, nil
	}
	return s.faults(ctx, method, body, "set simulator latency")
}

// faults sends one request to the simulator's fault API (PUT replaces the faults, DELETE
// clears them); what names the step in an error.
func (s *sim) faults(ctx context.Context, method string, body []byte, what string) error {
	req, _ := http.NewRequestWithContext(ctx, method, s.url+"/_sim/faults", bytes.NewReader(body))
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("%s: status %d: %s", what, resp.StatusCode, msg)
	}
	return nil
}

// procCPU reads utime+stime of a process from /proc, in seconds; 0 where /proc is missing.
// Linux reports them in clock ticks of USER_HZ, which is 100 on every common platform.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis
	// start with field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// machineCPU returns the busy CPU seconds of the whole machine so far (all CPUs, from
// /proc/stat), or 0 where /proc is missing. Minus the CPU of the processes of a run, it shows
// how much other work shared the machine meanwhile.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		// idle (4th) and iowait (5th) are not busy; guest time is already in user time.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return busy / 100
}
