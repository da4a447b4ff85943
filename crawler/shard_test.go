package crawler

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mimecrawl/mimecrawl/state"
)

func TestShardsPartitionTheMailboxes(t *testing.T) {
	const n = 3
	count := make([]int, n)
	for i := range 3000 {
		addr := fmt.Sprintf("user%d@example.com", i)
		owners := 0
		for s := range n {
			sh := Shard{Index: s, Count: n}
			if sh.Owns(addr) {
				owners++
				count[s]++
			}
			if sh.Owns(addr) != sh.Owns("USER"+addr[4:]) {
				t.Fatalf("%s: ownership depends on case", addr)
			}
		}
		if owners != 1 {
			t.Fatalf("%s owned by %d shards, want exactly 1", addr, owners)
		}
		if !(Shard{}).Owns(addr) {
			t.Fatalf("the unsharded run does not own %s", addr)
		}
	}
	for s, c := range count {
		// A hash that sent everything one way would make sharding pointless.
		if c < 800 || c > 1200 {
			t.Errorf("shard %d owns %d of 3000 mailboxes; want about 1000", s, c)
		}
	}
}

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"0/1": {0, 1}, "2/3": {2, 3}, " 1 / 4 ": {1, 4}} {
		if got, err := ParseShard(in); err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "3", "3/3", "-1/3", "a/3", "1/0", "1/b", "0/100000"} {
		if _, err := ParseShard(in); err == nil {
			t.Errorf("ParseShard(%q): no error", in)
		}
	}
}

// TestPlanRemovalNeverTakesAnotherShardsMailbox: mailboxes of the state file that another shard
// owns are neither gone nor counted by the guard.
func TestPlanRemovalNeverTakesAnotherShardsMailbox(t *testing.T) {
	sh := Shard{Index: 0, Count: 2}
	var mine, theirs []string
	for i := 0; len(mine) < 4 || len(theirs) < 4; i++ {
		a := fmt.Sprintf("m%d@example.com", i)
		if sh.Owns(a) {
			mine = append(mine, a)
		} else {
			theirs = append(theirs, a)
		}
	}
	mine, theirs = mine[:4], theirs[:4]
	st := newFakeStore()
	for _, m := range append(slices.Clone(mine), theirs...) {
		st.pos[state.Key{Mailbox: m, View: "INBOX"}] = state.Position{}
	}
	kept := []Mailbox{{Address: mine[0]}, {Address: mine[1]}, {Address: mine[2]}}
	r, err := PlanRemoval(st, kept, sh, 0.25, false)
	if err != nil {
		t.Fatalf("1 of this shard's 4 mailboxes gone (25%%) was refused: %v", err)
	}
	if !slices.Equal(r.Gone, []string{mine[3]}) {
		t.Errorf("gone %v, want only %s", r.Gone, mine[3])
	}
	if len(r.Known) != 4 || len(r.OtherShards) != 4 {
		t.Errorf("known %v, other shards %v; want 4 and 4", r.Known, r.OtherShards)
	}
	// The guard's ratio is per shard: 2 of this shard's 4 is more than 25%.
	if _, err := PlanRemoval(st, kept[:2], sh, 0.25, false); !errors.Is(err, ErrRemovalRefused) {
		t.Errorf("2 of 4 gone with ratio 0.25: %v, want refused", err)
	}
	// Even with nothing kept and mass removal allowed, another shard's mailbox is not gone.
	r, _ = PlanRemoval(st, nil, sh, 1, true)
	for _, g := range r.Gone {
		if !sh.Owns(g) {
			t.Errorf("%s of another shard would be removed", g)
		}
	}
	// A mailbox the rules keep but another shard owns is not kept by this one.
	rules := Rules{Shard: sh}
	if d := rules.MailboxDecision(theirs[0]); d.Kept {
		t.Errorf("%s of another shard kept: %+v", theirs[0], d)
	}
	if d := rules.MailboxDecision(mine[0]); !d.Kept {
		t.Errorf("%s of this shard not kept: %+v", mine[0], d)
	}
}
