package mimecast

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

func FuzzDecodeResponse(f *testing.F) {
	seeds := []string{
		`{"meta":{"status":200,"pagination":{"pageSize":2,"next":"NDU1NA=="}},"data":[{"id":"eNo1","received":"2015-11-16T14:49:18+0000","from":{"emailAddress":"a@b.c"}}],"fail":[]}`,
		`{"meta":{"status":200},"data":[{"users":[{"emailAddress":"a@b.c","alias":false,"addressType":"created_manually"}],"userCount":1}]}`,
		`{"meta":{"status":200},"data":[],"fail":[{"key":{"id":"x"},"errors":[{"code":"err_validation_null","message":"m","retryable":false}]}]}`,
		`{"fail":[{"code":"token_expired","message":"expired"}]}`,
		`{"meta":{"status":200},"data":[{"urls":["https://dl.example/x?sig=1"]}]}`,
		`{"meta":{"status":200},"data":[{"url":"/relative"}]}`,
		`{"data":null}`, `[]`, `null`, ``, `{"data":[1,"x",{}]}`, `{"meta":{"pagination":null}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	base, _ := url.Parse("https://api.services.mimecast.com")
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := decodeResponse("POST /api/x", body)
		if err != nil {
			if env != nil {
				t.Fatalf("error %v with a response", err)
			}
			if !strings.Contains(err.Error(), "POST /api/x") {
				t.Fatalf("error %q does not name the op", err)
			}
			return
		}
		// Every page decoder must cope with whatever decoded: no panics, errors name the op.
		for _, derr := range []error{
			second(decodeMessages("POST /api/x", env, nil)),
			third(decodeUsers("POST /api/x", env, nil)),
			second(decodeDomains("POST /api/x", env, nil)),
			second(decodeDetail("POST /api/x", env, nil)),
			second(decodeFileURLs("POST /api/x", env, base)),
		} {
			if derr != nil && !strings.Contains(derr.Error(), "POST /api/x") {
				t.Fatalf("decoder error %q does not name the op", derr)
			}
		}
		if len(env.Fail) > 0 {
			if e := failError("POST /api/x", env.Fail); e.Status != http.StatusOK || e.Error() == "" {
				t.Fatalf("fail error %#v", e)
			}
		}
		_, _ = redactJSON(body)
		_, _ = failText(body)
	})
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

func BenchmarkDecodeMessagePage(b *testing.B) {
	page := make([]api.MessageSummary, 100)
	for i := range page {
		page[i] = api.MessageSummary{
			ID:       fmt.Sprintf("eNoVzE0LgjAYAOD%060d", i),
			Status:   "ARCHIVED",
			Received: "2025-11-16T14:49:18+0000",
			Subject:  "Quarterly numbers and the plan for next year, revision " + fmt.Sprint(i),
			Size:     int64(20000 + i), AttachmentCount: i % 3,
			From:  api.Address{EmailAddress: "alice@example.com", DisplayableName: "Alice Example"},
			To:    api.Address{EmailAddress: "bob@example.com", DisplayableName: "Bob Example"},
			Smash: "3f786850e387550fdab836ed7e6dc881de23001b",
		}
	}
	data := make([]json.RawMessage, len(page))
	for i, m := range page {
		data[i], _ = json.Marshal(m)
	}
	body, _ := json.Marshal(api.Response{
		Meta: api.ResponseMeta{Status: 200, Pagination: &api.Pagination{PageSize: 100, Next: "NDU1NA=="}},
		Data: data, Fail: []api.Fail{},
	})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := decodeResponse("POST /api/archive/get-message-list", body)
		if err != nil {
			b.Fatal(err)
		}
		msgs, err := decodeMessages("POST /api/archive/get-message-list", env, nil)
		if err != nil || len(msgs) != 100 {
			b.Fatalf("%d messages, %v", len(msgs), err)
		}
	}
}

func TestWaitHint(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		headers map[string]string
		want    time.Duration
		ok      bool
	}{
		{name: "none", headers: nil, ok: false},
		{name: "retry-after seconds", headers: map[string]string{"Retry-After": "3"}, want: 3 * time.Second, ok: true},
		{name: "retry-after date", headers: map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, want: 7 * time.Second, ok: true},
		{name: "retry-after wins", headers: map[string]string{"Retry-After": "2", "X-RateLimit-Reset": "9000"}, want: 2 * time.Second, ok: true},
		{name: "reset milliseconds", headers: map[string]string{"X-RateLimit-Reset": "1500"}, want: 1500 * time.Millisecond, ok: true},
		{name: "reset epoch seconds", headers: map[string]string{"X-RateLimit-Reset": fmt.Sprint(now.Unix() + 4)}, want: 4 * time.Second, ok: true},
		{name: "reset epoch milliseconds", headers: map[string]string{"X-RateLimit-Reset": fmt.Sprint(now.UnixMilli() + 250)}, want: 250 * time.Millisecond, ok: true},
		{name: "reset epoch in the past", headers: map[string]string{"X-RateLimit-Reset": fmt.Sprint(now.Unix() - 4)}, want: 0, ok: true},
		{name: "garbage", headers: map[string]string{"X-RateLimit-Reset": "soon"}, ok: false},
		{name: "huge", headers: map[string]string{"Retry-After": "1e300"}, want: 7 * 24 * time.Hour, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			got, ok := waitHint(h, now)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("waitHint = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestScaleClamp(t *testing.T) {
	cases := []struct {
		name string
		hint time.Duration
		mult float64
		want time.Duration
	}{
		{name: "as asked", hint: time.Second, mult: 1, want: time.Second},
		{name: "scaled", hint: time.Second, mult: 0.5, want: 500 * time.Millisecond},
		{name: "clamped", hint: time.Hour, mult: 2, want: 5 * time.Minute},
		{name: "negative", hint: -time.Second, mult: 1, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := scaleClamp(tc.hint, tc.mult, 5*time.Minute); got != tc.want {
				t.Fatalf("scaleClamp = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRedactJSON(t *testing.T) {
	in := `{"access_token":"abc","client_secret":"s","nested":[{"Authorization":"Bearer x","pageToken":"keep"}],` +
		`"urls":["https://dl.example.com/path/sig?X-Amz-Signature=1"],"note":"Bearer zzz","link":"https://h/p?q=1"}`
	out, ok := redactJSON([]byte(in))
	if !ok {
		t.Fatal("not redacted")
	}
	s := string(out)
	for _, leak := range []string{`"abc"`, `"s"`, "Bearer", "X-Amz", "/path/sig", "q=1"} {
		if strings.Contains(s, leak) {
			t.Errorf("redacted JSON %s still contains %s", s, leak)
		}
	}
	if !strings.Contains(s, `"pageToken":"keep"`) {
		t.Errorf("redacted JSON %s lost the page token", s)
	}
}

// Download URLs: a relative one is resolved against the API's base URL (inferred; not seen),
// an absolute one is used exactly as given, since its path and query are what was signed.
func TestDecodeFileURLs(t *testing.T) {
	base, _ := url.Parse("https://api.services.mimecast.com/api/")
	for body, want := range map[string]string{
		`{"data":[{"url":"/dl/x?sig=a%2Fb"}]}`:                              "https://api.services.mimecast.com/dl/x?sig=a%2Fb",
		`{"data":[{"urls":["https://s3.example/a/./b%2F..%2Fc?X-Sig=1"]}]}`: "https://s3.example/a/./b%2F..%2Fc?X-Sig=1",
	} {
		env, err := decodeResponse("POST /api/x", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		urls, err := decodeFileURLs("POST /api/x", env, base)
		if err != nil || len(urls) != 1 || urls[0].String() != want {
			t.Errorf("%s: urls %v, %v; want %s", body, urls, err, want)
		}
	}
}
