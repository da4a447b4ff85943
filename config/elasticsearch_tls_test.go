package config

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tlsBase = `mimecast:
  client_id: id
  client_secret: test-secret
elasticsearch:
`

func TestCloudIDAndFingerprint(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	cloud := func(s string) string { return "prod:" + base64.StdEncoding.EncodeToString([]byte(s)) }
	fp := strings.Repeat("ab", 32)
	colons := strings.ToUpper(strings.TrimSuffix(strings.Repeat("ab:", 32), ":"))

	cases := []struct {
		name      string
		es        string
		addresses []string // want, when the config loads
		fp        string   // want hex of CAFingerprintSHA256, when it loads
		errs      []string // each must appear in the error
	}{
		{name: "cloud id with port", es: "  cloud_id: " + cloud("eu-west-1.aws.found.io:9243$abc123$kib456"),
			addresses: []string{"https://abc123.eu-west-1.aws.found.io:9243"}},
		{name: "cloud id without port", es: "  cloud_id: " + cloud("us-central1.gcp.cloud.es.io$abc$def"),
			addresses: []string{"https://abc.us-central1.gcp.cloud.es.io:443"}},
		{name: "cloud id unpadded", es: "  cloud_id: " + strings.TrimRight(cloud("h.io$e1"), "="),
			addresses: []string{"https://e1.h.io:443"}},
		{name: "cloud id and addresses", es: "  addresses: [\"https://es:9200\"]\n  cloud_id: " + cloud("h.io$e"),
			errs: []string{"elasticsearch.cloud_id: is set together with elasticsearch.addresses"}},
		{name: "cloud id not base64", es: "  cloud_id: prod:!!!",
			errs: []string{"elasticsearch.cloud_id", "is not \"name:\" followed by base64"}},
		{name: "cloud id without es id", es: "  cloud_id: " + cloud("h.io"),
			errs: []string{"elasticsearch.cloud_id", "does not name a host and an Elasticsearch id"}},
		{name: "cloud id without colon", es: "  cloud_id: abc",
			errs: []string{"elasticsearch.cloud_id", `has no ":"`}},
		{name: "fingerprint hex", es: "  addresses: [\"https://es:9200\"]\n  ca_fingerprint: " + fp,
			addresses: []string{"https://es:9200"}, fp: fp},
		{name: "fingerprint with colons, upper case", es: "  addresses: [\"https://es:9200\"]\n  ca_fingerprint: \"" + colons + "\"",
			addresses: []string{"https://es:9200"}, fp: fp},
		{name: "fingerprint too short", es: "  ca_fingerprint: abcd",
			errs: []string{"elasticsearch.ca_fingerprint", "has 4 hex digits; a SHA-256 fingerprint has 64"}},
		{name: "fingerprint not hex", es: "  ca_fingerprint: " + strings.Repeat("zz", 32),
			errs: []string{"elasticsearch.ca_fingerprint", "is not hexadecimal"}},
		{name: "fingerprint and ca file", es: "  ca_fingerprint: " + fp + "\n  ca_file: " + caFile,
			errs: []string{"elasticsearch.ca_fingerprint: is set together with elasticsearch.ca_file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tlsBase+tc.es+"\n"), nil)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("Parse succeeded; want an error with %q", tc.errs)
				}
				for _, want := range tc.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := cfg.Elasticsearch.Addresses; strings.Join(got, ",") != strings.Join(tc.addresses, ",") {
				t.Errorf("addresses %q, want %q", got, tc.addresses)
			}
			if got := hex.EncodeToString(cfg.Elasticsearch.CAFingerprintSHA256()); got != tc.fp {
				t.Errorf("fingerprint %q, want %q", got, tc.fp)
			}
		})
	}
}
