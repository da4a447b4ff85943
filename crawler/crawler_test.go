package crawler_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/internal/rule"
	"github.com/mimecrawl/mimecrawl/state"
)

func smallArchive() simulator.Options {
	return simulator.Options{Seed: 11, Domains: 2, Mailboxes: 5, Messages: 24}
}

// TestFirstCrawlMatchesTruthAndSecondFetchesNothing runs with and without the message detail:
// the index must equal the truth either way, and the documents must be the same but for what
// only the detail has.
func TestFirstCrawlMatchesTruthAndSecondFetchesNothing(t *testing.T) {
	docs := map[bool][2]map[string]map[string]any{}
	for _, detail := range []bool{false, true} {
		t.Run(fmt.Sprintf("detail=%t", detail), func(t *testing.T) {
			msgs, atts := firstCrawlMatchesTruth(t, detail)
			docs[detail] = [2]map[string]map[string]any{msgs, atts}
		})
	}
	if t.Failed() {
		return
	}
	// What only the detail has; event times and the generation differ from run to run.
	detailOnly := map[string]bool{"mimecast.smash": true, "mimecast.attachment_id": true,
		"event.created": true, "event.ingested": true, "mimecast.generation": true}
	for i, kind := range []string{"messages", "attachments"} {
		without, with := docs[false][i], docs[true][i]
		if len(without) != len(with) {
			t.Errorf("%s: %d documents without the detail, %d with it", kind, len(without), len(with))
		}
		diffs := 0
		for id, a := range without {
			b, ok := with[id]
			if !ok {
				t.Errorf("%s: document %s only without the detail", kind, id)
				continue
			}
			for _, f := range unionKeys(a, b) {
				if !detailOnly[f] && fmt.Sprint(a[f]) != fmt.Sprint(b[f]) {
					if diffs++; diffs <= 10 {
						t.Errorf("%s %s: %s is %.200v without the detail, %.200v with it", kind, id, f, a[f], b[f])
					}
				}
			}
			if kind == "attachments" && b["mimecast.attachment_id"] == "" {
				t.Errorf("attachment %s: no mimecast.attachment_id with the detail", id)
			}
		}
	}
}

// endpointCalls is the client's attempts at one endpoint, whatever their status.
func endpointCalls(st mimecast.Stats, endpoint string) int64 {
	var n int64
	for k, c := range st.ByEndpoint {
		if k.Endpoint == endpoint {
			n += c
		}
	}
	return n
}

func unionKeys(a, b map[string]any) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// firstCrawlMatchesTruth crawls a small archive four times (first, unchanged, with new
// messages, the overlap again) and returns the documents of the first crawl.
func firstCrawlMatchesTruth(t *testing.T, detail bool) (messages, attachments map[string]map[string]any) {
	ctx := context.Background()
	e := newEnv(t, smallArchive())
	withDetail := func(o *crawler.Options) { o.MessageDetail = detail }
	// The detail call is counted by the simulator; get-file also serves attachments by id.
	detailCalls := func() int64 { return requests(e.sim.Stats(), "/api/archive/get-message-detail") }
	fileCalls := func() int64 { return requests(e.sim.Stats(), "/api/archive/get-file") }
	perMessage := int64(1)
	if !detail {
		perMessage = 0
	}
	truth := e.sim.Truth()
	// Exclude one real mailbox by rule, to prove exclusions hold.
	var victim string
	for _, mb := range truth.Mailboxes {
		if !mb.Alias && !mb.Local && !isDL(mb) && len(mb.Messages) > 0 {
			victim = strings.ToLower(mb.Address)
			break
		}
	}
	rules := crawler.Rules{ExcludeMailboxes: []rule.Regexp{rule.MustRegexp(regexp.QuoteMeta(victim))}}
	e.sim.ResetStats()
	first := e.crawl(ctx, rules, withDetail)
	if !first.complete() {
		t.Fatalf("first crawl incomplete: %+v\n%s", first.results, e.log)
	}
	ex := e.expect(truthFilter{rules: rules})
	// A message costs one get-file call, and one detail call with the detail: attachments
	// come from the RFC 822 message, never downloaded again.
	fetched := first.totals.Messages
	if n := detailCalls(); n != perMessage*fetched {
		t.Errorf("first crawl made %d detail calls for %d messages, want %d", n, fetched, perMessage*fetched)
	}
	if n := fileCalls(); n != fetched {
		t.Errorf("first crawl made %d get-file calls for %d messages, want one each", n, fetched)
	}
	// The client counts the same from its side (this is its first crawl).
	st := e.client.Stats()
	quota := endpointCalls(st, "POST /api/archive/get-message-detail") + endpointCalls(st, "POST /api/archive/get-file")
	if want := (1 + perMessage) * fetched; quota != want {
		t.Errorf("client made %d detail and get-file calls for %d messages, want %d", quota, fetched, want)
	}
	t.Logf("detail=%t: %d messages, %d detail and get-file calls (%.2f a message), %d list calls", detail, fetched,
		quota, float64(quota)/float64(fetched), endpointCalls(st, "POST /api/archive/get-message-list"))
	if len(ex.messages) == 0 || len(ex.attachments) == 0 {
		t.Fatalf("the archive under test has %d messages and %d attachments; the test needs both", len(ex.messages), len(ex.attachments))
	}
	e.assertIndexEquals(ex)
	if first.totals.FromMessage == 0 {
		t.Errorf("no attachment was taken from the downloaded message; each was downloaded again")
	}
	if got := first.totals.Messages; got != int64(len(ex.messages)) {
		t.Errorf("first crawl indexed %d messages, want %d", got, len(ex.messages))
	}
	// Content: UTF-8 subjects as in the archive, the body's words searchable (whatever the
	// charset, transfer encoding or HTML-only layout), attachments with the archive's bytes.
	bodies, unnamed := 0, 0
	orgDomains := map[string]bool{}
	for _, d := range e.sim.Truth().Domains {
		orgDomains[strings.ToLower(d.Domain)] = true
	}
	directions := map[string]int{}
	messages = e.indexed("messages")
	for id, src := range messages {
		m := ex.messages[id]
		if strings.TrimSpace(m.Subject) != "" && src["email.subject"] != m.Subject {
			t.Errorf("message %s: subject %q, want %q", id, src["email.subject"], m.Subject)
		}
		// ECS: direction from the view unless every address is the organisation's, the Date
		// header parsed, SPF/DKIM/DMARC results from Authentication-Results, and the
		// attachments' hashes on the message itself.
		want := map[string]string{"INBOX": "inbound", "SENT": "outbound"}[m.View]
		if allInternal(src, orgDomains) {
			want = "internal"
		}
		directions[want]++
		if src["email.direction"] != want {
			t.Errorf("message %s of view %s: email.direction %v, want %s", id, m.View, src["email.direction"], want)
		}
		// Pivots: every hash of its attachments once, every address of it and its mailbox.
		if got, want := strings.Join(distinctSorted(strs(src["related.hash"])), ","), strings.Join(distinctSorted(strings.Split(truthHashes(m), ",")), ","); got != want {
			t.Errorf("message %s: related.hash %s, want %s", id, got, want)
		}
		users := strs(src["related.user"])
		for _, f := range []string{"user.email", "email.from.address", "email.to.address", "email.cc.address", "email.sender.address"} {
			for _, a := range strs(src[f]) {
				if !slices.Contains(users, a) {
					t.Errorf("message %s: related.user %v lacks %s %s", id, users, f, a)
				}
			}
		}
		if src["email.origination_timestamp"] == nil || src["@timestamp"] == nil || src["event.kind"] != "event" {
			t.Errorf("message %s: origination %v, @timestamp %v, event.kind %v", id, src["email.origination_timestamp"], src["@timestamp"], src["event.kind"])
		}
		for _, method := range []string{"spf", "dkim", "dmarc"} {
			if got := fmt.Sprint(src["mimecast.auth."+method]); got != "[pass]" {
				t.Errorf("message %s: mimecast.auth.%s = %s, want [pass]", id, method, got)
			}
		}
		if got, want := messageHashes(src), truthHashes(m); got != want {
			t.Errorf("message %s: attachment hashes %s, want %s", id, got, want)
		}
		if m.BodyToken == "" || !strings.Contains(src["mimecast.body"].(string), m.BodyToken) {
			t.Errorf("message %s: body lacks its token %q: %.200q", id, m.BodyToken, src["mimecast.body"])
		} else {
			bodies++
		}
	}
	for id, src := range e.indexed("attachments") {
		a := ex.attachments[id]
		if src["email.attachments.file.hash.sha256"] != a.SHA256 || int64(src["email.attachments.file.size"].(float64)) != a.Size {
			t.Errorf("attachment %s: sha256 %v size %v, want %s %d", id, src["email.attachments.file.hash.sha256"], src["email.attachments.file.size"], a.SHA256, a.Size)
		}
		want := a.Filename
		if strings.TrimSpace(want) == "" {
			want, unnamed = "unnamed-attachment", unnamed+1
		}
		if src["email.attachments.file.name"] != want {
			t.Errorf("attachment %s: filename %q, want %q", id, src["email.attachments.file.name"], want)
		}
		// The file again at the top, its hash in related.hash, its message's direction.
		for _, f := range []string{"name", "mime_type", "size", "hash.sha256", "extension"} {
			if src["file."+f] != src["email.attachments.file."+f] {
				t.Errorf("attachment %s: file.%s %v, email.attachments.file.%s %v", id, f, src["file."+f], f, src["email.attachments.file."+f])
			}
		}
		if got := strs(src["related.hash"]); len(got) != 1 || got[0] != a.SHA256 {
			t.Errorf("attachment %s: related.hash %v, want [%s]", id, got, a.SHA256)
		}
		if msg := messages[fmt.Sprint(src["mimecast.message_doc_id"])]; msg == nil || msg["email.direction"] != src["email.direction"] ||
			!slices.Equal(strs(msg["related.user"]), strs(src["related.user"])) {
			t.Errorf("attachment %s: direction %v and related.user %v differ from its message's", id, src["email.direction"], src["related.user"])
		}
	}
	if directions["internal"] == 0 || directions["inbound"] == 0 || directions["outbound"] == 0 {
		t.Errorf("directions %v: the archive under test lacks internal, inbound or outbound mail", directions)
	}
	if unnamed == 0 {
		t.Errorf("the archive under test has no unnamed attachment; the blank name default went untested")
	}
	t.Logf("%d message bodies verified, %d unnamed attachments", bodies, unnamed)
	for id, src := range e.indexed("messages") {
		if src["mimecast.mailbox"] == victim {
			t.Errorf("document %s of excluded mailbox %s indexed", id, victim)
		}
		if src["mimecast.mailbox"] != ex.mailboxOf[id] {
			t.Errorf("document %s has mailbox %v, want %s", id, src["mimecast.mailbox"], ex.mailboxOf[id])
		}
	}

	firstDocs := [2]map[string]map[string]any{e.indexed("messages"), e.indexed("attachments")}

	// Second crawl, nothing changed: no detail and no file calls, no document rewritten.
	before := e.indexingTotal()
	e.sim.ResetStats()
	second := e.crawl(ctx, rules, withDetail)
	if !second.complete() {
		t.Fatalf("second crawl incomplete: %+v", second.results)
	}
	if n := detailCalls(); n != 0 {
		t.Errorf("second crawl made %d detail calls, want 0", n)
	}
	if n := fileCalls(); n != 0 {
		t.Errorf("second crawl made %d get-file calls, want 0", n)
	}
	if second.writer.Added != 0 || second.totals.Messages != 0 {
		t.Errorf("second crawl wrote %d documents (%d messages), want 0", second.writer.Added, second.totals.Messages)
	}
	if after := e.indexingTotal(); after != before {
		t.Errorf("Elasticsearch index operations went from %d to %d on a crawl with no change", before, after)
	}

	// New messages in two mailboxes: only they are fetched.
	var targets []string
	for _, m := range first.enum.Kept {
		if len(targets) < 2 {
			targets = append(targets, m.Address)
		}
	}
	added := 0
	for _, mb := range targets {
		ids, err := e.sim.AddMessages(mb, 3)
		if err != nil {
			t.Fatalf("add messages: %v", err)
		}
		added += len(ids)
	}
	e.sim.ResetStats()
	third := e.crawl(ctx, rules, withDetail)
	if !third.complete() {
		t.Fatalf("third crawl incomplete: %+v", third.results)
	}
	if n := detailCalls(); n != perMessage*int64(added) {
		t.Errorf("third crawl made %d detail calls, want %d (the new messages only)", n, perMessage*int64(added))
	}
	if n := fileCalls(); n != int64(added) {
		t.Errorf("third crawl made %d get-file calls, want %d (the new messages only)", n, added)
	}
	if third.totals.Messages != int64(added) {
		t.Errorf("third crawl indexed %d messages, want %d", third.totals.Messages, added)
	}
	e.assertIndexEquals(e.expect(truthFilter{rules: rules}))

	// The new messages were received "now", inside the overlap of the next run: it re-lists them
	// and skips them as already indexed, without a detail call.
	e.sim.ResetStats()
	fourth := e.crawl(ctx, rules, withDetail)
	if !fourth.complete() {
		t.Fatalf("fourth crawl incomplete: %+v", fourth.results)
	}
	if fourth.totals.Skipped != int64(added) {
		t.Errorf("fourth crawl skipped %d listed messages as indexed, want the %d in the overlap", fourth.totals.Skipped, added)
	}
	if n := detailCalls() + fileCalls(); n != 0 {
		t.Errorf("fourth crawl made %d detail and get-file calls, want 0", n)
	}
	return firstDocs[0], firstDocs[1]
}

func TestFilters(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, smallArchive())
	truth := e.sim.Truth()
	var domains []string
	seen := map[string]bool{}
	for _, mb := range truth.Mailboxes {
		if !mb.Local && !seen[mb.Domain] {
			seen[mb.Domain] = true
			domains = append(domains, strings.ToLower(mb.Domain))
		}
	}
	if len(domains) < 2 {
		t.Fatalf("need two non-local domains, have %v", domains)
	}
	// A subject that occurs in the archive, to exclude by rule.
	var subj string
	for _, mb := range truth.Mailboxes {
		for _, m := range mb.Messages {
			if len(m.Subject) > 8 && subj == "" {
				subj = m.Subject
			}
		}
	}
	start := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	rules := crawler.Rules{
		// Matches the first domain and its local sub-domain, which include_local lets in.
		IncludeDomains:   []rule.Regexp{rule.MustRegexp(`(.*\.)?` + regexp.QuoteMeta(domains[0]))},
		IncludeLocal:     true,
		IncludeMailboxes: []rule.Regexp{rule.MustRegexp(".+")},
	}
	f := truthFilter{rules: rules, start: start,
		excludeSubjects: []rule.Regexp{rule.MustRegexp(regexp.QuoteMeta(subj))},
		excludeNames:    []rule.Regexp{rule.MustRegexp(`(?i).*\.png`)},
		blankName:       "no-name.bin", views: []string{"INBOX"}}
	r := e.crawl(ctx, rules, func(o *crawler.Options) {
		o.StartDate = start
		o.ExcludeSubjects = f.excludeSubjects
		o.ExcludeNames = f.excludeNames
		o.BlankName = f.blankName
		o.BlankSubject = "(blank)"
		o.Views = f.views
	})
	if !r.complete() {
		t.Fatalf("crawl incomplete: %+v\n%s", r.results, e.log)
	}
	ex := e.expect(f)
	e.assertIndexEquals(ex)
	msgs := e.indexed("messages")
	locals, blanks := 0, 0
	for id, src := range msgs {
		if d := src["mimecast.domain"].(string); d != domains[0] {
			if strings.HasSuffix(d, "."+domains[0]) {
				locals++
			} else {
				t.Errorf("document %s of domain %v indexed; only %s and its local sub-domain are included", id, d, domains[0])
			}
		}
		if src["mimecast.view"] != "INBOX" {
			t.Errorf("document %s of view %v indexed; only INBOX configured", id, src["mimecast.view"])
		}
		if src["email.subject"] == subj {
			t.Errorf("document %s has the excluded subject %q", id, subj)
		}
		want := ex.messages[id].Subject
		if strings.TrimSpace(want) == "" {
			blanks++
			if src["email.subject"] != "(blank)" {
				t.Errorf("blank subject of %s indexed as %q, want the configured default", id, src["email.subject"])
			}
		} else if src["email.subject"] != want {
			t.Errorf("subject of %s is %q, want %q (UTF-8 decoded)", id, src["email.subject"], want)
		}
	}
	if locals == 0 {
		t.Errorf("no message of the local domain indexed although include_local is true")
	}
	names := 0
	for _, src := range e.indexed("attachments") {
		if strings.HasSuffix(strings.ToLower(src["email.attachments.file.name"].(string)), ".png") {
			t.Errorf("excluded attachment %v indexed", src["email.attachments.file.name"])
		}
		if src["email.attachments.file.name"] == "no-name.bin" {
			names++
		}
	}
	t.Logf("%d messages, %d blank subjects, %d unnamed attachments, %d local-domain messages", len(msgs), blanks, names, locals)
}

// TestFaults crawls through 429s, 503s, expiring tokens and two rejected bulk items: the index
// ends equal to the truth minus the permanently rejected document, which is recorded and holds
// its mailbox view's checkpoint back; the next run, with the rejection gone, completes it.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	opts := smallArchive()
	opts.TokenTTL = time.Second
	e := newEnv(t, opts)
	proxy := indextest.NewProxy(t, e.esURL)
	e.esAddr = proxy.URL
	ex := e.expect(truthFilter{})
	// Pick two messages of different mailbox views: one bulk item answered 429 once (retried),
	// one rejected with a mapping error (permanent).
	var retried, rejected string
	var rejectedKey state.Key
	var rejectedReceived time.Time
	for id, m := range ex.messages {
		switch {
		case retried == "":
			retried = id
		case rejected == "" && ex.mailboxOf[id] != ex.mailboxOf[retried]:
			rejected = id
			rejectedKey = state.Key{Mailbox: ex.mailboxOf[id], View: m.View}
			rejectedReceived, _ = time.Parse("2006-01-02T15:04:05-0700", m.Received)
		}
	}
	proxy.RejectTooMany(retried, 1)
	proxy.RejectMapping(rejected)
	e.sim.SetFaults([]simulator.Fault{
		// 40 ms a request and four workers make the crawl last several token lifetimes,
		// however fast the crawler has become.
		{PathPrefix: "/", LatencyMS: 40},
		{PathPrefix: "/api/archive/get-message-detail", Status: 503, Probability: 0.1},
		{PathPrefix: "/api/archive/get-file", Status: 429, Probability: 0.1, ResetMS: 5},
		{PathPrefix: "/api/archive/get-message-list", Status: 500, Probability: 0.1},
	})
	// Tokens live one second and the client keeps them one second past that: tokens end in a
	// 401 token_expired, a re-authentication and a retry.
	e.client.Close()
	e.client = e.newClient(time.Second)
	// With the detail, so that its faults fire too; get-file and the listing fail either way.
	r := e.crawl(ctx, crawler.Rules{}, func(o *crawler.Options) {
		o.MessageDetail = true
		o.ListingSlots, o.MessageWorkers = 2, 2
	})
	e.sim.SetFaults(nil)
	if n := e.client.Stats().TokenRefreshes; n < 2 {
		t.Errorf("%d token refreshes, want several expired tokens replaced", n)
	}
	if n := e.sim.Stats().Requests["/api/archive/get-message-list"][401] + e.sim.Stats().Requests["/api/archive/get-message-detail"][401] + e.sim.Stats().Requests["/api/archive/get-file"][401]; n == 0 {
		t.Errorf("no call was answered 401: the expired-token path went untested")
	}

	if proxy.Seen(retried) < 2 {
		t.Errorf("the document answered 429 was sent %d times, want a retry", proxy.Seen(retried))
	}
	st := e.sim.Stats()
	if st.RateLimited == 0 || requests(st, "/api/archive/get-message-detail") == 0 {
		t.Errorf("the faults did not fire: %+v", st)
	}
	if r.totals.DocsFailed != 1 {
		t.Errorf("%d documents failed, want exactly the one rejected for good", r.totals.DocsFailed)
	}
	e.assertIndexEquals(ex, rejected)
	if _, ok := e.indexed("messages")[rejected]; ok {
		t.Errorf("the rejected document %s is in the index", rejected)
	}
	for _, v := range r.results {
		key := state.Key{Mailbox: v.Mailbox, View: v.View}
		if key == rejectedKey && v.Outcome == crawler.Complete {
			t.Errorf("the mailbox view of the rejected document reports complete")
		}
		if key != rejectedKey && v.Outcome != crawler.Complete {
			t.Errorf("mailbox view %v failed: %s", key, v.Error)
		}
	}

	store, err := state.Open(e.statePath, state.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fails, err := store.Failures(nil)
	if err != nil || len(fails) != 1 || fails[0].DocID != rejected || fails[0].Status != 400 {
		t.Errorf("failed bucket: %+v (%v), want the one rejected document with status 400", fails, err)
	}
	pos, _, err := store.Position(rejectedKey)
	if err != nil {
		t.Fatal(err)
	}
	if !pos.Token.IsZero() && !pos.Token.Before(rejectedReceived) {
		t.Errorf("delta token %v passed the rejected message received %v", pos.Token, rejectedReceived)
	}
	if pos.Pass == nil {
		t.Errorf("the pass with the rejected message is not pending")
	} else if !pos.Pass.Low.IsZero() && !pos.Pass.Low.After(rejectedReceived) {
		t.Errorf("resume point %v passed the rejected message received %v", pos.Pass.Low, rejectedReceived)
	}
	store.Close()

	// The rejection persists, and new mail arrives in the blocked view: it is indexed, the
	// rejected message is tried again, and the token still does not pass it.
	if _, err := e.sim.AddMessages(rejectedKey.Mailbox, 2); err != nil {
		t.Fatal(err)
	}
	blocked := e.crawl(ctx, crawler.Rules{}, nil)
	if blocked.totals.DocsFailed != 1 || blocked.totals.Messages < 2 {
		t.Errorf("run with the rejection still in place: %d failed, %d indexed; want 1 failed and the new messages indexed", blocked.totals.DocsFailed, blocked.totals.Messages)
	}
	ex = e.expect(truthFilter{})
	e.assertIndexEquals(ex, rejected)
	if pos := e.position(rejectedKey); !pos.Token.IsZero() && !pos.Token.Before(rejectedReceived) {
		t.Errorf("delta token %v passed the rejected message received %v", pos.Token, rejectedReceived)
	}

	// The cause is fixed (no more rejection): the next run retries the message and completes.
	e.esAddr = e.esURL
	again := e.crawl(ctx, crawler.Rules{}, nil)
	if !again.complete() {
		t.Fatalf("run after the fix incomplete: %+v", again.results)
	}
	e.assertIndexEquals(ex)
	store, err = state.Open(e.statePath, state.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if fails, _ := store.Failures(nil); len(fails) != 0 {
		t.Errorf("failures still recorded after the message was indexed: %+v", fails)
	}
	if pos, _, _ := store.Position(rejectedKey); pos.Pass != nil || pos.Token.IsZero() {
		t.Errorf("position after the fix: %+v, want a completed pass", pos)
	}
}

// TestFullRecrawlRemovesWhatIsGone changes the archive and the rules under an indexed state:
// an incremental crawl does not see deletions, a full re-crawl makes the index equal the truth.
func TestFullRecrawlRemovesWhatIsGone(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, smallArchive())
	if r := e.crawl(ctx, crawler.Rules{}, nil); !r.complete() {
		t.Fatalf("first crawl incomplete: %+v", r.results)
	}
	truth := e.sim.Truth()
	var kept []simulator.TruthMailbox
	for _, mb := range truth.Mailboxes {
		if mb.Type == simulator.TypeMailbox && !mb.Local && len(mb.Messages) > 3 {
			kept = append(kept, mb)
		}
	}
	// Upstream: delete two messages (one with attachments), add three.
	deleted := 0
	for _, m := range kept[0].Messages {
		if deleted < 2 && (deleted == 1 || len(m.Attachments) > 0) {
			if err := e.sim.DeleteMessage(m.ID); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	if _, err := e.sim.AddMessages(kept[1].Address, 3); err != nil {
		t.Fatal(err)
	}
	// Rules: a subject that exists becomes excluded.
	subj := kept[1].Messages[0].Subject
	excl := []rule.Regexp{rule.MustRegexp(regexp.QuoteMeta(subj))}
	tweak := func(o *crawler.Options) { o.ExcludeSubjects = excl }

	inc := e.crawl(ctx, crawler.Rules{}, tweak)
	if !inc.complete() {
		t.Fatalf("incremental crawl incomplete: %+v", inc.results)
	}
	if got, want := len(e.indexed("messages")), len(e.expect(truthFilter{excludeSubjects: excl}).messages); got == want {
		t.Errorf("an incremental crawl already removed deleted messages (%d documents); only a full pass should", got)
	}

	full := e.crawl(ctx, crawler.Rules{}, func(o *crawler.Options) { tweak(o); o.Full = true })
	if !full.complete() {
		t.Fatalf("full crawl incomplete: %+v", full.results)
	}
	if full.totals.Deleted == 0 {
		t.Errorf("the full crawl deleted nothing")
	}
	e.assertIndexEquals(e.expect(truthFilter{excludeSubjects: excl}))

	// A later incremental crawl keeps it so and fetches nothing.
	e.sim.ResetStats()
	if r := e.crawl(ctx, crawler.Rules{}, tweak); !r.complete() || r.writer.Added != 0 {
		t.Errorf("incremental crawl after the full one: complete=%v, wrote %d documents", r.complete(), r.writer.Added)
	}
	e.assertIndexEquals(e.expect(truthFilter{excludeSubjects: excl}))
}

// messageHashes lists the sha256 of a (flattened) message document's email.attachments,
// sorted: one attachment is flattened into its fields, several stay a list.
// allInternal tells, from a flattened message document, whether its author, envelope
// sender and every recipient (at least one) are in domains.
func allInternal(src map[string]any, domains map[string]bool) bool {
	in := func(field string) (n int, ok bool) {
		for _, a := range strs(src[field]) {
			if !domains[a[strings.LastIndexByte(a, '@')+1:]] {
				return 0, false
			}
			n++
		}
		return n, true
	}
	from, ok1 := in("email.from.address")
	_, ok2 := in("email.sender.address")
	to, ok3 := in("email.to.address")
	cc, ok4 := in("email.cc.address")
	return ok1 && ok2 && ok3 && ok4 && from > 0 && to+cc > 0
}

// strs reads a flattened value that is a string or a list of them.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

func distinctSorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 0 && out[0] == "" {
		out = out[1:]
	}
	return out
}

func messageHashes(src map[string]any) string {
	var hs []string
	if h, ok := src["email.attachments.file.hash.sha256"].(string); ok {
		hs = append(hs, h)
	}
	list, _ := src["email.attachments"].([]any)
	for _, a := range list {
		file, _ := a.(map[string]any)["file"].(map[string]any)
		hash, _ := file["hash"].(map[string]any)
		hs = append(hs, fmt.Sprint(hash["sha256"]))
	}
	slices.Sort(hs)
	return strings.Join(hs, ",")
}

func truthHashes(m simulator.TruthMessage) string {
	var hs []string
	for _, a := range m.Attachments {
		hs = append(hs, a.SHA256)
	}
	slices.Sort(hs)
	return strings.Join(hs, ",")
}
