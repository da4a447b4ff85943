package index_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// TestSecureClusterBehindNginx talks to the real cluster through a real nginx that terminates
// TLS with a certificate made for the test and demands basic authentication: the right
// credentials with a trusted CA (file or fingerprint) connect and write, while a wrong password
// and an untrusted certificate are refused with errors that say so, and never carry a secret.
func TestSecureClusterBehindNginx(t *testing.T) {
	e := newEnv(t)
	proxy := indextest.NewTLSProxy(t, e.base)
	caPEM, err := os.ReadFile(proxy.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := os.ReadFile(proxy.OtherCAFile)
	if err != nil {
		t.Fatal(err)
	}
	fp := func(h string) []byte {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const wrongPassword = "not-the-password-7f3a"
	secrets := []string{
		proxy.Password, wrongPassword,
		base64.StdEncoding.EncodeToString([]byte(proxy.Username + ":" + proxy.Password)),
		base64.StdEncoding.EncodeToString([]byte(proxy.Username + ":" + wrongPassword)),
	}

	cases := []struct {
		name    string
		set     func(c *index.Config)
		refused func(error) bool // nil: must connect and write
		says    string           // the refusal names this
	}{
		{name: "ca file", set: func(c *index.Config) { c.CACert = caPEM }},
		{name: "ca fingerprint", set: func(c *index.Config) { c.CAFingerprint = fp(proxy.CAFingerprint) }},
		{name: "server certificate fingerprint", set: func(c *index.Config) { c.CAFingerprint = fp(proxy.LeafFingerprint) }},
		{name: "wrong password", set: func(c *index.Config) { c.CACert, c.Password = caPEM, wrongPassword },
			refused: index.IsAuthentication, says: "authentication failed"},
		{name: "no credentials", set: func(c *index.Config) { c.CACert, c.Username, c.Password = caPEM, "", "" },
			refused: index.IsAuthentication, says: "authentication failed"},
		{name: "no CA given", set: func(*index.Config) {},
			refused: index.IsUntrustedCertificate, says: "certificate is not trusted"},
		{name: "another CA", set: func(c *index.Config) { c.CACert = otherPEM },
			refused: index.IsUntrustedCertificate, says: "certificate is not trusted"},
		{name: "wrong fingerprint", set: func(c *index.Config) { c.CAFingerprint = fp(strings.Repeat("ab", 32)) },
			refused: index.IsUntrustedCertificate, says: "fingerprint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := e.config(t, proxy.URL)
			cfg.Username, cfg.Password = proxy.Username, proxy.Password
			cfg.Logger = zerolog.New(&logs)
			tc.set(&cfg)
			ctx := context.Background()
			c, err := index.Open(ctx, cfg)
			if err == nil {
				if err = c.Setup(ctx); err == nil {
					err = c.CheckWrite(ctx)
				}
			}
			for _, s := range secrets {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("the error carries a secret: %v", err)
				}
				if strings.Contains(logs.String(), s) {
					t.Errorf("the log carries a secret:\n%s", logs.String())
				}
			}
			if tc.refused == nil {
				if err != nil {
					t.Fatalf("want a working connection that writes, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("connected and wrote; want a refusal")
			}
			t.Logf("refused: %v", err)
			if !tc.refused(err) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q: want one classified as %s that says %q", err, tc.name, tc.says)
			}
			if strings.Contains(err.Error(), "<html") {
				t.Errorf("error %q carries the proxy's HTML page", err)
			}
		})
	}
}
