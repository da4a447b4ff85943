package alerts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
	"github.com/mimecrawl/mimecrawl/state"
)

// End-to-end: the simulator over a real socket, the real client, the real bulk writer
// against the real Elasticsearch (own index prefix), a bbolt state file.

var prefixSeq atomic.Int64

type world struct {
	t       *testing.T
	sim     *simulator.Server
	client  *mimecast.Client
	cluster *index.Cluster
	esURL   string
	store   *state.Store
	rules   *alerts.Rules
	cfg     config.Alerts
	sources []alerts.Source
	// opts, when set, adjusts the poller's options of every pass.
	opts func(*alerts.Options)
	// siemTypes, when set, are the SIEM types read (opts must set the same).
	siemTypes []string
	// logs, when set, wraps the log source of every pass.
	logs func(alerts.LogSource) alerts.LogSource
	// api, when set, wraps the client as Deps.API (the event sources' readers) of every pass.
	api func(*mimecast.Client) any
}

func newWorld(t *testing.T, o simulator.AlertOptions, sources ...alerts.Source) *world {
	t.Helper()
	return newWorldSim(t, simulator.Options{Alerts: o}, sources...)
}

func newWorldSim(t *testing.T, so simulator.Options, sources ...alerts.Source) *world {
	t.Helper()
	esURL := indextest.URL(t)
	sim, err := simulator.New(so)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	client, err := mimecast.New(mimecast.Config{BaseURL: srv.URL, ClientID: "demo-client", ClientSecret: "demo-secret",
		RetryAfterMultiplier: 1, MaxRetries: 10, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		MaxWait: 200 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	prefix := fmt.Sprintf("mctest-%d-a%d", os.Getpid(), prefixSeq.Add(1))
	t.Cleanup(func() { indextest.Remove(t, esURL, prefix) })
	zero := 0
	ctx := context.Background()
	cluster, err := index.Open(ctx, index.Config{Addresses: []string{esURL}, IndexPrefix: prefix, Namespace: indextest.Namespace(prefix), Replicas: &zero,
		FlushInterval: 50 * time.Millisecond, RetryBackoff: func(int) time.Duration { return 20 * time.Millisecond }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Ensure(ctx, alerts.Kinds(alerts.Sources)...); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db.alerts"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := config.Default().Alerts
	rules, err := alerts.NewRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) == 0 {
		sources = alerts.Sources
	}
	return &world{t: t, sim: sim, client: client, cluster: cluster, esURL: esURL, store: store, rules: rules, cfg: cfg, sources: sources}
}

// pass runs one pass as the command does: a fresh writer, Once, Close.
func (w *world) pass(ctx context.Context) alerts.PassSummary {
	w.t.Helper()
	writer, err := w.cluster.NewWriter()
	if err != nil {
		w.t.Fatal(err)
	}
	o := alerts.Options{Sources: w.sources, Lookback: 24 * time.Hour, Overlap: alerts.DefaultOptions().Overlap, PageSize: 25,
		AckGrace: 5 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(w.t)).Level(zerolog.ErrorLevel)}
	if w.opts != nil {
		w.opts(&o)
	}
	var logs alerts.LogSource = w.client
	if w.logs != nil {
		logs = w.logs(logs)
	}
	var apiReaders any = w.client
	if w.api != nil {
		apiReaders = w.api(w.client)
	}
	p, err := alerts.New(alerts.Deps{Logs: logs, Threats: w.client, SIEM: w.client, Sink: writer, Cursors: w.store,
		Rules: w.rules, Groups: alerts.NewGroupStore(w.cluster), Archive: w.cluster, Directory: w.client, Messages: w.client,
		Stream: alerts.NewStream(w.cluster), API: apiReaders}, o)
	if err != nil {
		w.t.Fatal(err)
	}
	sum := p.Once(ctx)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := writer.Close(cctx); err != nil {
		w.t.Fatalf("close writer: %v", err)
	}
	return sum
}

// expected returns the alerts the simulator's truth should give: id → priority; and the
// events of the event sources (audit): id → "event <dataset>".
func (w *world) expected() map[string]string {
	want := map[string]string{}
	for _, ta := range w.sim.AlertTruth("") {
		src := alerts.Source(ta.Source)
		if !slices.Contains(w.sources, src) {
			continue
		}
		if sp, _ := alerts.Spec(src); sp.Records == alerts.RecordEvents {
			if ev, err := alerts.Decode(src, ta.Record); err == nil {
				want[ev.ID] = "event " + sp.Dataset
			}
			continue
		}
		a, err := alerts.Normalize(src, ta.Record)
		if err != nil {
			continue // malformed: counted by the poller, never indexed
		}
		types := alerts.DefaultSIEMTypes
		if w.siemTypes != nil {
			types = w.siemTypes
		}
		if src == alerts.SIEM && !slices.Contains(types, a.Type) {
			continue
		}
		if d := w.rules.Decide(&a); d.Keep {
			want[a.ID] = a.Priority.String()
		}
	}
	return want
}

// indexed returns what the alerts index holds: id → mimecast.priority; and what the data
// streams of the event sources hold: id → "event <dataset>".
func (w *world) indexed() map[string]string {
	w.t.Helper()
	out := map[string]string{}
	if slices.Contains(alerts.Kinds(w.sources), alerts.AlertsKind) {
		w.indexedAlerts(out)
	}
	var seen []index.Kind // sources may share a data stream (the two threat-intel feeds)
	for _, sp := range alerts.Specs() {
		if sp.Records != alerts.RecordEvents || !slices.Contains(w.sources, sp.Name) || slices.Contains(seen, sp.Kind) {
			continue
		}
		seen = append(seen, sp.Kind)
		var ev struct {
			Hits struct {
				Hits []struct {
					ID     string `json:"_id"`
					Source struct {
						DataStream struct {
							Dataset string `json:"dataset"`
						} `json:"data_stream"`
					} `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		// Without the data stream API a stream appears at its first write: a source that wrote
		// nothing has none, which is no error here.
		name := w.cluster.IndexName(sp.Kind)
		res, err := http.Post(w.esURL+"/"+name+"/_refresh?ignore_unavailable=true&allow_no_indices=true", "application/json", nil)
		if err != nil {
			w.t.Fatal(err)
		}
		res.Body.Close()
		w.get("/"+name+"/_search?size=10000&_source=data_stream.dataset&ignore_unavailable=true&allow_no_indices=true", &ev)
		for _, h := range ev.Hits.Hits {
			if _, dup := out[h.ID]; dup {
				w.t.Errorf("%s event %s listed twice", sp.Name, h.ID)
			}
			out[h.ID] = "event " + h.Source.DataStream.Dataset
		}
	}
	return out
}

// indexedAlerts adds what the alerts index holds to out: id → mimecast.priority.
func (w *world) indexedAlerts(out map[string]string) {
	w.t.Helper()
	if err := w.cluster.RefreshKinds(context.Background(), alerts.AlertsKind, alerts.GroupsKind); err != nil {
		w.t.Fatal(err)
	}
	var res struct {
		Hits struct {
			Hits []struct {
				ID     string `json:"_id"`
				Source struct {
					Mimecast struct {
						Priority string `json:"priority"`
					} `json:"mimecast"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	w.get("/"+w.cluster.IndexName(alerts.AlertsKind)+"/_search?size=10000&_source=mimecast.priority", &res)
	for _, h := range res.Hits.Hits {
		if _, dup := out[h.ID]; dup {
			w.t.Errorf("alert %s listed twice", h.ID)
		}
		out[h.ID] = h.Source.Mimecast.Priority
	}
}

func (w *world) get(path string, out any) {
	w.t.Helper()
	res, err := http.Get(w.esURL + path)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		w.t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		w.t.Fatal(err)
	}
}

func compare(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the truth gives no alert: the test would prove nothing")
	}
	for id, p := range want {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("alert %s (%s) missing from the index", id, p)
		case g != p:
			t.Errorf("alert %s has priority %q, want %q", id, g, p)
		}
	}
	keepLow := slices.Contains(slices.Collect(maps.Values(want)), "low")
	for id, p := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("alert %s (%s) indexed but not expected", id, p)
		}
		if p == "low" && !keepLow {
			t.Errorf("low alert %s indexed although keep_low is off", id)
		}
	}
}

func seeded() simulator.AlertOptions {
	return simulator.AlertOptions{Attachment: 60, URL: 40, Impersonation: 16, DLP: 12, Threats: 12, SIEM: 80, Audit: 30, Span: 6 * time.Hour,
		Logs: simulator.LogOptions{ArchiveSearch: 30, Search: 12, View: 20, HeldRelease: 30, ThreatIntelCustomer: 40,
			ThreatIntelGrid: 25, SIEMCI: 45, ThreatIntelPageSize: 7}}
}

// After one pass the index holds exactly the truth's alerts that pass the rules, with their
// priorities; a second pass adds nothing.
func TestEndToEndOnceMatchesTruth(t *testing.T) {
	w := newWorld(t, seeded())
	sum := w.pass(context.Background())
	for _, s := range sum.Sources {
		if s.Error != "" {
			t.Errorf("%s: %s", s.Source, s.Error)
		}
	}
	want := w.expected()
	compare(t, w.indexed(), want)

	sum = w.pass(context.Background())
	var indexed int64
	for _, s := range sum.Sources {
		indexed += s.Indexed
	}
	if indexed != 0 {
		t.Errorf("second pass indexed %d new alerts; want none", indexed)
	}
	compare(t, w.indexed(), want)
}

// A 403 on one source leaves the others working.
func TestEndToEndForbiddenSource(t *testing.T) {
	w := newWorld(t, seeded(), alerts.AttachmentProtection, alerts.URLProtection)
	w.sim.SetForbidden([]string{"/api/ttp/attachment/get-logs"})
	sum := w.pass(context.Background())
	att, url := sum.Sources[0], sum.Sources[1]
	if !att.Forbidden || !strings.Contains(att.Permission, "Attachment Protection") {
		t.Errorf("attachment source = %+v; want forbidden naming its permission", att)
	}
	if url.Error != "" || url.Indexed == 0 {
		t.Errorf("url source = %+v; want it indexed", url)
	}
	w.sources = []alerts.Source{alerts.URLProtection}
	compare(t, w.indexed(), w.expected())
}

// Stopping passes at random points, then a pass to the end: the index equals the truth,
// nothing twice (ids) and nothing lost (cursors only cover acknowledged alerts).
func TestEndToEndInterruptedPasses(t *testing.T) {
	interruptThenComplete(t, newWorld(t, seeded()))
}

// interruptThenComplete cuts four passes short at random moments (20 to 320 ms), then runs one
// to its end, which must leave the index equal to the truth. The seed of the moments is
// logged; ALERTS_TEST_SEED sets it.
func interruptThenComplete(t *testing.T, w *world) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ALERTS_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ALERTS_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (set ALERTS_TEST_SEED=%d to repeat it)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(20+r.IntN(300))*time.Millisecond)
		w.pass(ctx)
		cancel()
		t.Logf("interrupted pass %d", i)
	}
	sum := w.pass(context.Background())
	for _, s := range sum.Sources {
		if s.Error != "" {
			t.Errorf("final pass %s: %s", s.Source, s.Error)
		}
	}
	compare(t, w.indexed(), w.expected())
}

// attachment builds a raw attachment-protection record.
func attachment(to, hash, name, result string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"senderAddress": "evil@bad.example", "recipientAddress": to, "fileName": name, "fileType": "application/pdf",
		"fileHash": hash, "result": result, "actionTriggered": "sandbox, hold", "route": "inbound",
		"messageId": "<" + to + "@bad.example>", "subject": "invoice", "definition": "Default",
	})
	return b
}

// One malicious attachment to many recipients across several passes, delivered twice and
// out of order: one group with the right counts and first/last seen.
func TestEndToEndGroupAcrossPasses(t *testing.T) {
	w := newWorld(t, simulator.AlertOptions{Enabled: true}, alerts.AttachmentProtection)
	hash := strings.Repeat("ab", 32)
	now := time.Now().UTC().Truncate(time.Second)
	add := func(at time.Time, recipients ...string) {
		var recs []json.RawMessage
		for _, r := range recipients {
			recs = append(recs, attachment(r, hash, "invoice.pdf", "malicious"))
		}
		if _, err := w.sim.AddAlerts(simulator.SourceAttachment, recs, at); err != nil {
			t.Fatal(err)
		}
	}
	// Every time is inside the overlap of the previous pass: that is how far late events
	// are caught.
	add(now.Add(-5*time.Minute), "a@corp.example", "b@corp.example")
	w.pass(context.Background())
	// Later events, one of them recorded out of order (older than the previous pass's).
	add(now.Add(-2*time.Minute), "c@corp.example")
	add(now.Add(-8*time.Minute), "d@corp.example")
	w.pass(context.Background())
	// The same event delivered again.
	add(now.Add(-2*time.Minute), "c@corp.example")
	w.pass(context.Background())

	w.indexed() // refresh
	var res struct {
		Hits struct {
			Hits []struct {
				Source alerts.Group `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	w.get("/"+w.cluster.IndexName(alerts.GroupsKind)+"/_search?size=100", &res)
	if len(res.Hits.Hits) != 1 {
		t.Fatalf("%d groups, want 1", len(res.Hits.Hits))
	}
	g := res.Hits.Hits[0].Source
	if g.RecipientCount != 4 || g.AlertCount != 4 || g.SHA256 != hash || g.Priority != "high" {
		t.Errorf("group = %+v; want 4 recipients and 4 alerts, the hash, priority high", g)
	}
	if !g.FirstSeen.Equal(now.Add(-8*time.Minute)) || !g.LastSeen.Equal(now.Add(-2*time.Minute)) {
		t.Errorf("first/last seen %s / %s; want %s / %s", g.FirstSeen, g.LastSeen, now.Add(-8*time.Minute), now.Add(-2*time.Minute))
	}
}

// An event recorded late, inside the overlap, is indexed on the next pass, once.
func TestEndToEndLateEventInOverlap(t *testing.T) {
	w := newWorld(t, simulator.AlertOptions{Enabled: true}, alerts.AttachmentProtection)
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := w.sim.AddAlerts(simulator.SourceAttachment, []json.RawMessage{attachment("a@corp.example", strings.Repeat("01", 32), "a.pdf", "malicious")}, now.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	w.pass(context.Background())
	// Recorded now, dated a minute before the previous pass's end.
	if _, err := w.sim.AddAlerts(simulator.SourceAttachment, []json.RawMessage{attachment("b@corp.example", strings.Repeat("02", 32), "b.pdf", "malicious")}, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	sum := w.pass(context.Background())
	if s := sum.Sources[0]; s.Indexed != 1 {
		t.Errorf("second pass = %+v; want the late event indexed", s)
	}
	compare(t, w.indexed(), w.expected())
}

// Selections and a CEL filter apply end to end: the index holds exactly what they keep.
func TestEndToEndSelectionsAndFilter(t *testing.T) {
	w := newWorld(t, seeded(), alerts.AttachmentProtection, alerts.URLProtection, alerts.DLP)
	cfg := config.Default().Alerts
	cfg.Routes = []string{"inbound"}
	cfg.Filters = []config.AlertFilter{{Expression: `source == "dlp"`, Action: config.FilterExclude}}
	rules, err := alerts.NewRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.rules = rules
	w.pass(context.Background())
	want := w.expected()
	compare(t, w.indexed(), want)
	// The rules do exclude something here, or the test would not show them applied.
	all, err := alerts.NewRules(config.Default().Alerts)
	if err != nil {
		t.Fatal(err)
	}
	w.rules = all
	if len(w.expected()) <= len(want) {
		t.Errorf("the selections and filter excluded nothing (%d alerts either way)", len(want))
	}
}

// alerts.siem.mode: stream reads /siem/v1/events/cg: the pages repeat events of the page
// before, the poller drops them, and the index equals the truth for SIEM; a second pass adds
// nothing.
func TestEndToEndSIEMStream(t *testing.T) {
	w := newWorld(t, seeded(), alerts.SIEM)
	cfg := config.Default().Alerts
	if cfg.SIEM.Mode != config.SIEMBatch {
		t.Fatalf("default alerts.siem.mode = %q, want batch", cfg.SIEM.Mode)
	}
	cfg.SIEM.Mode = config.SIEMStream
	w.opts = func(o *alerts.Options) {
		o.SIEMTypes, o.SIEMStream = cfg.SIEM.Types, cfg.SIEM.Mode == config.SIEMStream
	}
	sum := w.pass(context.Background())
	s := sum.Sources[0]
	if s.Error != "" {
		t.Fatalf("siem stream pass: %+v", s)
	}
	if s.Repeats == 0 {
		t.Errorf("no repeated event dropped (%+v); the stream's pages overlap, so the test would prove nothing", s)
	}
	if _, ok, err := w.store.Cursor(alerts.CursorName(alerts.SIEM, "stream")); err != nil || !ok {
		t.Errorf("no stream cursor saved (err %v)", err)
	}
	want := w.expected()
	compare(t, w.indexed(), want)
	st := w.sim.Stats()
	if len(st.Requests["/siem/v1/batch/events/cg"]) != 0 || len(st.Requests["/siem/v1/events/cg"]) == 0 {
		t.Errorf("requests %v; want the stream endpoint read and the batch endpoint not", st.Requests)
	}

	sum = w.pass(context.Background())
	if s := sum.Sources[0]; s.Indexed != 0 || s.Error != "" {
		t.Errorf("second stream pass = %+v; want nothing new", s)
	}
	compare(t, w.indexed(), want)
}

// contentWorld is a simulator whose archive was received within the hours its seeded alerts
// span, so that content view's window around an alert can hold its message.
func contentWorld(t *testing.T) *world {
	now := time.Now().UTC().Truncate(time.Second)
	return newWorldSim(t, simulator.Options{Epoch: now, Span: 6 * time.Hour, Messages: 30,
		Alerts: simulator.AlertOptions{Attachment: 60, Span: 6 * time.Hour, End: now}}, alerts.AttachmentProtection)
}

// archivedMail is where the simulator archived a message (INBOX) and its subject.
type archivedMail struct{ mailbox, subject string }

// archivedSubjects returns every archived INBOX message by its Message-ID (lower case,
// without brackets), read from the simulator's truth and message details.
func (w *world) archivedSubjects() map[string]archivedMail {
	w.t.Helper()
	out := map[string]archivedMail{}
	for _, mb := range w.sim.TruthOf(simulator.TruthQuery{SkipAttachments: true}).Mailboxes {
		for _, m := range mb.Messages {
			if m.View != "INBOX" {
				continue
			}
			d, err := w.client.MessageDetail(context.Background(), m.ID)
			if err != nil {
				w.t.Fatal(err)
			}
			out[strings.ToLower(strings.Trim(d.MimeMessageID, "<>"))] = archivedMail{strings.ToLower(mb.Address), d.Subject}
		}
	}
	return out
}

// alertDoc is what the content view tests read of an indexed alert.
type alertDoc struct {
	Email struct {
		MessageID string `json:"message_id"`
		From      struct {
			Address []string `json:"address"`
		} `json:"from"`
		To struct {
			Address []string `json:"address"`
		} `json:"to"`
	} `json:"email"`
	Mimecast struct {
		Archive struct {
			Subject string `json:"subject"`
		} `json:"archive"`
	} `json:"mimecast"`
}

// alertDocs returns the indexed alerts by id.
func (w *world) alertDocs() map[string]alertDoc {
	w.t.Helper()
	w.indexed() // refresh
	var res struct {
		Hits struct {
			Hits []struct {
				ID     string   `json:"_id"`
				Source alertDoc `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	w.get("/"+w.cluster.IndexName(alerts.AlertsKind)+"/_search?size=10000", &res)
	out := map[string]alertDoc{}
	for _, h := range res.Hits.Hits {
		out[h.ID] = h.Source
	}
	return out
}

// With content view on and no crawl done, the alerts about archived messages (about a third
// of the seeded ones) get their archive subject from the message detail; the others none.
func TestEndToEndContentView(t *testing.T) {
	w := contentWorld(t)
	w.opts = func(o *alerts.Options) {
		o.ContentView = true
		o.ContentWindow = 7 * time.Hour // the simulated archive's received times are not the alerts'
	}
	sum := w.pass(context.Background())
	if s := sum.Sources[0]; s.Error != "" {
		t.Fatalf("pass: %+v", s)
	}
	compare(t, w.indexed(), w.expected())
	archive := w.archivedSubjects()
	linked, elsewhere := 0, 0
	for id, d := range w.alertDocs() {
		m, archived := archive[strings.ToLower(strings.Trim(d.Email.MessageID, "<>"))]
		// Content view looks in the mailboxes the alert names; the simulator files some
		// seeded alerts under a recipient that is not the mailbox holding the message.
		named := archived && (slices.Contains(d.Email.To.Address, m.mailbox) || slices.Contains(d.Email.From.Address, m.mailbox))
		got := d.Mimecast.Archive.Subject
		switch {
		case named && got != m.subject:
			t.Errorf("alert %s about message %s archived for %s: archive subject %q, want %q", id, d.Email.MessageID, m.mailbox, got, m.subject)
		case !named && got != "":
			t.Errorf("alert %s about a message not archived in its mailboxes has archive subject %q", id, got)
		case named:
			linked++
		case archived:
			elsewhere++
		}
	}
	if linked == 0 {
		t.Error("no indexed alert is about an archived message: the test would prove nothing")
	}
	t.Logf("%d alerts linked to the archive by content view; %d about a message archived in a mailbox they do not name", linked, elsewhere)
}

// A 403 on get-message-detail: every alert is still indexed, and content view warns exactly
// once.
func TestEndToEndContentViewForbidden(t *testing.T) {
	w := contentWorld(t)
	w.sim.SetForbidden([]string{"/api/archive/get-message-detail"})
	var buf syncBuffer
	w.opts = func(o *alerts.Options) {
		o.ContentView, o.ContentWindow = true, 7*time.Hour
		o.Logger = zerolog.New(&buf).Level(zerolog.WarnLevel)
	}
	sum := w.pass(context.Background())
	if s := sum.Sources[0]; s.Error != "" || s.Indexed == 0 {
		t.Fatalf("pass: %+v", s)
	}
	compare(t, w.indexed(), w.expected())
	for id, d := range w.alertDocs() {
		if d.Mimecast.Archive.Subject != "" {
			t.Errorf("alert %s has an archive subject although the detail is forbidden", id)
		}
	}
	if n := strings.Count(buf.String(), "content view not permitted"); n != 1 {
		t.Errorf("%d content view warnings, want exactly 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "Archive | Search Content View") {
		t.Errorf("the warning does not name the permission:\n%s", buf.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the poller's goroutines.
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
