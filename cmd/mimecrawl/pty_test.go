package main

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// screen is the small part of a VT100 that mimecrawl's output uses: printable characters with
// auto-wrap at the right margin, CR, LF, and CSI sequences of which EL (erase in line, "K") acts
// and the rest (colours) are ignored. It records every wrap, with the row that overflowed.
type screen struct {
	width    int
	rows     [][]rune
	row, col int
	wraps    []string
}

func newScreen(width int) *screen { return &screen{width: width, rows: [][]rune{nil}} }

func (s *screen) put(r rune) {
	if s.col >= s.width {
		s.wraps = append(s.wraps, string(s.rows[s.row]))
		s.newline()
		s.col = 0
	}
	line := s.rows[s.row]
	for len(line) <= s.col {
		line = append(line, ' ')
	}
	line[s.col] = r
	s.rows[s.row] = line
	s.col++
}

func (s *screen) newline() {
	s.row++
	if s.row == len(s.rows) {
		s.rows = append(s.rows, nil)
	}
}

func (s *screen) feed(b []byte) {
	for len(b) > 0 {
		switch b[0] {
		case '\r':
			s.col = 0
			b = b[1:]
			continue
		case '\n':
			s.newline()
			b = b[1:]
			continue
		case 0x1b:
			if len(b) > 1 && b[1] == '[' {
				i := 2
				for i < len(b) && (b[i] < 0x40 || b[i] > 0x7e) {
					i++
				}
				if i < len(b) && b[i] == 'K' && (i == 2 || string(b[2:i]) == "0") {
					if s.col < len(s.rows[s.row]) {
						s.rows[s.row] = s.rows[s.row][:s.col]
					}
				}
				b = b[min(i+1, len(b)):]
				continue
			}
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r < 0x20 {
			continue
		}
		s.put(r)
	}
}

func (s *screen) lines() []string {
	out := make([]string, len(s.rows))
	for i, r := range s.rows {
		out[i] = strings.TrimRight(string(r), " ")
	}
	return out
}

var (
	frameRe     = regexp.MustCompile(`^\d[\dhms.]*\s+(views|listing)`)
	frameNums   = regexp.MustCompile(`views (\d+)/(\d+) .*messages (\d+) `)
	cutNumber   = regexp.MustCompile(`[\d(.]…$`)
	quotaWaitRe = regexp.MustCompile(`quota wait \d+×429`)
	sumViews    = regexp.MustCompile(`views\s+(\d+) complete, (\d+) failed, (\d+) interrupted`)
	sumMsgs     = regexp.MustCompile(`messages\s+(\d+) indexed`)
)

// TestProgressOnAPseudoTerminal runs a crawl under a pseudo-terminal 80 and 200 columns wide,
// with info logs on and a 429 that holds the quota for a while, and reads the screen as a
// terminal would show it: no progress line wraps, exactly one progress line is left (the last
// frame, just above the summary), log lines stand on their own rows, the enumeration and the
// quota wait were shown, and the last frame's counts are the summary's.
func TestProgressOnAPseudoTerminal(t *testing.T) {
	for _, width := range []int{80, 200} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			w := newProcWorld(t, procOptions{sim: simulator.Options{Seed: 8, Domains: 1, Mailboxes: 2, Messages: 4}})
			// A run of 429s with a wait hint, which the client takes for the quota (one 429
			// alone is sporadic and holds only its own call): it then spaces every call by the
			// hint for a while (see the mimecast pacer), so the hint is short and the archive
			// small.
			w.sim.SetFaults([]simulator.Fault{
				{PathPrefix: "/api/archive/get-message-list", Status: 429, Count: 8, ResetMS: 300},
			})
			cmd := exec.Command(w.bin, "crawl", "--config", w.config, "--log-level", "info")
			cmd.Env = append(childEnv(), "TERM=xterm")
			f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(width), Rows: 60})
			if err != nil {
				t.Fatalf("start under a pty: %v", err)
			}
			var raw bytes.Buffer
			done := make(chan error, 1)
			go func() {
				_, err := io.Copy(&raw, f)
				done <- err
			}()
			select {
			case <-done: // EIO once the child has exited and closed its side
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("crawl did not end\n%s", raw.String())
			}
			f.Close()
			var ee *exec.ExitError
			if err := cmd.Wait(); err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if code := cmd.ProcessState.ExitCode(); code != exitOK {
				t.Fatalf("crawl exit %d\n%s", code, raw.String())
			}

			scr := newScreen(width)
			scr.feed(raw.Bytes())
			for _, row := range scr.wraps {
				if frameRe.MatchString(row) {
					t.Errorf("a progress line wrapped at %d columns: %q", width, row)
				}
			}
			lines := scr.lines()
			var frames []int
			summaryAt := -1
			for i, l := range lines {
				if frameRe.MatchString(l) {
					frames = append(frames, i)
				}
				if strings.Contains(l, "views ") && (strings.Contains(l, " INF ") || strings.Contains(l, " WRN ")) {
					t.Errorf("a log line and the progress share a row: %q", l)
				}
				if strings.HasPrefix(l, "mimecrawl crawl summary") {
					summaryAt = i
				}
			}
			if len(frames) != 1 {
				t.Fatalf("%d progress lines left on the screen, want 1 (the last frame):\n%s", len(frames), strings.Join(lines, "\n"))
			}
			last := lines[frames[0]]
			if summaryAt < 0 || frames[0] > summaryAt || strings.TrimSpace(strings.Join(lines[frames[0]+1:summaryAt], "")) != "" {
				t.Errorf("the last frame is not right above the summary:\n%s", strings.Join(lines, "\n"))
			}
			if !strings.Contains(strings.Join(lines, "\n"), " INF ") {
				t.Errorf("no info log line on the screen:\n%s", strings.Join(lines, "\n"))
			}

			// Every frame drawn, from the byte stream: the enumeration was shown, and so was
			// the wait for the quota.
			stream := raw.String()
			if !strings.Contains(stream, "listing domains and mailboxes") {
				t.Error("no frame showed the enumeration")
			}
			if !strings.Contains(stream, "  ETA ") {
				t.Error("no frame showed an ETA")
			}
			if !quotaWaitRe.MatchString(stream) {
				t.Error("no frame showed the wait for the quota")
			}
			// Cut to the width, a frame ends at a whole field: never inside a number.
			for _, fr := range strings.Split(stream, clearLine) {
				fr, _, _ = strings.Cut(fr, "\r")
				if frameRe.MatchString(fr) && cutNumber.MatchString(fr) {
					t.Errorf("a frame cuts a number at %d columns: %q", width, fr)
				}
			}

			fm := frameNums.FindStringSubmatch(last)
			text := strings.Join(lines[summaryAt:], "\n")
			sv, sm := sumViews.FindStringSubmatch(text), sumMsgs.FindStringSubmatch(text)
			if fm == nil || sv == nil || sm == nil {
				t.Fatalf("cannot read the counts: frame %q\n%s", last, text)
			}
			// The last frame counts the views as the summary does: complete of all there were.
			views := atoi(sv[1]) + atoi(sv[2]) + atoi(sv[3])
			if atoi(fm[1]) != atoi(sv[1]) || atoi(fm[2]) != views || fm[3] != sm[1] || !strings.Contains(last, " complete") {
				t.Errorf("last frame %q disagrees with the summary: views %d, messages %s", last, views, sm[1])
			}
		})
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
