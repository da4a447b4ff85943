package index

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestRedactorRemovesEveryForm(t *testing.T) {
	const (
		user     = "crawler"
		password = "hunter2-pw"
		apiKeyID = "VuaCfGcBCdbkQm-e5aOx"
		apiKey   = "ui2lp2axTNmsyakw9tvNnw"
	)
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	encodedKey := base64.StdEncoding.EncodeToString([]byte(apiKeyID + ":" + apiKey))
	tests := []struct {
		name    string
		r       redactor
		in      string
		mustNot []string
		want    string
	}{
		{"raw password", newRedactor(user, password, ""), "bad password " + password, []string{password}, "bad password <secret>"},
		{"basic in a header dump", newRedactor(user, password, ""), "request headers: Authorization: Basic " + basic + "\r\nAccept: */*",
			[]string{basic}, "Authorization: Basic <secret>"},
		{"basic in JSON", newRedactor(user, password, ""), `{"headers":{"authorization":["Basic ` + basic + `"]}}`, []string{basic}, `"authorization":["Basic <secret>"]`},
		{"basic without the header name", newRedactor(user, password, ""), "token " + basic + " refused", []string{basic}, "token <secret> refused"},
		{"user:password", newRedactor(user, password, ""), "as " + user + ":" + password + "@host", []string{password}, "as <secret>@host"},
		{"api key encoded", newRedactor("", "", encodedKey), "key " + encodedKey + " expired", []string{encodedKey}, "key <secret> expired"},
		{"api key decoded", newRedactor("", "", encodedKey), "api key [" + apiKeyID + ":" + apiKey + "]", []string{apiKey}, "api key [<secret>]"},
		{"api key part alone", newRedactor("", "", encodedKey), "unable to authenticate with key " + apiKey, []string{apiKey}, "key <secret>"},
		{"api key header", newRedactor("", "", encodedKey), "Authorization=ApiKey " + encodedKey, []string{encodedKey}, "Authorization=ApiKey <secret>"},
		{"unknown credential in a header", newRedactor("", "", ""), "authorization: Bearer abc.def.ghi", []string{"abc.def.ghi"}, "authorization: Bearer <secret>"},
		{"nothing secret", newRedactor(user, password, ""), "index_not_found_exception: no such index", nil, "index_not_found_exception: no such index"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.r.redact(tt.in)
			for _, s := range tt.mustNot {
				if strings.Contains(got, s) {
					t.Errorf("redact(%q) = %q, still holds %q", tt.in, got, s)
				}
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("redact(%q) = %q, want it to contain %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestErrorAnswerEchoingAuthorization: a server (or proxy) whose error answer echoes the
// request's Authorization header must not put the credential into the error.
func TestErrorAnswerEchoingAuthorization(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		auth := r.Header.Get("Authorization")
		fmt.Fprintf(w, `{"error":{"type":"security_exception","reason":"unable to authenticate with Authorization: %s (%s)"},"status":401}`,
			auth, strings.TrimPrefix(strings.TrimPrefix(auth, "Basic "), "ApiKey "))
	}))
	defer srv.Close()
	basic := base64.StdEncoding.EncodeToString([]byte("elastic:s3cr3t-pw"))
	key := base64.StdEncoding.EncodeToString([]byte("id1:k3y-s3cr3t"))
	for _, cfg := range []Config{
		{Username: "elastic", Password: "s3cr3t-pw"},
		{APIKey: key},
	} {
		cfg.Addresses = []string{srv.URL}
		cfg.RetryBackoff = func(int) time.Duration { return time.Millisecond }
		cfg.Logger = zerolog.Nop()
		_, err := Open(context.Background(), cfg)
		if err == nil {
			t.Fatal("Open succeeded against a server that refuses everything")
		}
		if !strings.Contains(err.Error(), "security_exception") {
			t.Errorf("error %q lost the reason", err)
		}
		for _, s := range []string{basic, "s3cr3t-pw", key, "k3y-s3cr3t"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q reveals %q", err, s)
			}
		}
	}
}
