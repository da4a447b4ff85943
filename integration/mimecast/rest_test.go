package mimecast

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestDecodeRESTPage(t *testing.T) {
	cases := []struct {
		body     string
		records  int
		next     string
		caughtUp *bool
		wrapper  string
		total    int // 0 = none stated
		err      bool
		unknown  bool
	}{
		{body: `{"value":[{"a":1},{"b":2}],"@nextPage":"NDU1NA==","isCaughtUp":false}`, records: 2, next: "NDU1NA==", caughtUp: ptr(false), wrapper: "value"},
		{body: `{"value":[],"@nextPage":"x","isCaughtUp":true}`, next: "x", caughtUp: ptr(true), wrapper: "value"},
		{body: `{"data":[{"a":1}],"meta":{"pagination":{"next":"m"}}}`, records: 1, next: "m", wrapper: "data"},
		{body: `{"events":[{"a":1}],"nextPage":"n"}`, records: 1, next: "n", wrapper: "events"},
		{body: `{"value":null,"data":[{"a":1}]}`, records: 1, wrapper: "data"},
		{body: `{"events":[],"nextPageToken":"t","total":60}`, next: "t", wrapper: "events", total: 60},
		{body: `{"events":[],"next":"https://h.example/threats/v1/events?pageToken=p%2B1&pageSize=5"}`, next: "p+1", wrapper: "events"},
		{body: `{"value":[],"_links":{"next":{"href":"opaque"}},"resultCount":"7"}`, next: "opaque", wrapper: "value", total: 7},
		{body: `{"data":[],"meta":{"pagination":{"next":"m","totalCount":3}}}`, next: "m", wrapper: "data", total: 3},
		{body: `{"@nextPage":"c","isCaughtUp":true}`, next: "c", caughtUp: ptr(true)},
		{body: `{"items":[{"a":1}]}`, err: true, unknown: true},
		{body: `{"value":{"a":1}}`, err: true},
		{body: `{"value":[],"isCaughtUp":"yes"}`, err: true},
		{body: `{"value":[],"@nextPage":5}`, err: true},
		{body: `[{"a":1}]`, err: true},
		{body: ``, err: true},
		{body: `{"value":[1,`, err: true},
	}
	for _, tc := range cases {
		p, err := decodeRESTPage("GET /x", []byte(tc.body))
		if (err != nil) != tc.err || errors.Is(err, errUnknownShape) != tc.unknown {
			t.Errorf("%s: error %v", tc.body, err)
			continue
		}
		if err != nil {
			continue
		}
		if tc.total == 0 {
			tc.total = -1
		}
		if len(p.Records) != tc.records || p.Next != tc.next || p.Wrapper != tc.wrapper || p.Total != tc.total ||
			(p.CaughtUp == nil) != (tc.caughtUp == nil) || (p.CaughtUp != nil && *p.CaughtUp != *tc.caughtUp) {
			t.Errorf("%s: got %+v", tc.body, p)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func FuzzDecodeRESTPage(f *testing.F) {
	for _, s := range []string{
		`{"value":[{"a":1}],"@nextPage":"x","isCaughtUp":false}`, `{"data":[],"meta":{"pagination":{"next":"m"}}}`,
		`{"events":[null,{}]}`, `{"items":[1]}`, `{}`, `[]`, `{"value":"x"}`, `{"isCaughtUp":null}`,
		`{"events":[],"nextPageToken":"t","total":"60"}`, `{"next":"https://h/x?pageToken=a"}`, `{"_links":{"next":{"href":1}}}`,
		`{"value":[],"meta":{"total":3,"pagination":{"totalCount":"x"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeRESTPage("GET /fuzz", body)
		if err != nil {
			if p.Records != nil || p.Next != "" {
				t.Errorf("error %v with a partial page %+v", err, p)
			}
			return
		}
		if p.Wrapper != "" && !slices.Contains(restWrappers, p.Wrapper) {
			t.Errorf("wrapper %q", p.Wrapper)
		}
		for _, r := range p.Records {
			if !json.Valid(r) {
				t.Errorf("invalid record %q", r)
			}
		}
	})
}

func TestPacersAreKeyedByGroup(t *testing.T) {
	ps := newPacers(func() *pacer {
		return newPacer(time.Millisecond, time.Second, time.Hour, 1, time.Now)
	}, nil)
	for range densityEnter { // the quota binds
		ps.get(groupSIEMBatch).rateLimited(time.Now(), time.Hour, true)
	}
	if err := ps.wait(context.Background(), groupAccount); err != nil {
		t.Errorf("account group after a SIEM 429: %v", err)
	}
	if err := ps.wait(context.Background(), groupSIEMStream); err != nil {
		t.Errorf("stream group after a batch 429: %v", err)
	}
	// A live context that ends soon: a call that may start returns nil at once, one that
	// must wait ends with the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ps.wait(ctx, groupSIEMBatch); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("batch group after its 429: %v; want it to wait (and honour ctx)", err)
	}
	for path, want := range map[string]string{
		"/api/ttp/url/get-logs": groupAccount, "/api/archive/get-file": groupAccount, "/siem/v1/batch/events/cg": groupSIEMBatch,
		"/siem/v1/events/cg": groupSIEMStream, "/threats/v1/events/x/details": groupThreats,
	} {
		if got := quotaGroup(path); got != want {
			t.Errorf("quotaGroup(%s) = %s, want %s", path, got, want)
		}
	}
}

func TestBudgetWindow(t *testing.T) {
	ps := newPacers(func() *pacer { return newPacer(0, 0, 0, 1, time.Now) }, map[string]Budget{groupSIEMBatch: {Calls: 2, Per: time.Hour}, groupSIEMStream: {Calls: -1}})
	ctx := context.Background()
	for i := range 2 {
		if err := ps.wait(ctx, groupSIEMBatch); err != nil {
			t.Fatalf("call %d within the budget: %v", i, err)
		}
	}
	soon, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := ps.wait(soon, groupSIEMBatch); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("third call in the window: %v; want it to wait", err)
	}
	for range 10 {
		if err := ps.wait(ctx, groupSIEMStream); err != nil {
			t.Fatalf("unbudgeted group: %v", err)
		}
	}
	// A short window frees its slots again.
	w := &window{calls: 1, per: time.Millisecond}
	for range 3 {
		if err := w.take(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
