package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// esGroups is a GroupStore over Elasticsearch's document API, as the poller's index
// client implements it.
type esGroups struct {
	t     *testing.T
	base  string
	index string
	c     *http.Client
}

func (e *esGroups) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := e.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func (e *esGroups) GetGroup(ctx context.Context, id string) ([]byte, GroupVersion, bool, error) {
	status, b, err := e.do(ctx, http.MethodGet, "/"+e.index+"/_doc/"+id, nil)
	if err != nil {
		return nil, GroupVersion{}, false, err
	}
	if status == http.StatusNotFound {
		return nil, GroupVersion{}, false, nil
	}
	if status != http.StatusOK {
		return nil, GroupVersion{}, false, fmt.Errorf("get %s: status %d: %s", id, status, b)
	}
	var r struct {
		Source      json.RawMessage `json:"_source"`
		SeqNo       int64           `json:"_seq_no"`
		PrimaryTerm int64           `json:"_primary_term"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, GroupVersion{}, false, err
	}
	return r.Source, GroupVersion{SeqNo: r.SeqNo, PrimaryTerm: r.PrimaryTerm}, true, nil
}

func (e *esGroups) PutGroup(ctx context.Context, id string, doc []byte, v GroupVersion, found bool) error {
	path := "/" + e.index + "/_create/" + id
	if found {
		path = fmt.Sprintf("/%s/_doc/%s?if_seq_no=%d&if_primary_term=%d", e.index, id, v.SeqNo, v.PrimaryTerm)
	}
	status, b, err := e.do(ctx, http.MethodPut, path, doc)
	switch {
	case err != nil:
		return err
	case status == http.StatusConflict:
		return fmt.Errorf("put %s: %w", id, ErrGroupConflict)
	case status >= 300:
		return fmt.Errorf("put %s: status %d: %s", id, status, b)
	}
	return nil
}

func (e *esGroups) source(id string) map[string]any {
	e.t.Helper()
	doc, _, found, err := e.GetGroup(context.Background(), id)
	if err != nil || !found {
		e.t.Fatalf("get group %s: found %v, %v", id, found, err)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func newGroupIndex(t *testing.T, base, index string) *esGroups {
	t.Helper()
	e := &esGroups{t: t, base: base, index: index, c: &http.Client{Timeout: 30 * time.Second}}
	body, _ := json.Marshal(map[string]any{"mappings": GroupsMapping()})
	status, b, err := e.do(context.Background(), http.MethodPut, "/"+index, body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("create %s: %d %s %v", index, status, b, err)
	}
	return e
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
		es := newGroupIndex(t, base, fmt.Sprintf("%s-alert-groups-%d", prefix, n))
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
	es := newGroupIndex(t, base, prefix+"-alert-groups-race")
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
		"latest_action": "bounce", "latest_status": "bounced", "latest_alert_id": "3" + strings.Repeat("0", 15),
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

// conflictOnce is a GroupStore in memory whose first write loses a race.
type conflictOnce struct {
	docs      map[string][]byte
	seq       int64
	conflicts int
	puts      int
}

func (c *conflictOnce) GetGroup(_ context.Context, id string) ([]byte, GroupVersion, bool, error) {
	d, ok := c.docs[id]
	return d, GroupVersion{SeqNo: c.seq}, ok, nil
}

func (c *conflictOnce) PutGroup(_ context.Context, id string, doc []byte, v GroupVersion, found bool) error {
	c.puts++
	if c.conflicts == 0 {
		c.conflicts++
		c.seq++
		return fmt.Errorf("put: %w", ErrGroupConflict)
	}
	if v.SeqNo != c.seq {
		return errors.New("stale version written")
	}
	c.docs[id] = doc
	return nil
}

func TestUpdateGroupsRetriesConflicts(t *testing.T) {
	s := &conflictOnce{docs: map[string][]byte{}}
	alerts := groupAlerts()[:1]
	n, err := UpdateGroups(context.Background(), s, alerts)
	if err != nil || n != 1 || s.puts != 2 || len(s.docs) != 1 {
		t.Errorf("UpdateGroups = %d, %v after %d puts (%d docs); want 1 group written on the second attempt", n, err, s.puts, len(s.docs))
	}
}
