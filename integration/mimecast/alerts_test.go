package mimecast_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// alertEnv is a simulator whose clock stands still at 12:00, with every alert source seeded
// over the 10 hours before.
func alertEnv(t *testing.T, mod func(*simulator.Options)) (*env, *clock) {
	t.Helper()
	clk := newClock()
	o := simulator.Options{Mailboxes: 3, Messages: 5, Now: clk.Now, Alerts: simulator.AlertOptions{
		Attachment: 30, URL: 20, Impersonation: 12, DLP: 9, Threats: 25, SIEM: 80, Span: 10 * time.Hour, SIEMFileEvents: 6}}
	if mod != nil {
		mod(&o)
	}
	return newEnv(t, o), clk
}

func truthRecords(sim *simulator.Server, source string) []string {
	var out []string
	for _, a := range sim.AlertTruth(source) {
		out = append(out, string(a.Record))
	}
	slices.Sort(out)
	return out
}

func sorted(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}

func TestSecurityLogsPageOldestFirstToTheEnd(t *testing.T) {
	e, clk := alertEnv(t, nil)
	c := e.client(t, nil)
	ctx := context.Background()
	kinds := map[mimecast.LogKind]string{
		mimecast.AttachmentLogs: simulator.SourceAttachment, mimecast.URLLogs: simulator.SourceURL,
		mimecast.ImpersonationLogs: simulator.SourceImpersonation, mimecast.DLPLogs: simulator.SourceDLP,
	}
	for kind, source := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			want := truthRecords(e.sim, source)
			q := mimecast.LogQuery{From: clk.Now().Add(-11 * time.Hour), To: clk.Now(), OldestFirst: true, PageSize: 4}
			var got []string
			var times []string
			for pages := 0; ; pages++ {
				if pages > 50 {
					t.Fatal("paging does not end")
				}
				p, err := c.SecurityLogs(ctx, kind, q)
				if err != nil {
					t.Fatalf("page %d: %v", pages, err)
				}
				if p.Total != len(want) {
					t.Errorf("Total = %d, want %d", p.Total, len(want))
				}
				for _, r := range p.Records {
					got = append(got, string(r))
					var rec map[string]any
					if err := json.Unmarshal(r, &rec); err != nil {
						t.Fatal(err)
					}
					ts, _ := rec["date"].(string)
					if ts == "" {
						ts, _ = rec["eventTime"].(string)
					}
					times = append(times, ts)
				}
				if p.CaughtUp != (p.Next == "") {
					t.Errorf("CaughtUp %v with Next %q", p.CaughtUp, p.Next)
				}
				if p.Next == "" {
					break
				}
				q.PageToken = p.Next
			}
			if !slices.Equal(sorted(got), want) {
				t.Errorf("got %d records, want the %d of the truth exactly once, as served", len(got), len(want))
			}
			if !slices.IsSorted(times) {
				t.Error("not oldest first")
			}
		})
	}
}

func TestSecurityLogsFilterIsSent(t *testing.T) {
	e, clk := alertEnv(t, nil)
	c := e.client(t, nil)
	p, err := c.SecurityLogs(context.Background(), mimecast.AttachmentLogs, mimecast.LogQuery{
		From: clk.Now().Add(-11 * time.Hour), PageSize: 100, Filter: map[string]any{"result": "malicious", "from": "ignored"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) == 0 {
		t.Fatal("no malicious record")
	}
	for _, r := range p.Records {
		if !strings.Contains(string(r), `"result":"malicious"`) {
			t.Errorf("filter not applied: %s", r)
		}
	}
}

func TestSecurityLogsEmptyFinalPageWithNext(t *testing.T) {
	e, clk := alertEnv(t, func(o *simulator.Options) { o.EmptyLastPage = true })
	c := e.client(t, nil)
	q := mimecast.LogQuery{From: clk.Now().Add(-11 * time.Hour), OldestFirst: true, PageSize: 100}
	p, err := c.SecurityLogs(context.Background(), mimecast.DLPLogs, q)
	if err != nil || len(p.Records) != 9 || p.Next == "" {
		t.Fatalf("first page: %d records, next %q, %v", len(p.Records), p.Next, err)
	}
	// The client hands the empty page's token over as served: following it, until a page
	// has none, is the poller's paging rule.
	q.PageToken = p.Next
	p, err = c.SecurityLogs(context.Background(), mimecast.DLPLogs, q)
	if err != nil || len(p.Records) != 0 || p.Next == "" || p.CaughtUp {
		t.Fatalf("empty page with next: %+v, %v; want its token as served", p, err)
	}
	q.PageToken = p.Next
	p, err = c.SecurityLogs(context.Background(), mimecast.DLPLogs, q)
	if err != nil || len(p.Records) != 0 || p.Next != "" || !p.CaughtUp {
		t.Fatalf("page after the empty one: %+v, %v; want the end", p, err)
	}
}

// Every token key and total the threat feed may use reaches the caller: @nextPage,
// nextPage, nextPageToken, a next link, the threat-intel feed's header; empty pages in the
// middle carry tokens, and the stated total is returned.
func TestThreatEventsTokenKeysTotalsAndEmptyPages(t *testing.T) {
	for _, key := range []string{"@nextPage", "nextPage", "nextPageToken", "next", "header"} {
		t.Run(key, func(t *testing.T) {
			e, clk := alertEnv(t, func(o *simulator.Options) {
				o.Alerts.ThreatsWrapper = "events"
				o.Alerts.Paging = simulator.AlertPaging{TokenKey: key, TotalKey: "total", EmptyPages: true}
			})
			c := e.client(t, nil)
			q := mimecast.ThreatQuery{Start: clk.Now().Add(-11 * time.Hour), OldestFirst: true, PageSize: 6}
			var got []string
			empties := 0
			for range 40 {
				p, err := c.ThreatEvents(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				if p.Total != 25 {
					t.Errorf("total %d, want 25", p.Total)
				}
				if len(p.Records) == 0 && p.Next != "" {
					empties++
				}
				for _, r := range p.Records {
					got = append(got, string(r))
				}
				if p.Next == "" {
					break
				}
				q.PageToken = p.Next
			}
			if want := truthRecords(e.sim, simulator.SourceThreats); !slices.Equal(sorted(got), want) {
				t.Errorf("%d threats, want %d", len(got), len(want))
			}
			if empties == 0 {
				t.Error("no empty page with a token: the test would prove nothing")
			}
		})
	}
}

func TestSecurityLogsFailOn200IsAnError(t *testing.T) {
	e, clk := alertEnv(t, nil)
	c := e.client(t, nil)
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/api/ttp/url/get-logs", FailItems: true}})
	p, err := c.SecurityLogs(context.Background(), mimecast.URLLogs, mimecast.LogQuery{From: clk.Now().Add(-time.Hour), PageToken: "tok"})
	var me *mimecast.Error
	if !errors.As(err, &me) || me.Status != http.StatusOK || me.Code != "err_validation_null" || me.Retryable {
		t.Fatalf("error = %v; want a permanent fail[] error", err)
	}
	if p.Next != "" || p.Records != nil {
		t.Errorf("a rejected page gave %+v; nothing may advance", p)
	}
}

func TestAlertSourceForbiddenOthersWork(t *testing.T) {
	e, clk := alertEnv(t, nil)
	c := e.client(t, nil)
	ctx := context.Background()
	e.sim.SetForbidden([]string{"/api/ttp/url/get-logs", "/siem/v1/batch/events/cg"})
	_, err := c.SecurityLogs(ctx, mimecast.URLLogs, mimecast.LogQuery{})
	var me *mimecast.Error
	if !mimecast.IsForbidden(err) || !errors.As(err, &me) || me.Permission != "Monitoring | URL Protection | Read" || mimecast.IsRetryable(err) {
		t.Errorf("url logs: %v", err)
	}
	_, err = c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: "receipt"})
	if !mimecast.IsForbidden(err) || !strings.Contains(err.Error(), "Threat and Security Events (SIEM)") {
		t.Errorf("siem batch: %v", err)
	}
	if _, err := c.SecurityLogs(ctx, mimecast.AttachmentLogs, mimecast.LogQuery{From: clk.Now().Add(-time.Hour)}); err != nil {
		t.Errorf("attachment logs next to forbidden url logs: %v", err)
	}
	if _, err := c.SIEMEvents(ctx, mimecast.SIEMStreamQuery{}); err != nil {
		t.Errorf("siem stream next to forbidden batch: %v", err)
	}
	if _, err := c.ThreatEvents(ctx, mimecast.ThreatQuery{Start: clk.Now().Add(-time.Hour)}); err != nil {
		t.Errorf("threats: %v", err)
	}
}

func TestRESTErrorBody(t *testing.T) {
	e, clk := alertEnv(t, nil)
	c := e.client(t, nil)
	ctx := context.Background()
	_, err := c.ThreatEvents(ctx, mimecast.ThreatQuery{}) // no start: the API requires one
	var me *mimecast.Error
	if !errors.As(err, &me) || me.Status != http.StatusBadRequest || me.Code != "err_validation_null" ||
		!strings.Contains(me.Message, "timestampRangeStartsAt") || me.Retryable {
		t.Errorf("threats without start: %v", err)
	}
	_, err = c.SIEMEvents(ctx, mimecast.SIEMStreamQuery{Start: clk.Now().Add(-25 * time.Hour)})
	if !errors.As(err, &me) || me.Status != http.StatusBadRequest || me.Code != "err_validation_date" {
		t.Errorf("siem stream older than 24 h: %v", err)
	}
	_, err = c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: "receipt", Start: clk.Now().Add(-9 * 24 * time.Hour)})
	if !errors.As(err, &me) || me.Status != http.StatusBadRequest {
		t.Errorf("siem batch older than 7 days: %v", err)
	}
}

func TestThreatEventsWrappersAndDetails(t *testing.T) {
	for _, wrapper := range []string{"value", "data", "events"} {
		t.Run(wrapper, func(t *testing.T) {
			e, clk := alertEnv(t, func(o *simulator.Options) { o.Alerts.ThreatsWrapper = wrapper })
			c := e.client(t, nil)
			q := mimecast.ThreatQuery{Start: clk.Now().Add(-11 * time.Hour), OldestFirst: true, PageSize: 6}
			var got []string
			for range 20 {
				p, err := c.ThreatEvents(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range p.Records {
					got = append(got, string(r))
				}
				if p.Next == "" {
					if !p.CaughtUp {
						t.Error("last page not caught up")
					}
					break
				}
				q.PageToken = p.Next
			}
			if want := truthRecords(e.sim, simulator.SourceThreats); !slices.Equal(sorted(got), want) {
				t.Errorf("%d threats, want %d", len(got), len(want))
			}
			var rec struct{ ID string }
			_ = json.Unmarshal([]byte(got[0]), &rec)
			d, err := c.ThreatDetails(context.Background(), rec.ID)
			if err != nil || !json.Valid(d) || !bytes.Contains(d, []byte(`"recipients"`)) {
				t.Errorf("details: %s, %v", d, err)
			}
		})
	}
}

func TestThreatEventsUnknownShapeWarnsOnce(t *testing.T) {
	e, clk := alertEnv(t, func(o *simulator.Options) { o.Alerts.ThreatsWrapper = "items" })
	c := e.client(t, nil)
	for range 2 {
		_, err := c.ThreatEvents(context.Background(), mimecast.ThreatQuery{Start: clk.Now().Add(-11 * time.Hour)})
		if err == nil || !strings.Contains(err.Error(), "unknown page shape") {
			t.Fatalf("error = %v", err)
		}
	}
	if n := strings.Count(e.logs.String(), "unknown page shape"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, e.logs)
	}
}

// batchFiles lists every batch file of typ until caught up.
func batchFiles(t *testing.T, c *mimecast.Client, typ string) ([]mimecast.SIEMFile, string) {
	t.Helper()
	q := mimecast.SIEMBatchQuery{Type: typ, PageSize: 2}
	var files []mimecast.SIEMFile
	for range 100 {
		p, err := c.SIEMBatch(context.Background(), q)
		if err != nil {
			t.Fatalf("batch %s: %v", typ, err)
		}
		if p.Next == "" {
			t.Fatal("@nextPage missing")
		}
		files = append(files, p.Files...)
		q.NextPage = p.Next
		if p.CaughtUp {
			return files, p.Next
		}
	}
	t.Fatal("never caught up")
	return nil, ""
}

func TestSIEMBatchFilesAreStreamedWithoutBearer(t *testing.T) {
	e, _ := alertEnv(t, nil)
	c := e.client(t, nil)
	seen := map[string]bool{}
	malformed := 0
	for _, typ := range simulator.SIEMTypes {
		files, _ := batchFiles(t, c, typ)
		for _, f := range files {
			if f.Expiry.IsZero() || f.Size <= 0 {
				t.Errorf("file metadata %+v", f)
			}
			err := c.SIEMFileEvents(context.Background(), f, func(rec json.RawMessage) error {
				seen[string(rec)] = true
				return nil
			})
			switch {
			case errors.Is(err, mimecast.ErrMalformedFile):
				malformed++
				if mimecast.IsRetryable(err) {
					t.Errorf("malformed file is retryable: %v", err)
				}
			case err != nil:
				t.Fatalf("file: %v", err)
			}
		}
	}
	if malformed != 1 {
		t.Errorf("%d malformed files, want 1", malformed)
	}
	var got []string
	for k := range seen {
		got = append(got, k)
	}
	if want := truthRecords(e.sim, simulator.SourceSIEM); !slices.Equal(sorted(got), want) {
		t.Errorf("%d distinct events from the files (good lines of the malformed one included), truth %d", len(got), len(want))
	}
	if n := e.sim.Stats().BearerOnDownload; n != 0 {
		t.Errorf("%d downloads carried the bearer token", n)
	}
}

func TestSIEMFileExpired(t *testing.T) {
	e, clk := alertEnv(t, nil)
	c := e.client(t, nil)
	files, _ := batchFiles(t, c, "receipt")
	clk.Set(2*time.Minute, clk.Now()) // past the 60 s download lifetime
	err := c.SIEMFileEvents(context.Background(), files[0], func(json.RawMessage) error {
		t.Error("record from an expired file")
		return nil
	})
	if !errors.Is(err, mimecast.ErrExpiredFile) || mimecast.IsRetryable(err) || mimecast.IsForbidden(err) {
		t.Errorf("error = %v; want a permanent ErrExpiredFile", err)
	}
	if strings.Contains(err.Error(), "/_download/") {
		t.Errorf("error leaks the signed URL: %v", err)
	}
}

func TestSIEMFileMalformedShapes(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(s))
		_ = zw.Close()
		return b.Bytes()
	}
	bodies := map[string][]byte{
		"/plain":     []byte(`{"type":"receipt"}` + "\n"),
		"/partial":   []byte(`{"type":"receipt"}` + "\n" + `{"type":"av"}`),
		"/long":      gz(`{"a":1}` + "\n" + `{"x":"` + strings.Repeat("y", mimecast.MaxSIEMLine) + `"}` + "\n"),
		"/array":     gz(`{"a":1}` + "\n[1,2]\n"),
		"/truncated": gz(`{"a":1}` + "\n" + `{"b":2}` + "\n")[:30],
		"/good":      gz(`{"a":1}` + "\n\n" + `{"b":2}` + "\n"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bodies[r.URL.Path])
	}))
	t.Cleanup(srv.Close)
	e, _ := alertEnv(t, nil)
	c := e.client(t, nil)
	// Plain NDJSON (not gzip) is read as it is, a last line without its newline too.
	good := map[string]int{"/good": 2, "/plain": 1, "/partial": 2}
	for path, wantGood := range map[string]int{"/plain": 1, "/partial": 2, "/long": 1, "/array": 1, "/truncated": -1, "/good": 2} {
		var n int
		err := c.SIEMFileEvents(context.Background(), mimecast.SIEMFile{URL: srv.URL + path}, func(json.RawMessage) error { n++; return nil })
		if good[path] > 0 {
			if err != nil || n != wantGood {
				t.Errorf("%s: %d records, %v; want %d", path, n, err, wantGood)
			}
			continue
		}
		if !errors.Is(err, mimecast.ErrMalformedFile) {
			t.Errorf("%s: error %v; want ErrMalformedFile", path, err)
		}
		if wantGood >= 0 && n != wantGood {
			t.Errorf("%s: %d good records delivered before the error, want %d", path, n, wantGood)
		}
	}
	stop := errors.New("stop")
	err := c.SIEMFileEvents(context.Background(), mimecast.SIEMFile{URL: srv.URL + "/good"}, func(json.RawMessage) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}
}

func TestSIEMEventsPagesToCaughtUp(t *testing.T) {
	e, clk := alertEnv(t, nil)
	c := e.client(t, nil)
	q := mimecast.SIEMStreamQuery{Start: clk.Now().Add(-23 * time.Hour), PageSize: 10}
	seen := map[string]bool{}
	repeats := 0
	for range 100 {
		p, err := c.SIEMEvents(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			if seen[string(r)] {
				repeats++
			}
			seen[string(r)] = true
		}
		if p.Next == "" {
			t.Fatal("no @nextPage")
		}
		q = mimecast.SIEMStreamQuery{NextPage: p.Next, PageSize: 10}
		if p.CaughtUp {
			break
		}
	}
	var got []string
	for k := range seen {
		got = append(got, k)
	}
	if want := truthRecords(e.sim, simulator.SourceSIEM); !slices.Equal(sorted(got), want) {
		t.Errorf("%d distinct events, truth %d", len(got), len(want))
	}
	if repeats == 0 {
		t.Error("the stream repeated nothing; the simulator should")
	}
	p, err := c.SIEMEvents(context.Background(), q)
	if err != nil || len(p.Records) != 0 || !p.CaughtUp || p.Next == "" {
		t.Errorf("caught-up page: %+v, %v", p, err)
	}
}

// A 429 on the SIEM batch endpoint makes SIEM batch calls wait, not the legacy ones.
func TestSIEM429DoesNotStallLegacyCalls(t *testing.T) {
	e, clk := alertEnv(t, func(o *simulator.Options) {
		o.Alerts.SIEMBatchLimit = simulator.RateWindow{Calls: 1, Per: time.Hour}
	})
	c := e.client(t, func(cfg *mimecast.Config) {
		cfg.MaxWait = 10 * time.Minute
		cfg.MaxRetries = 3
		cfg.SIEMBatchBudget = mimecast.Budget{Calls: -1} // let the server's 429 through
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: "receipt"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Type: "receipt"})
		done <- err
	}()
	for e.sim.Stats().RateLimited == 0 {
		select {
		case err := <-done:
			t.Fatalf("second batch call returned before any 429: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	// A guard far below the 10 minutes the batch group now waits: a shared pacer would
	// fail here instead of hanging the test.
	guard, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	if _, err := c.SecurityLogs(guard, mimecast.AttachmentLogs, mimecast.LogQuery{From: clk.Now().Add(-time.Hour)}); err != nil {
		t.Fatalf("legacy call while SIEM batch is rate limited: %v", err)
	}
	if _, err := c.SIEMEvents(guard, mimecast.SIEMStreamQuery{}); err != nil {
		t.Fatalf("SIEM stream call while SIEM batch is rate limited: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the rate-limited batch call did not wait: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled batch call: %v", err)
	}
}

func TestRESTCallsReauthenticateAndRetry(t *testing.T) {
	e, _ := alertEnv(t, nil)
	c := e.client(t, nil)
	ctx := context.Background()
	if _, err := c.SIEMEvents(ctx, mimecast.SIEMStreamQuery{}); err != nil {
		t.Fatal(err)
	}
	e.sim.ExpireTokens()
	e.sim.SetFaults([]simulator.Fault{{PathPrefix: "/siem/v1/events/cg", Status: http.StatusServiceUnavailable, Count: 2}})
	if _, err := c.SIEMEvents(ctx, mimecast.SIEMStreamQuery{}); err != nil {
		t.Fatalf("after token expiry and two 503s: %v", err)
	}
	st := e.sim.Stats()
	if st.TokensIssued != 2 || requests(st, "/siem/v1/events/cg", http.StatusServiceUnavailable) != 2 || c.Stats().Retries < 2 {
		t.Errorf("tokens %d, 503s %d, retries %d", st.TokensIssued, requests(st, "/siem/v1/events/cg", 503), c.Stats().Retries)
	}
}
