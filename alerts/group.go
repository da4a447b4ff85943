package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
)

// Groups. Alerts about the same attachment (by SHA-256) or the same URL (normalised) form
// one document in {prefix}-alert-groups, so that one malicious file sent to forty people
// is one thing to look at.
//
// A group is updated by reading it, merging alerts into it in Go (Group.Add) and writing
// it back only if nobody changed it in between (Elasticsearch's if_seq_no/if_primary_term,
// or op_type create for a new group); a lost race is read and merged again. No script is
// involved, so this works on clusters without a scripting module. Group.Add is a merge of
// set unions, minimums and maximums only, which makes it idempotent (adding an alert twice
// changes nothing) and order-independent (any order of the same alerts gives the same
// document):
//
//   - sets (file names, file types, recipients, senders, sources, alert ids) keep the
//     smallest values in sort order up to a bound, so truncation too is independent of
//     arrival order;
//   - first_seen is the minimum and last_seen the maximum alert time;
//   - priority is the maximum;
//   - the latest action and status are those of the alert with the greatest (time, id):
//     ties in time are broken by the alert id, deterministically.
//
// Counts are the sizes of the bounded sets: recipient_count is exact up to
// MaxGroupRecipients distinct recipients and alert_count up to MaxGroupAlerts distinct
// alerts; beyond, they stay at the bound and recipients_truncated / alerts_truncated are
// true (an exact distinct count beyond the bound would need every value kept).

// Bounds of a group document's sets.
const (
	MaxGroupRecipients = 1000
	MaxGroupAlerts     = 1000
	MaxGroupNames      = 50 // file names and file types
	MaxGroupSenders    = 100
	maxGroupSources    = 10
)

// GroupKey returns the key of the alert's group: "file:" + the SHA-256 of its first
// attachment with a hash, else "url:" + its normalised URL, else "" (no group).
func GroupKey(a *Alert) string {
	for _, f := range a.Files {
		if f.SHA256 != "" {
			return "file:" + f.SHA256
		}
	}
	if a.URL != "" {
		return "url:" + NormalizeURL(a.URL)
	}
	return ""
}

// GroupID returns the document id of the group with the given key: the hex SHA-256 of the
// key (URLs can be longer than an _id may be).
func GroupID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NormalizeURL returns the form of u that URL groups are keyed by: scheme and host in
// lower case, the scheme's default port dropped, the fragment dropped, and an empty path
// written as "/". A value that does not parse as an absolute URL is only trimmed.
func NormalizeURL(raw string) string {
	s := strings.TrimSpace(raw)
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return s
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" && u.RawPath == "" {
		u.Path = "/"
	}
	return u.String()
}

// Group is one document of {prefix}-alert-groups (GroupsMapping is its mapping).
type Group struct {
	Timestamp time.Time `json:"@timestamp"` // = LastSeen, for Kibana's time filter
	Key       string    `json:"key"`        // GroupKey
	Kind      string    `json:"kind"`       // file or url
	SHA256    string    `json:"sha256,omitempty"`
	URL       string    `json:"url,omitempty"`

	FileNames           []string `json:"file_names"`
	FileTypes           []string `json:"file_types"`
	Recipients          []string `json:"recipients"`
	RecipientCount      int      `json:"recipient_count"`
	RecipientsTruncated bool     `json:"recipients_truncated"`
	Senders             []string `json:"senders"`
	Sources             []string `json:"sources"`
	AlertIDs            []string `json:"alert_ids"` // the _id of each alert document
	AlertCount          int      `json:"alert_count"`
	AlertsTruncated     bool     `json:"alerts_truncated"`

	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	Priority     string    `json:"priority"`
	PriorityRank int       `json:"priority_rank"` // 1 low, 2 medium, 3 high

	LatestTime    time.Time `json:"latest_time"`
	LatestAlertID string    `json:"latest_alert_id"`
	LatestAction  string    `json:"latest_action"`
	LatestStatus  string    `json:"latest_status"`
}

// groupOf returns the key of a's group, preferring the one Decide set.
func groupOf(a *Alert) string {
	if a.GroupKey != "" {
		return a.GroupKey
	}
	return GroupKey(a)
}

// Add merges a into g and reports whether g changed. An alert of another group (or of
// none) changes nothing. A zero Group takes its key from the first alert.
func (g *Group) Add(a *Alert) bool {
	before, _ := json.Marshal(g)
	if !g.merge(a) {
		return false
	}
	after, _ := json.Marshal(g)
	return !bytes.Equal(before, after)
}

// merge merges a into g without telling whether g changed (Add does, by encoding g before
// and after): updateGroupBatch merges all of a group's alerts and compares once, where an
// encoding before and after every alert cost two copies of a full group (up to about
// 100 KB) per alert. It reports false for an alert of another group (or of none).
func (g *Group) merge(a *Alert) bool {
	key := groupOf(a)
	if key == "" || (g.Key != "" && g.Key != key) {
		return false
	}

	kind, value, _ := strings.Cut(key, ":")
	g.Key, g.Kind = key, kind
	if kind == "file" {
		g.SHA256 = value
	} else {
		g.URL = value
	}
	var names, types []string
	for _, f := range a.Files {
		if kind == "file" && f.SHA256 != value {
			continue
		}
		if f.Name != "" {
			names = append(names, f.Name)
		}
		if f.MimeType != "" {
			types = append(types, f.MimeType)
		}
	}
	g.FileNames, _ = union(g.FileNames, names, MaxGroupNames)
	g.FileTypes, _ = union(g.FileTypes, types, MaxGroupNames)
	var senders []string
	if a.Sender != "" {
		senders = []string{a.Sender}
	}
	g.Senders, _ = union(g.Senders, senders, MaxGroupSenders)
	g.Sources, _ = union(g.Sources, []string{string(a.Source)}, maxGroupSources)
	var truncated bool
	g.Recipients, truncated = union(g.Recipients, a.Recipients, MaxGroupRecipients)
	g.RecipientsTruncated = g.RecipientsTruncated || truncated
	g.RecipientCount = len(g.Recipients)
	// Full ids, so that an id from a group finds its alert document. Groups written before
	// kept the first 16 hex digits: an alert added again replaces its prefix rather than
	// counting twice.
	id := a.ID
	prefix := func(p string) bool { return len(p) < len(id) && strings.HasPrefix(id, p) }
	if slices.ContainsFunc(g.AlertIDs, prefix) {
		g.AlertIDs = slices.DeleteFunc(slices.Clone(g.AlertIDs), prefix)
	}
	g.AlertIDs, truncated = union(g.AlertIDs, []string{id}, MaxGroupAlerts)
	g.AlertsTruncated = g.AlertsTruncated || truncated
	g.AlertCount = len(g.AlertIDs)

	t := a.Time.UTC()
	if g.FirstSeen.IsZero() || t.Before(g.FirstSeen) {
		g.FirstSeen = t
	}
	if t.After(g.LastSeen) {
		g.LastSeen = t
	}
	g.Timestamp = g.LastSeen
	if int(a.Priority) > g.PriorityRank {
		g.PriorityRank, g.Priority = int(a.Priority), a.Priority.String()
	}
	if g.LatestTime.IsZero() || t.After(g.LatestTime) || (t.Equal(g.LatestTime) && id > g.LatestAlertID) {
		g.LatestTime, g.LatestAlertID, g.LatestAction, g.LatestStatus = t, id, a.Action, a.Status
	}
	return true
}

// union returns the smallest max values of the union of cur and add, sorted, and whether
// the union had more than max. Keeping the smallest values (not the first seen) makes the
// result independent of the order values arrive in.
//
// When cur is already such a set (sorted, no duplicates, no empty value, at most max), as
// union leaves it, it returns cur itself if nothing of add enters it (each value empty, in
// cur, or after the last of a full cur), else one new slice merged from the two sorted
// lists: a new map and slice of up to a thousand values per alert merged into a backlog's
// campaign group were most of what a pass allocated.
func union(cur, add []string, max int) ([]string, bool) {
	set := len(cur) <= max
	for i := 0; set && i < len(cur); i++ {
		set = cur[i] != "" && (i == 0 || cur[i-1] < cur[i])
	}
	if set {
		var fresh []string // values of add that enter, sorted, without duplicates
		over := false
		for _, v := range add {
			if v == "" {
				continue
			}
			if _, found := slices.BinarySearch(cur, v); found || slices.Contains(fresh, v) {
				continue
			}
			if max > 0 && len(cur) == max && v > cur[max-1] {
				over = true
				continue
			}
			fresh = append(fresh, v)
		}
		if len(fresh) == 0 {
			if cur == nil {
				cur = []string{} // encoded [] as before, not null
			}
			return cur, over
		}
		// One new slice, the two sorted lists merged: no map of the whole set per alert.
		sort.Strings(fresh)
		n := len(cur) + len(fresh)
		out := make([]string, 0, min(n, max))
		for i, j := 0, 0; len(out) < max && (i < len(cur) || j < len(fresh)); {
			if j == len(fresh) || (i < len(cur) && cur[i] < fresh[j]) {
				out = append(out, cur[i])
				i++
			} else {
				out = append(out, fresh[j])
				j++
			}
		}
		return out, over || n > max
	}
	seen := make(map[string]bool, len(cur)+len(add))
	out := make([]string, 0, len(cur)+len(add))
	for _, vs := range [][]string{cur, add} {
		for _, v := range vs {
			if v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	if len(out) > max {
		return out[:max], true
	}
	return out, false
}

// GroupVersion is the optimistic-concurrency token of a stored group: Elasticsearch's
// _seq_no and _primary_term.
type GroupVersion struct{ SeqNo, PrimaryTerm int64 }

// ErrGroupConflict is wrapped by GroupStore.PutGroups for a write whose stored group changed
// (or appeared) since it was read.
var ErrGroupConflict = errors.New("the group changed since it was read")

// ErrGroupBusy is wrapped by GroupStore.PutGroups for a write Elasticsearch refused because
// it was busy (429); it is read, merged and sent again after a pause.
var ErrGroupBusy = errors.New("elasticsearch was too busy to write the group")

// StoredGroup is a group as read: its _source and version.
type StoredGroup struct {
	Doc     []byte
	Version GroupVersion
}

// GroupWrite is one conditional write of a group: with op_type create when Found is false,
// else only if the stored group still has Version (if_seq_no, if_primary_term).
type GroupWrite struct {
	ID      string
	Doc     []byte
	Version GroupVersion
	Found   bool
}

// GroupStore reads and conditionally writes documents of {prefix}-alert-groups, many at a
// time: UpdateGroups makes one read and one write request per page of alerts, not one per
// group.
type GroupStore interface {
	// GetGroups reads the groups with the given ids in real time, in one request; groups
	// that do not exist are absent from the map.
	GetGroups(ctx context.Context, ids []string) (map[string]StoredGroup, error)
	// PutGroups sends the writes in one request and returns when Elasticsearch answered:
	// one error per write, in order — nil when acknowledged, wrapping ErrGroupConflict when
	// its condition failed (409), ErrGroupBusy when refused for load (429). The second
	// result is the failure of the request as a whole.
	PutGroups(ctx context.Context, ws []GroupWrite) ([]error, error)
}

// maxGroupAttempts bounds the read-merge-write rounds of one group: each lost race means
// another writer made progress, so a handful suffice.
const maxGroupAttempts = 10

// groupBatch bounds the groups of one read and one write request.
const groupBatch = 500

// groupReadBytes bounds the stored groups one read asks for, by the size of the largest
// group document seen: a group grows up to MaxGroupAlerts ids and MaxGroupRecipients
// recipients (about 100 KB), and groupBatch of them read, decoded, merged and encoded again
// held tens of megabytes at once, more the longer the backlog had filled them.
const groupReadBytes = 2 << 20

// groupFirstRead is how many groups a read asks for before any group's size is known.
const groupFirstRead = 16

// groupSizer remembers the largest group document read or written, so that each read asks
// for as many groups as fit in groupReadBytes: peak memory is bounded by that setting, not
// by how full a backlog made the groups. Safe for concurrent use; the zero value is ready.
type groupSizer struct {
	seen    atomic.Bool
	largest atomic.Int64
}

// batch returns how many groups the next read may ask for.
func (z *groupSizer) batch() int {
	if !z.seen.Load() {
		return groupFirstRead
	}
	l := z.largest.Load()
	if l <= 0 {
		return groupBatch
	}
	return int(min(int64(groupBatch), max(1, groupReadBytes/l)))
}

// saw records a group document of n bytes.
func (z *groupSizer) saw(n int) {
	for {
		cur := z.largest.Load()
		if int64(n) <= cur || z.largest.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

// groupBusyPause is the pause before groups refused for load are sent again, times the
// round.
const groupBusyPause = 100 * time.Millisecond

// UpdateGroups merges alerts into their groups in s: read every group of the alerts with one
// request, Add each group's alerts, and write back the groups that changed with one request
// of conditional writes; the groups whose write lost a race with another writer (or was
// refused for load) are read, merged and written again, the others are done. It returns the
// number of groups written (0 when the alerts were all there already) and the first error;
// on error some groups may be written, which is harmless because merging is idempotent:
// call it again with the same alerts.
func UpdateGroups(ctx context.Context, s GroupStore, alerts []Alert) (written int, err error) {
	return updateGroups(ctx, s, alerts, &groupSizer{})
}

// updateGroups is UpdateGroups with reads sized by z, which the poller keeps for its life.
func updateGroups(ctx context.Context, s GroupStore, alerts []Alert, z *groupSizer) (written int, err error) {
	byKey := map[string][]*Alert{}
	var keys []string
	for i := range alerts {
		k := groupOf(&alerts[i])
		if k == "" {
			continue
		}
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], &alerts[i])
	}
	sort.Strings(keys)
	for len(keys) > 0 {
		n := min(len(keys), z.batch())
		w, err := updateGroupBatch(ctx, s, keys[:n], byKey, z)
		written += w
		if err != nil {
			return written, err
		}
		keys = keys[n:]
	}
	return written, ctx.Err()
}

// updateGroupBatch runs read-merge-write rounds over keys until every group is written or
// needed no change.
func updateGroupBatch(ctx context.Context, s GroupStore, keys []string, byKey map[string][]*Alert, z *groupSizer) (written int, err error) {
	pending := keys
	for attempt := 1; len(pending) > 0; attempt++ {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		ids := make([]string, len(pending))
		for i, k := range pending {
			ids[i] = GroupID(k)
		}
		stored, err := s.GetGroups(ctx, ids)
		if err != nil {
			return written, fmt.Errorf("read %d alert groups: %w", len(ids), err)
		}
		z.seen.Store(true)
		for _, st := range stored {
			z.saw(len(st.Doc))
		}
		var (
			ws    []GroupWrite
			wkeys []string
		)
		for i, k := range pending {
			var g Group
			st, found := stored[ids[i]]
			if found {
				if err := json.Unmarshal(st.Doc, &g); err != nil {
					return written, fmt.Errorf("read alert group %s: decode: %w", k, err)
				}
			}
			// Merging only adds to sets, lowers minimums and raises maximums, so the group
			// changed exactly when its encoding after every alert differs from before.
			before, err := json.Marshal(&g)
			if err != nil {
				return written, fmt.Errorf("write alert group %s: encode: %w", k, err)
			}
			for _, a := range byKey[k] {
				g.merge(a)
			}
			body, err := json.Marshal(&g)
			if err != nil {
				return written, fmt.Errorf("write alert group %s: encode: %w", k, err)
			}
			if found && bytes.Equal(before, body) {
				continue
			}
			z.saw(len(body))
			delete(stored, ids[i]) // merged: only body holds the group now
			ws = append(ws, GroupWrite{ID: ids[i], Doc: body, Version: st.Version, Found: found})
			wkeys = append(wkeys, k)
		}
		if len(ws) == 0 {
			return written, nil
		}
		errs, err := s.PutGroups(ctx, ws)
		if err != nil {
			return written, fmt.Errorf("write %d alert groups: %w", len(ws), err)
		}
		if len(errs) != len(ws) {
			return written, fmt.Errorf("write %d alert groups: %d results", len(ws), len(errs))
		}
		var again []string
		busy := false
		for i, e := range errs {
			switch {
			case e == nil:
				written++
			case errors.Is(e, ErrGroupConflict):
				again = append(again, wkeys[i])
			case errors.Is(e, ErrGroupBusy):
				again, busy = append(again, wkeys[i]), true
			default:
				return written, fmt.Errorf("write alert group %s: %w", wkeys[i], e)
			}
		}
		if len(again) > 0 && attempt >= maxGroupAttempts {
			return written, fmt.Errorf("write alert group %s: %d attempts lost a race with another writer or found elasticsearch busy", again[0], attempt)
		}
		if busy {
			t := time.NewTimer(time.Duration(attempt) * groupBusyPause)
			select {
			case <-ctx.Done():
				t.Stop()
				return written, ctx.Err()
			case <-t.C:
			}
		}
		pending = again
	}
	return written, nil
}
