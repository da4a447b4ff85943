package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/index/indextest"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// TestCheckSecureElasticsearch runs `mimecrawl check` against the real cluster behind a real
// nginx that terminates TLS (a CA made for the test) and demands basic authentication: the
// configuration's credentials and CA (file or fingerprint) pass, a wrong password and an
// untrusted certificate fail with a line that says which, and no secret appears anywhere.
func TestCheckSecureElasticsearch(t *testing.T) {
	esURL := indextest.URL(t)
	proxy := indextest.NewTLSProxy(t, esURL)
	const clientSecret = "sim-secret-4e1d"
	sim, err := simulator.New(simulator.Options{Seed: 5, Domains: 1, Mailboxes: 1, Messages: 2, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	prefix := indextest.Prefix(t, esURL)

	const wrongPassword = "wrong-pw-93c2"
	secrets := []string{
		clientSecret, proxy.Password, wrongPassword,
		base64.StdEncoding.EncodeToString([]byte(proxy.Username + ":" + proxy.Password)),
		base64.StdEncoding.EncodeToString([]byte(proxy.Username + ":" + wrongPassword)),
	}

	cases := []struct {
		name     string
		password string
		trust    string // the elasticsearch keys that say which certificate to trust
		code     int
		says     string // check's output contains this
	}{
		{"ca file", proxy.Password, "ca_file: " + proxy.CAFile, 0, "ok    elasticsearch write"},
		{"ca fingerprint", proxy.Password, "ca_fingerprint: " + proxy.CAFingerprint, 0, "ok    elasticsearch write"},
		{"wrong password", wrongPassword, "ca_file: " + proxy.CAFile, 1, "authentication failed"},
		{"no CA", proxy.Password, "", 1, "certificate is not trusted"},
		{"another CA", proxy.Password, "ca_file: " + proxy.OtherCAFile, 1, "certificate is not trusted"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pwFile := filepath.Join(dir, fmt.Sprintf("es-password-%d", i))
			if err := os.WriteFile(pwFile, []byte(tc.password+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := fmt.Sprintf(`mimecast:
  base_url: %s
  client_id: demo-client
  client_secret: %s
messages:
  start_date: "2020-01-01"
elasticsearch:
  addresses: [%q]
  username: %s
  password_file: %s
  index_prefix: %s
  %s
state:
  path: %s
`, srv.URL, clientSecret, proxy.URL, proxy.Username, pwFile, prefix, tc.trust, filepath.Join(dir, fmt.Sprintf("state-%d.db", i)))
			cfgFile := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", i))
			if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, logs bytes.Buffer
			code := run([]string{"check", "--config", cfgFile, "--log-format", "json", "--log-level", "debug"}, &out, &logs)
			if code != tc.code {
				t.Errorf("check exit %d, want %d\n%s\n%s", code, tc.code, out.String(), logs.String())
			}
			if !strings.Contains(out.String(), tc.says) {
				t.Errorf("check output lacks %q:\n%s", tc.says, out.String())
			}
			if tc.code != 0 {
				t.Logf("check says:\n%s", out.String())
			}
			if tc.code != 0 && !strings.Contains(out.String(), "FAIL  elasticsearch ") {
				t.Errorf("the failed line should be the elasticsearch check:\n%s", out.String())
			}
			for _, s := range secrets {
				if strings.Contains(out.String()+logs.String(), s) {
					t.Errorf("a secret appears in check's output or logs:\n%s\n%s", out.String(), logs.String())
				}
			}
		})
	}
}
