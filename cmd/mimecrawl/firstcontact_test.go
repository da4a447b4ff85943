package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/internal/job"
	"github.com/mimecrawl/mimecrawl/state"
)

// TestPlanAndStatusBeforeTheFirstCrawl: on a fresh install both answer, say that no crawl has
// run, and create nothing.
func TestPlanAndStatusBeforeTheFirstCrawl(t *testing.T) {
	w := newWorld(t)
	code, out, logs := w.run("status")
	if code != exitOK || !strings.Contains(out, "no crawl has run yet") {
		t.Errorf("status before the first crawl: exit %d\n%s\n%s", code, out, logs)
	}
	code, out, _ = w.run("status", "--json")
	var rep job.StatusReport
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || !rep.NoCrawlYet {
		t.Errorf("status --json before the first crawl: exit %d\n%s", code, out)
	}
	code, out, logs = w.run("plan")
	if code != exitOK || !strings.Contains(out, "no crawl has run yet") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("plan before the first crawl: exit %d\n%s\n%s", code, out, logs)
	}
	code, out, logs = w.run("plan", "--json")
	var pr job.PlanReport
	if code != exitOK {
		t.Fatalf("plan --json: exit %d\n%s", code, logs)
	}
	if err := json.Unmarshal([]byte(out), &pr); err != nil {
		t.Fatalf("plan --json is not JSON: %v\n%s", err, out)
	}
	if !pr.FirstCrawl || pr.MailboxesKept != 2 || len(pr.Views) == 0 || pr.Messages == 0 {
		t.Errorf("plan --json before the first crawl: %+v", pr)
	}
	if _, err := os.Stat(w.state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plan or status created the state file: %v", err)
	}
}

// TestStatusNeedsNoCredentialsAndReadsARunningCrawlsSnapshot: status works from a config
// without any secret, and while another process holds the state file it shows the crawl's
// snapshot and says so.
func TestStatusNeedsNoCredentialsAndReadsARunningCrawlsSnapshot(t *testing.T) {
	w := newWorld(t)
	if code, out, logs := w.run("crawl"); code != exitOK {
		t.Fatalf("crawl: exit %d\n%s\n%s", code, out, logs)
	}
	data, _ := os.ReadFile(w.config)
	bare := strings.NewReplacer("  client_id: demo-client\n", "", "  client_secret: s3cr3t-value-never-printed\n", "").Replace(string(data))
	noSecrets := filepath.Join(t.TempDir(), "no-secrets.yaml")
	if err := os.WriteFile(noSecrets, []byte(bare), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--config", noSecrets}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "INBOX") {
		t.Errorf("status without credentials: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"crawl", "--config", noSecrets}, &out, &errb); code != exitFatal || !strings.Contains(errb.String(), "mimecast.client_secret") {
		t.Errorf("crawl without credentials: exit %d, want 1 naming the secret\n%s", code, errb.String())
	}

	fi, err := os.Stat(state.SnapshotPath(w.state))
	if err != nil {
		t.Fatalf("the crawl left no status snapshot: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}
	// Another process holds the file, as a running crawl does.
	held, err := state.Open(w.state, state.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	out.Reset()
	errb.Reset()
	code := run([]string{"status", "--config", noSecrets}, &out, &errb)
	if code != exitOK || !strings.Contains(out.String(), "a crawl is running") || !strings.Contains(out.String(), "snapshot") ||
		!strings.Contains(out.String(), "INBOX") || !strings.Contains(out.String(), "recent runs") {
		t.Errorf("status while the file is held: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"status", "--json", "--config", noSecrets}, &out, &errb); code != exitOK {
		t.Fatalf("status --json while held: exit %d", code)
	}
	var rep job.StatusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Snapshot == nil || rep.Snapshot.ViewsTotal == 0 ||
		rep.Snapshot.ViewsDone != rep.Snapshot.ViewsTotal || len(rep.Views) == 0 || rep.Snapshot.Age == "" {
		t.Errorf("status --json while held: %v\n%s", err, out.String())
	}
}

// TestHelpPerCommand: `help CMD` and `CMD --help` print a description, every flag the command
// takes, examples and the exit codes, and exit 0.
func TestHelpPerCommand(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{"help", c.name}, {c.name, "--help"}} {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != exitOK {
				t.Errorf("%v: exit %d\n%s", args, code, errb.String())
				continue
			}
			h := out.String()
			for _, want := range []string{"Usage:", "Flags:", "Examples:", "Exit codes:", "mimecrawl " + c.name + " --config"} {
				if !strings.Contains(h, want) {
					t.Errorf("%v lacks %q:\n%s", args, want, h)
				}
			}
			fs, _ := newFlags(c.name, &errb)
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(h, "-"+f.Name) {
					t.Errorf("%v does not list flag -%s", args, f.Name)
				}
			})
			for _, code := range c.exits {
				if !strings.Contains(h, "\n  "+string(rune('0'+code))+"  ") {
					t.Errorf("%v does not list exit code %d", args, code)
				}
			}
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"help", "nosuch"}, &out, &errb); code != exitUsage {
		t.Errorf("help nosuch: exit %d, want %d", code, exitUsage)
	}
}

// TestCheckShowsTheConfigurationAndWhatItCreated: the effective configuration with secrets
// masked, then "created" for what did not exist and "found" on the next run.
func TestCheckShowsTheConfigurationAndWhatItCreated(t *testing.T) {
	w := newWorld(t)
	code, out, logs := w.run("check")
	if code != exitOK {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, logs)
	}
	for _, want := range []string{"effective configuration", "client_secret: <secret>", "index_prefix: " + w.prefix,
		"created index " + w.prefix + "-messages", w.state + " created"} {
		if !strings.Contains(out, want) {
			t.Errorf("first check lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+logs, "s3cr3t-value-never-printed") {
		t.Error("check printed the client secret")
	}
	code, out, _ = w.run("check")
	if code != exitOK {
		t.Fatalf("second check: exit %d\n%s", code, out)
	}
	for _, want := range []string{"found index " + w.prefix + "-messages", "found template " + w.prefix + "-messages", w.state + " found"} {
		if !strings.Contains(out, want) {
			t.Errorf("second check lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "created index") {
		t.Errorf("second check says it created an index:\n%s", out)
	}
}

// TestStatusDuringARealCrawl: while a crawl process runs and holds the state file, status
// answers from the snapshot that crawl wrote at its checkpoints, naming its pid.
func TestStatusDuringARealCrawl(t *testing.T) {
	w := newProcWorld(t, procOptions{sim: simulator.Options{Seed: 5, Domains: 1, Mailboxes: 3, Messages: 40}})
	// Slow answers keep the crawl running for a while after its first checkpoints.
	w.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/archive/", LatencyMS: 60}})
	p := w.start("crawl")
	defer func() {
		if !p.exited() {
			p.kill(t)
		}
		p.wait(t)
	}()
	want := fmt.Sprintf("(pid %d holds the state file)", p.cmd.Process.Pid)
	deadline := time.Now().Add(time.Minute)
	for {
		var out, errb bytes.Buffer
		code := run([]string{"status", "--config", w.config}, &out, &errb)
		if code == exitOK && strings.Contains(out.String(), want) && strings.Contains(out.String(), "running crawl: views") {
			return
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("status never showed the running crawl's snapshot; last: exit %d\n%s\n%s\n%s", code, out.String(), errb.String(), p.tail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAfterCheckNoCrawlHasRunYet: `check` creates the state file (step 4 of docs/deploy.md);
// status and plan still say that no crawl has run, status --json has [] where lists belong,
// and plan names every view's pass "first". After a crawl, plan says "incremental".
func TestAfterCheckNoCrawlHasRunYet(t *testing.T) {
	w := newWorld(t)
	if code, out, logs := w.run("check"); code != exitOK {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, logs)
	}
	if _, err := os.Stat(w.state); err != nil {
		t.Fatalf("check created no state file: %v", err)
	}
	code, out, logs := w.run("status")
	if code != exitOK || !strings.Contains(out, "no crawl has run yet") {
		t.Errorf("status after check: exit %d\n%s\n%s", code, out, logs)
	}
	code, out, _ = w.run("status", "--json")
	var raw map[string]json.RawMessage
	if code != exitOK || json.Unmarshal([]byte(out), &raw) != nil {
		t.Fatalf("status --json after check: exit %d\n%s", code, out)
	}
	for _, k := range []string{"views", "failures", "runs"} {
		if string(raw[k]) != "[]" {
			t.Errorf("status --json %s = %s, want []", k, raw[k])
		}
	}
	if string(raw["no_crawl_yet"]) != "true" {
		t.Errorf("status --json no_crawl_yet = %s, want true", raw["no_crawl_yet"])
	}
	code, out, logs = w.run("plan", "--json")
	var pr job.PlanReport
	if code != exitOK || json.Unmarshal([]byte(out), &pr) != nil {
		t.Fatalf("plan --json after check: exit %d\n%s\n%s", code, out, logs)
	}
	if !pr.FirstCrawl || len(pr.Views) == 0 {
		t.Errorf("plan --json after check: first_crawl %v, %d views", pr.FirstCrawl, len(pr.Views))
	}
	for _, v := range pr.Views {
		if v.Pass != "first" {
			t.Errorf("plan before the first crawl: %s %s pass %q, want first", v.Mailbox, v.View, v.Pass)
		}
	}
	if code, out, logs := w.run("crawl"); code != exitOK {
		t.Fatalf("crawl: exit %d\n%s\n%s", code, out, logs)
	}
	code, out, _ = w.run("plan", "--json")
	pr = job.PlanReport{}
	if code != exitOK || json.Unmarshal([]byte(out), &pr) != nil {
		t.Fatalf("plan --json after a crawl: exit %d\n%s", code, out)
	}
	for _, v := range pr.Views {
		if pr.FirstCrawl || v.Pass != "incremental" {
			t.Errorf("plan after a crawl: first_crawl %v, %s %s pass %q, want incremental", pr.FirstCrawl, v.Mailbox, v.View, v.Pass)
		}
	}
}

// TestPlanWhileACrawlHoldsTheStateFile: plan reads what status reads, the running crawl's
// snapshot, and plans from the positions in it (the same windows as from the file itself).
func TestPlanWhileACrawlHoldsTheStateFile(t *testing.T) {
	w := newWorld(t)
	if code, out, logs := w.run("crawl"); code != exitOK {
		t.Fatalf("crawl: exit %d\n%s\n%s", code, out, logs)
	}
	code, out, logs := w.run("plan", "--json")
	var free job.PlanReport
	if code != exitOK || json.Unmarshal([]byte(out), &free) != nil {
		t.Fatalf("plan with the file free: exit %d\n%s\n%s", code, out, logs)
	}
	held, err := state.Open(w.state, state.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	code, out, logs = w.run("plan", "--json")
	var snap job.PlanReport
	if code != exitOK || json.Unmarshal([]byte(out), &snap) != nil {
		t.Fatalf("plan while the file is held: exit %d\n%s\n%s", code, out, logs)
	}
	if snap.Snapshot == nil || snap.FirstCrawl || len(snap.Views) != len(free.Views) {
		t.Fatalf("plan while held: snapshot %v, first %v, %d views (want %d)", snap.Snapshot, snap.FirstCrawl, len(snap.Views), len(free.Views))
	}
	for i, v := range snap.Views {
		f := free.Views[i]
		if v.Mailbox != f.Mailbox || v.View != f.View || v.Pass != f.Pass || !v.From.Equal(f.From) {
			t.Errorf("plan from the snapshot %+v, from the file %+v", v, f)
		}
	}
	code, out, _ = w.run("plan")
	if code != exitOK || !strings.Contains(out, "a crawl is running") {
		t.Errorf("plan text while held: exit %d\n%s", code, out)
	}
}
