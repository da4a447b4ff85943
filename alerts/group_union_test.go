package alerts

import (
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"
)

// unionByMap is union without its shortcut: the union, sorted, cut to max.
func unionByMap(cur, add []string, max int) ([]string, bool) {
	seen := map[string]bool{}
	out := []string{}
	for _, v := range slices.Concat(cur, add) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	if len(out) > max {
		return out[:max], true
	}
	return out, false
}

// union's paths for a set as union leaves it (nothing enters; values enter by a merge of
// sorted lists) give what the full merge gives, and so does the full merge for stored
// lists that are not such sets (unsorted, repeated, empty values, longer than max). The
// seed is logged; ALERTS_TEST_SEED sets it.
func TestUnionShortcutMatchesMerge(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ALERTS_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ALERTS_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (set ALERTS_TEST_SEED=%d to repeat it)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 2))
	values := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			if v := r.IntN(12); v > 0 {
				out[i] = string(rune('a' + v))
			}
		}
		return out
	}
	for range 20000 {
		max := 1 + r.IntN(6)
		cur := values(r.IntN(9))
		if r.IntN(3) > 0 {
			cur, _ = unionByMap(cur, nil, max) // a set as union leaves it
		}
		add := values(r.IntN(3))
		before := slices.Clone(cur)
		got, gotOver := union(cur, add, max)
		want, wantOver := unionByMap(cur, add, max)
		if !slices.Equal(got, want) || gotOver != wantOver || got == nil {
			t.Fatalf("union(%q, %q, %d) = %q, %v; want %q, %v", cur, add, max, got, gotOver, want, wantOver)
		}
		if !slices.Equal(cur, before) {
			t.Fatalf("union changed its input %q to %q", before, cur)
		}
	}
}

// Merging values a full set has, or that sort after its last, allocates nothing: a
// backlog's campaign group is full, and a new map and slice of a thousand values per alert
// merged into it were most of the garbage of a pass.
func TestUnionFullSetAllocatesNothing(t *testing.T) {
	full := make([]string, MaxGroupAlerts)
	for i := range full {
		full[i] = "id" + strconv.Itoa(100000+i)
	}
	add := []string{full[17], "id999999", ""}
	allocs := testing.AllocsPerRun(100, func() {
		out, over := union(full, add, MaxGroupAlerts)
		if len(out) != MaxGroupAlerts || !over {
			t.Fatalf("union of a full set = %d values, over %v; want %d, true", len(out), over, MaxGroupAlerts)
		}
	})
	if allocs != 0 {
		t.Errorf("union of a full set with nothing entering allocated %v times; want none", allocs)
	}
}

// An empty set is encoded [] in a group document, as the mapping and older groups have it,
// never null: union of nothing gives an empty slice, not nil.
func TestUnionOfNothingIsEmptyNotNil(t *testing.T) {
	for _, add := range [][]string{nil, {""}} {
		if got, _ := union(nil, add, MaxGroupNames); got == nil || len(got) != 0 {
			t.Errorf("union(nil, %q) = %#v; want an empty, non-nil slice", add, got)
		}
	}
}
