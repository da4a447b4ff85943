package crawler

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// MaxShards bounds Shard.Count: more runs than this would each crawl a handful of mailboxes,
// and a typo such as 0/1000000 is more likely than such a deployment.
const MaxShards = 1024

// Shard selects the mailboxes that one of Count cooperating runs crawls, each run with its own
// Mimecast API application (Mimecast meters each application separately) and its own state
// file. A mailbox belongs to shard FNV-1a-64(lower-cased address) mod Count: the hash depends on
// the address alone, so every run agrees on the owner without talking to the others, the
// shards are disjoint and their union is every mailbox. The zero value is the unsharded run,
// which owns every mailbox.
type Shard struct {
	Index int // 0-based
	Count int // 0 or 1: unsharded
}

// ParseShard reads "i/n" (0 <= i < n <= MaxShards).
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want i/n, e.g. 0/3 for the first of three shards", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 1 || n > MaxShards {
		return Shard{}, fmt.Errorf("shard %q: the count must be a whole number from 1 to %d", s, MaxShards)
	}
	return NewShard(is, n)
}

// NewShard builds shard index (a decimal string, as in JOB_COMPLETION_INDEX) of n.
func NewShard(index string, n int) (Shard, error) {
	if n < 1 || n > MaxShards {
		return Shard{}, fmt.Errorf("shard count %d: allowed 1 to %d", n, MaxShards)
	}
	i, err := strconv.Atoi(strings.TrimSpace(index))
	if err != nil || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard index %q: want a whole number from 0 to %d", index, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// Sharded reports whether s is one of several shards.
func (s Shard) Sharded() bool { return s.Count > 1 }

// String is "i/n", or "" for the unsharded run.
func (s Shard) String() string {
	if !s.Sharded() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Of returns the shard index that owns addr among s.Count shards.
func (s Shard) Of(addr string) int {
	if !s.Sharded() {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(addr)))
	return int(h.Sum64() % uint64(s.Count))
}

// Owns reports whether this shard crawls addr. The unsharded run owns every mailbox.
func (s Shard) Owns(addr string) bool {
	return !s.Sharded() || s.Of(addr) == s.Index
}
