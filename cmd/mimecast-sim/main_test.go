package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeAndShutdown(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	addrs := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--ready-file", ready, "--seed", "3", "--messages", "2", "--log-level", "debug", "--client-secret", "s3cret-value"},
			&stdout, &stderr, func(a string) { addrs <- a })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case code := <-done:
		t.Fatalf("exited early with %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(ready)
	if err != nil || strings.TrimSpace(string(b)) != addr {
		t.Errorf("ready file %q (%v), want %s", b, err, addr)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"demo-client"}, "client_secret": {"s3cret-value"}}
	resp, err := http.PostForm("http://"+addr+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token: %d", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
	logs := stderr.String()
	if !strings.Contains(stdout.String(), addr) || !strings.Contains(logs, `"message":"listening"`) || !strings.Contains(logs, `"path":"/oauth/token"`) {
		t.Errorf("stdout %q logs %s", stdout.String(), logs)
	}
	if strings.Contains(logs, "s3cret-value") || strings.Contains(logs, tok.AccessToken) {
		t.Error("a secret or token reached the log")
	}
	if _, err := os.Stat(ready); !os.IsNotExist(err) {
		t.Error("ready file left behind")
	}
}

func TestBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"--nope"}},
		{"bad header mode", []string{"--ratelimit-headers", "sometimes"}},
		{"bad log level", []string{"--log-level", "loud"}},
		{"bad epoch", []string{"--epoch", "yesterday"}},
		{"extra argument", []string{"serve"}},
		{"bad-records above 1", []string{"--bad-records", "2"}},
		{"bad-records not a number", []string{"--bad-records", "some"}},
		{"negative alerts", []string{"--alerts", "-1"}},
		{"alert span too long", []string{"--alerts", "3", "--alerts-span", "200h"}},
		{"count without a number", []string{"--count", "audit"}},
		{"negative count", []string{"--count", "audit=-2"}},
		{"count of an unknown source", []string{"--count", "bogus=3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errb, nil); code != exitUsage {
				t.Errorf("exit %d, want %d (%s)", code, exitUsage, errb.String())
			}
		})
	}
}

func TestShapeVariantFlags(t *testing.T) {
	c, err := parseFlags([]string{"--shape-variants", "--bad-records", "0.05"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.opts.ShapeVariants || c.opts.BadRecords != 0.05 {
		t.Errorf("options %+v: want shape variants on and bad records 0.05", c.opts)
	}
	if c, _ := parseFlags(nil, io.Discard); c.opts.ShapeVariants || c.opts.BadRecords != 0 {
		t.Errorf("defaults %+v: want variants off, no bad records", c.opts)
	}
}

func TestCountFlag(t *testing.T) {
	c, err := parseFlags([]string{"--alerts", "4", "--count", "audit=7", "--count", "attachment_protection=0", "--count", "siem_ci=2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.New(c.opts)
	if err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]int{"audit": 7, "attachment_protection": 0, "url_protection": 4, "siem_ci": 2} {
		if n := len(sim.AlertTruth(src)); n != want {
			t.Errorf("%s: %d seeded records, want %d", src, n, want)
		}
	}
}
