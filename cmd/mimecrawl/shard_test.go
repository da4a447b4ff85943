package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// shardConfigs writes one config per shard, the same as w.config but with a state file of its
// own, as docs/deploy.md tells: same index prefix, separate state.
func shardConfigs(t *testing.T, w *procWorld, n int) (configs, states []string) {
	t.Helper()
	data, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		st := filepath.Join(w.dir, fmt.Sprintf("state-%d.db", i))
		cfg := strings.Replace(string(data), "  path: "+w.state+"\n", "  path: "+st+"\n", 1)
		if cfg == string(data) {
			t.Fatal("the test config has no state path line to replace")
		}
		cfg = strings.Replace(cfg, "safety:\n", "", 1) + "safety:\n  max_mailbox_removal_ratio: 1\n"
		path := filepath.Join(w.dir, fmt.Sprintf("config-%d.yaml", i))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		configs, states = append(configs, path), append(states, st)
	}
	return configs, states
}

func stateMailboxes(t *testing.T, path string) []string {
	t.Helper()
	st, err := state.Open(path, state.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := st.Mailboxes()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// runShard runs `mimecrawl crawl` as shard i of n with that shard's config.
func runShard(t *testing.T, w *procWorld, config string, i, n int) {
	t.Helper()
	saved := w.config
	w.config = config
	defer func() { w.config = saved }()
	code, p := w.runToEnd("crawl", "--shard", fmt.Sprintf("%d/%d", i, n))
	if code != exitOK {
		t.Fatalf("shard %d/%d: exit %d\n%s", i, n, code, p.tail(30))
	}
	if out, _ := os.ReadFile(p.log); !strings.Contains(string(out), fmt.Sprintf(`"shard":"%d/%d"`, i, n)) {
		t.Errorf("the summary of shard %d/%d does not name it:\n%s", i, n, out)
	}
}

// TestThreeShardsCrawlExactlyTheTruth: three shards, each with its own state file, crawl one
// archive into one index: the index equals the truth, no mailbox is crawled by two shards, and
// after a mailbox is removed upstream only its own shard removes its documents.
func TestThreeShardsCrawlExactlyTheTruth(t *testing.T) {
	const n = 3
	w := newProcWorld(t, procOptions{sim: simulator.Options{Seed: 12, Domains: 2, Mailboxes: 9, Messages: 5}})
	configs, states := shardConfigs(t, w, n)
	for i := range n {
		runShard(t, w, configs[i], i, n)
	}
	ex := w.expect()
	got := w.indexed()
	for id := range ex.messages {
		if got.messages[id] != 1 {
			t.Errorf("message %s indexed %d times, want once", id, got.messages[id])
		}
	}
	for id := range ex.attachments {
		if got.attachments[id] != 1 {
			t.Errorf("attachment %s indexed %d times, want once", id, got.attachments[id])
		}
	}
	if len(got.messages) != len(ex.messages) || len(got.attachments) != len(ex.attachments) {
		t.Errorf("index holds %d messages and %d attachments; the truth %d and %d",
			len(got.messages), len(got.attachments), len(ex.messages), len(ex.attachments))
	}

	owner := map[string]int{}
	var union []string
	for i := range n {
		for _, m := range stateMailboxes(t, states[i]) {
			if j, dup := owner[m]; dup {
				t.Errorf("mailbox %s crawled by shards %d and %d", m, j, i)
			}
			owner[m] = i
			union = append(union, m)
			if s := (crawler.Shard{Index: i, Count: n}); !s.Owns(m) {
				t.Errorf("shard %d crawled %s, which it does not own", i, m)
			}
		}
	}
	var all []string
	for _, em := range ex.messages {
		if !slices.Contains(all, em.key.Mailbox) {
			all = append(all, em.key.Mailbox)
		}
	}
	sort.Strings(all)
	sort.Strings(union)
	for _, m := range all {
		if _, ok := owner[m]; !ok {
			t.Errorf("mailbox %s (with messages) crawled by no shard", m)
		}
	}
	per := make([]int, n)
	for _, i := range owner {
		per[i]++
	}
	for i, c := range per {
		if c == 0 {
			t.Logf("shard %d owns no mailbox with this seed", i)
		}
	}

	// A mailbox disappears upstream: the other shards run first and must leave its documents,
	// then its own shard removes them.
	gone := all[0]
	g := owner[gone]
	docs := func() int {
		c := 0
		for id, em := range ex.messages {
			if em.key.Mailbox == gone {
				c += w.indexed().messages[id]
			}
		}
		return c
	}
	before := docs()
	if before == 0 {
		t.Fatalf("no document of %s indexed", gone)
	}
	if err := w.sim.DeleteMailbox(gone); err != nil {
		t.Fatal(err)
	}
	whole := w.indexed()
	for i := range n {
		if i == g {
			continue
		}
		runShard(t, w, configs[i], i, n)
		if got := docs(); got != before {
			t.Errorf("shard %d (not the owner %d) changed the documents of the removed mailbox %s: %d, had %d", i, g, gone, got, before)
		}
	}
	after := w.indexed()
	for id, c := range whole.messages {
		if after.messages[id] != c {
			t.Errorf("a shard that does not own it changed message %s: %d → %d", id, c, after.messages[id])
		}
	}
	runShard(t, w, configs[g], g, n)
	if got := docs(); got != 0 {
		t.Errorf("the owning shard %d left %d documents of the removed mailbox %s", g, got, gone)
	}
	if slices.Contains(stateMailboxes(t, states[g]), gone) {
		t.Errorf("shard %d still knows %s", g, gone)
	}
	final := w.indexed()
	for id, em := range ex.messages {
		if em.key.Mailbox != gone && final.messages[id] != 1 {
			t.Errorf("message %s of a kept mailbox indexed %d times after the removal, want once", id, final.messages[id])
		}
	}

	// The shard count changes from 3 to 2: shard 0's state file knows mailboxes that shard 0/2
	// does not own. They now belong to another shard, which crawls them into the same index:
	// shard 0/2 must not remove them.
	moved := 0
	for _, m := range stateMailboxes(t, states[0]) {
		if !(crawler.Shard{Index: 0, Count: 2}).Owns(m) {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("with this seed no mailbox of shard 0/3 moves away in 0/2; pick another seed")
	}
	runShard(t, w, configs[0], 0, 2)
	resharded := w.indexed()
	for id, c := range final.messages {
		if resharded.messages[id] != c {
			t.Errorf("re-sharded run changed message %s: %d → %d", id, c, resharded.messages[id])
		}
	}
}

// TestShardFlags: --shard and the Indexed Job's environment give the same shard; mistakes are
// usage errors.
func TestShardFlags(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	fs, f := newFlags("crawl", io.Discard)
	if err := fs.Parse([]string{"--shards", "3"}); err != nil {
		t.Fatal(err)
	}
	s, err := resolveShard(f, env(map[string]string{envJobIndex: "2"}))
	if err != nil || s != (crawler.Shard{Index: 2, Count: 3}) {
		t.Errorf("--shards 3 with JOB_COMPLETION_INDEX=2: %v %v", s, err)
	}
	if _, err := resolveShard(f, env(nil)); err == nil {
		t.Error("--shards 3 without an index: no error")
	}
	if _, err := resolveShard(f, env(map[string]string{envJobIndex: "3"})); err == nil {
		t.Error("index 3 of 3: no error")
	}
	fs, f = newFlags("plan", io.Discard)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if s, err := resolveShard(f, env(map[string]string{envShards: "4", envJobIndex: "1"})); err != nil || s != (crawler.Shard{Index: 1, Count: 4}) {
		t.Errorf("MIMECRAWL_SHARDS=4, index 1: %v %v", s, err)
	}
	if s, err := resolveShard(f, env(map[string]string{envJobIndex: "1"})); err != nil || s.Sharded() {
		t.Errorf("an index without a count is the unsharded run: %v %v", s, err)
	}
	for _, bad := range [][]string{{"--shard", "3/3"}, {"--shard", "x"}, {"--shard", "1/2", "--shards", "3"}, {"--shard", "-1/2"}} {
		fs, f = newFlags("crawl", io.Discard)
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		if _, err := resolveShard(f, env(nil)); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	var errb strings.Builder
	if code := run([]string{"crawl", "--config", "x.yaml", "--shard", "5/2"}, io.Discard, &errb); code != exitUsage || !strings.Contains(errb.String(), "--shard") {
		t.Errorf("crawl --shard 5/2: exit %d, want %d, naming --shard: %s", code, exitUsage, errb.String())
	}
}
