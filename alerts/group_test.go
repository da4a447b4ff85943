package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
)

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://Phish.Example:443/login#frag":  "https://phish.example/login",
		"http://a.example":                      "http://a.example/",
		"http://a.example:80/?q=1":              "http://a.example/?q=1",
		"http://a.example:8080/Path":            "http://a.example:8080/Path",
		"https://[2001:DB8::1]:443/x":           "https://[2001:db8::1]/x",
		"  not a url ":                          "not a url",
		"https://a.example/login?next=%2Fhome#": "https://a.example/login?next=%2Fhome",
	} {
		if got := NormalizeURL(in); got != want {
			t.Errorf("NormalizeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupKey(t *testing.T) {
	a := Alert{Files: []File{{Name: "x"}, {Name: "y", SHA256: "ab"}}, URL: "http://u"}
	if got := GroupKey(&a); got != "file:ab" {
		t.Errorf("GroupKey = %q, want the file hash", got)
	}
	a.Files = nil
	if got := GroupKey(&a); got != "url:http://u/" {
		t.Errorf("GroupKey = %q, want the normalised URL", got)
	}
	a.URL = ""
	if got := GroupKey(&a); got != "" {
		t.Errorf("GroupKey = %q, want none", got)
	}
	var g Group
	if g.Add(&a) {
		t.Errorf("an alert without a group changed a group")
	}
}

// groupAlerts returns alerts of two groups (one file, one URL written three ways), with
// two alerts at the same time (the tie of the latest action), repeated recipients and
// every priority.
func groupAlerts() []Alert {
	t0 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	file := func(id string, min int, rcpt, action string, p Priority, name string) Alert {
		return Alert{Source: AttachmentProtection, ID: id + strings.Repeat("0", 64-len(id)), Time: t0.Add(time.Duration(min) * time.Minute),
			Sender: "bad@evil.example", Recipients: []string{rcpt}, Action: action, Status: statusFromAction(action), Priority: p,
			Files: []File{{Name: name, MimeType: "application/pdf", SHA256: "aa11"}}}
	}
	url := func(id string, min int, rcpt, u string, p Priority) Alert {
		return Alert{Source: URLProtection, ID: id + strings.Repeat("0", 64-len(id)), Time: t0.Add(time.Duration(min) * time.Minute),
			Sender: "x@phish.example", Recipients: []string{rcpt}, Action: "block", Priority: p, URL: u}
	}
	return []Alert{
		file("1", 0, "a@corp.example", "none", Medium, "invoice.pdf"),
		file("2", 5, "b@corp.example", "hold", High, "Invoice.pdf"),
		file("3", 5, "c@corp.example", "bounce", Low, "invoice.pdf"),
		file("4", 2, "a@corp.example", "none", Medium, "scan.pdf"),
		url("5", 1, "a@corp.example", "HTTPS://Phish.Example:443/login#x", Medium),
		url("6", 3, "d@corp.example", "https://phish.example/login", High),
		url("7", -4, "e@corp.example", "https://phish.example:443/login", Low),
	}
}

// TestGroupAddOrderIndependent adds the same alerts in many orders, some twice, and
// checks every group comes out the same.
func TestGroupAddOrderIndependent(t *testing.T) {
	alerts := groupAlerts()
	build := func(order []Alert) map[string]string {
		gs := map[string]*Group{}
		for i := range order {
			k := GroupKey(&order[i])
			if gs[k] == nil {
				gs[k] = &Group{}
			}
			gs[k].Add(&order[i])
		}
		out := map[string]string{}
		for k, g := range gs {
			b, _ := json.Marshal(g)
			out[k] = string(b)
		}
		return out
	}
	want := build(alerts)
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 50 {
		order := append(append([]Alert(nil), alerts...), alerts[:n%len(alerts)]...)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if got := build(order); !reflect.DeepEqual(got, want) {
			t.Fatalf("order %d gives other groups:\n got %v\nwant %v", n, got, want)
		}
	}
	var g Group
	for i := range alerts[:4] {
		g.Add(&alerts[i])
	}
	for i := range alerts[:4] {
		if g.Add(&alerts[i]) {
			t.Errorf("adding alert %d again changed the group", i)
		}
	}
}

// esGroups is the GroupStore the poller uses, over the real Elasticsearch, in an index of
// its own (prefix), with source to read a group back.
type esGroups struct {
	t       *testing.T
	cluster *index.Cluster
	GroupStore
}

func (e *esGroups) source(id string) map[string]any {
	e.t.Helper()
	docs, err := e.GetGroups(context.Background(), []string{id})
	if err != nil || docs[id].Doc == nil {
		e.t.Fatalf("get group %s: %v (found %v)", id, err, docs[id].Doc != nil)
	}
	var m map[string]any
	if err := json.Unmarshal(docs[id].Doc, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func newGroupIndex(t *testing.T, base, prefix string) *esGroups {
	t.Helper()
	zero := 0
	c, err := index.Open(context.Background(), index.Config{Addresses: []string{base}, IndexPrefix: prefix, Namespace: indextest.Namespace(prefix), Replicas: &zero, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ensure(context.Background(), GroupsKind); err != nil {
		t.Fatal(err)
	}
	return &esGroups{t: t, cluster: c, GroupStore: NewGroupStore(c)}
}

// TestUpdateGroupsInElasticsearch applies the same alerts in several orders, twice, and
// from racing writers, and checks every resulting document is the same and says what the
// alerts say.
func TestUpdateGroupsInElasticsearch(t *testing.T) {
	base := indextest.URL(t)
	prefix := indextest.Prefix(t, base)
	ctx := context.Background()

	alerts := groupAlerts()
	rng := rand.New(rand.NewPCG(1, 2))
	rev := append([]Alert(nil), alerts...)
	slices.Reverse(rev)
	orders := [][]Alert{alerts, rev}
	for range 3 {
		s := append([]Alert(nil), alerts...)
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		orders = append(orders, s)
	}
	fileID, urlID := GroupID(GroupKey(&alerts[0])), GroupID(GroupKey(&alerts[4]))
	if GroupKey(&alerts[6]) != GroupKey(&alerts[4]) {
		t.Fatalf("the three spellings of one URL are in different groups")
	}

	var want map[string]map[string]any
	for n, order := range orders {
		es := newGroupIndex(t, base, fmt.Sprintf("%s-o%d", prefix, n))
		// One alert per call, as pages of one alert would, then all at once again.
		for i := range order {
			if _, err := UpdateGroups(ctx, es, order[i:i+1]); err != nil {
				t.Fatalf("order %d: %v", n, err)
			}
		}
		written, err := UpdateGroups(ctx, es, order)
		if err != nil || written != 0 {
			t.Errorf("order %d: applying the same alerts again wrote %d groups (%v), want none", n, written, err)
		}
		got := map[string]map[string]any{"file": es.source(fileID), "url": es.source(urlID)}
		if want == nil {
			want = got
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("order %d: documents differ:\n got %v\nwant %v", n, got, want)
		}
	}

	// Racing writers: each alert applied by its own goroutine, twice.
	es := newGroupIndex(t, base, prefix+"-race")
	var wg sync.WaitGroup
	for round := range 2 {
		for i := range alerts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := UpdateGroups(ctx, es, alerts[i:i+1]); err != nil {
					t.Errorf("round %d alert %d: %v", round, i, err)
				}
			}()
		}
	}
	wg.Wait()
	if got := (map[string]map[string]any{"file": es.source(fileID), "url": es.source(urlID)}); !reflect.DeepEqual(got, want) {
		t.Errorf("racing writers: documents differ:\n got %v\nwant %v", got, want)
	}

	f := want["file"]
	checks := map[string]any{
		"key": "file:aa11", "kind": "file", "sha256": "aa11",
		"file_names":      []any{"Invoice.pdf", "invoice.pdf", "scan.pdf"},
		"file_types":      []any{"application/pdf"},
		"recipients":      []any{"a@corp.example", "b@corp.example", "c@corp.example"},
		"recipient_count": float64(3), "alert_count": float64(4), "recipients_truncated": false,
		"senders":    []any{"bad@evil.example"},
		"first_seen": "2024-03-01T10:00:00Z", "last_seen": "2024-03-01T10:05:00Z", "@timestamp": "2024-03-01T10:05:00Z",
		"priority": "high", "priority_rank": float64(3),
		// Alerts 2 and 3 share the latest time; the greater id (3) wins.
		"latest_action": "bounce", "latest_status": "bounced", "latest_alert_id": "3" + strings.Repeat("0", 63),
	}
	for k, v := range checks {
		if !reflect.DeepEqual(f[k], v) {
			t.Errorf("file group %s = %#v, want %#v", k, f[k], v)
		}
	}
	u := want["url"]
	for k, v := range map[string]any{
		"url": "https://phish.example/login", "kind": "url", "recipient_count": float64(3),
		"first_seen": "2024-03-01T09:56:00Z", "last_seen": "2024-03-01T10:03:00Z", "priority": "high",
	} {
		if !reflect.DeepEqual(u[k], v) {
			t.Errorf("url group %s = %#v, want %#v", k, u[k], v)
		}
	}
}

// TestGroupBoundsOrderIndependent checks that truncated sets and their flags do not depend
// on the order of arrival.
func TestGroupBoundsOrderIndependent(t *testing.T) {
	rcpts := func(from, n int) []string {
		var out []string
		for i := from; i < from+n; i++ {
			out = append(out, fmt.Sprintf("user%04d@corp.example", i))
		}
		return out
	}
	t0 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	a := Alert{Source: AttachmentProtection, ID: fmt.Sprintf("%064d", 1), Time: t0, Recipients: rcpts(0, 600),
		Files: []File{{SHA256: "bb"}}, Priority: High}
	b := Alert{Source: AttachmentProtection, ID: fmt.Sprintf("%064d", 2), Time: t0, Recipients: rcpts(500, 700),
		Files: []File{{SHA256: "bb"}}, Priority: High}
	var g1, g2 Group
	g1.Add(&a)
	g1.Add(&b)
	g2.Add(&b)
	g2.Add(&a)
	if !reflect.DeepEqual(g1, g2) {
		t.Errorf("truncated groups differ by order")
	}
	if g1.RecipientCount != MaxGroupRecipients || !g1.RecipientsTruncated {
		t.Errorf("recipient_count %d truncated %v, want %d and true", g1.RecipientCount, g1.RecipientsTruncated, MaxGroupRecipients)
	}
	if l := g1.Recipients; len(l) != MaxGroupRecipients || l[0] != "user0000@corp.example" || l[len(l)-1] != "user0999@corp.example" {
		t.Errorf("recipients kept are not the %d smallest", MaxGroupRecipients)
	}
}

// conflictOnce is a GroupStore in memory whose first write of each group loses a race, and
// whose second write of the group named busy is refused for load.
type conflictOnce struct {
	docs      map[string][]byte
	seq       map[string]int64
	conflicts map[string]int
	busy      string
	gets      int
	puts      int
}

func (c *conflictOnce) GetGroups(_ context.Context, ids []string) (map[string]StoredGroup, error) {
	c.gets++
	out := map[string]StoredGroup{}
	for _, id := range ids {
		if d, ok := c.docs[id]; ok {
			out[id] = StoredGroup{Doc: d, Version: GroupVersion{SeqNo: c.seq[id]}}
		}
	}
	return out, nil
}

func (c *conflictOnce) PutGroups(_ context.Context, ws []GroupWrite) ([]error, error) {
	c.puts++
	errs := make([]error, len(ws))
	for i, w := range ws {
		c.conflicts[w.ID]++
		switch {
		case c.conflicts[w.ID] == 1:
			// Another writer created the group meanwhile.
			c.seq[w.ID]++
			c.docs[w.ID] = []byte(`{}`)
			errs[i] = fmt.Errorf("put: %w", ErrGroupConflict)
		case c.conflicts[w.ID] == 2 && w.ID == c.busy:
			errs[i] = fmt.Errorf("put: %w", ErrGroupBusy)
		case !w.Found || w.Version.SeqNo != c.seq[w.ID]:
			errs[i] = errors.New("stale version written")
		default:
			c.seq[w.ID]++
			c.docs[w.ID] = w.Doc
		}
	}
	return errs, nil
}

// Each round reads every pending group with one request and writes them with one; only the
// groups that lost (or were refused) go round again, from a fresh read.
func TestUpdateGroupsRetriesConflicts(t *testing.T) {
	all := groupAlerts()
	fileID, urlID := GroupID(GroupKey(&all[0])), GroupID(GroupKey(&all[4]))
	s := &conflictOnce{docs: map[string][]byte{}, seq: map[string]int64{}, conflicts: map[string]int{}, busy: urlID}
	n, err := UpdateGroups(context.Background(), s, all)
	if err != nil || n != 2 {
		t.Fatalf("UpdateGroups = %d, %v; want 2 groups written", n, err)
	}
	// Round 1: both conflict; round 2: the file group is written, the URL group busy;
	// round 3: the URL group is written.
	if s.gets != 3 || s.puts != 3 {
		t.Errorf("%d reads and %d writes; want 3 of each (one per round, not per group)", s.gets, s.puts)
	}
	for _, id := range []string{fileID, urlID} {
		var g Group
		if err := json.Unmarshal(s.docs[id], &g); err != nil || g.AlertCount == 0 {
			t.Errorf("group %s = %s (%v); want the merged alerts", id, s.docs[id], err)
		}
	}
}

// A group that loses every race fails after maxGroupAttempts rounds instead of looping.
func TestUpdateGroupsGivesUp(t *testing.T) {
	s := &alwaysConflict{}
	_, err := UpdateGroups(context.Background(), s, groupAlerts()[:1])
	if err == nil || s.puts != maxGroupAttempts {
		t.Errorf("err %v after %d writes; want an error after %d", err, s.puts, maxGroupAttempts)
	}
}

type alwaysConflict struct{ puts int }

func (a *alwaysConflict) GetGroups(context.Context, []string) (map[string]StoredGroup, error) {
	return nil, nil
}

func (a *alwaysConflict) PutGroups(_ context.Context, ws []GroupWrite) ([]error, error) {
	a.puts++
	errs := make([]error, len(ws))
	for i := range errs {
		errs[i] = ErrGroupConflict
	}
	return errs, nil
}

// countingGroups is a fakeGroups that records how many groups each read asks for.
type countingGroups struct {
	fakeGroups
	asked []int
}

func (c *countingGroups) GetGroups(ctx context.Context, ids []string) (map[string]StoredGroup, error) {
	c.asked = append(c.asked, len(ids))
	return c.fakeGroups.GetGroups(ctx, ids)
}

// Reads of full groups ask for as many as fit in groupReadBytes, not groupBatch of them:
// a backlog fills groups up to their bounds (about 100 KB each), and 500 of them read,
// merged and encoded at once held tens of megabytes. Small groups are still read 500 at
// a time. Every group still gets its alert.
func TestUpdateGroupsReadsBoundedByBytes(t *testing.T) {
	ids := make([]string, MaxGroupAlerts)
	for i := range ids {
		ids[i] = fmt.Sprintf("%064x", i+1)
	}
	var (
		s     countingGroups
		z     groupSizer
		batch []Alert
	)
	s.docs = map[string][]byte{}
	t0 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	const n = 600
	for i := range n {
		sha := fmt.Sprintf("%064x", 1<<20+i)
		a := Alert{Source: AttachmentProtection, ID: fmt.Sprintf("%064x", 1<<30+i), Time: t0, Recipients: []string{"a@corp.example"},
			Files: []File{{Name: "x.pdf", SHA256: sha}}}
		full := Group{Key: GroupKey(&a), Kind: "file", SHA256: sha, AlertIDs: ids, AlertCount: len(ids)}
		doc, err := json.Marshal(&full)
		if err != nil {
			t.Fatal(err)
		}
		s.docs[GroupID(GroupKey(&a))] = doc
		batch = append(batch, a)
	}
	size := len(s.docs[GroupID(GroupKey(&batch[0]))])
	for _, part := range [][]Alert{batch[:n/2], batch[n/2:]} {
		if _, err := updateGroups(context.Background(), &s, part, &z); err != nil {
			t.Fatal(err)
		}
	}
	limit := max(groupFirstRead, groupReadBytes/size)
	for i, k := range s.asked {
		if k > limit {
			t.Errorf("read %d asked for %d groups of %d bytes; want at most %d (%d bytes)", i, k, size, limit, groupReadBytes)
		}
	}
	for _, a := range batch {
		var g Group
		if err := json.Unmarshal(s.docs[GroupID(GroupKey(&a))], &g); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(g.AlertIDs, a.ID) && !g.AlertsTruncated {
			t.Errorf("group %s lacks alert %s", g.Key, a.ID)
		}
	}

	// Small groups: after the first read, 500 at a time.
	var small countingGroups
	var zs groupSizer
	if _, err := updateGroups(context.Background(), &small, batch, &zs); err != nil {
		t.Fatal(err)
	}
	if _, err := updateGroups(context.Background(), &small, batch, &zs); err != nil {
		t.Fatal(err)
	}
	if got := slices.Max(small.asked); got != groupBatch {
		t.Errorf("small groups: largest read %d; want %d", got, groupBatch)
	}
}
