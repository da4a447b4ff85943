package index

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/mimecrawl/mimecrawl/index/indextest"
)

// TestFingerprintNeedsAChain: a certificate with the configured fingerprint must vouch for the
// server's certificate. A CA certificate is public, so presenting a copy of it beside a
// certificate of one's own, or a genuine certificate for another host, must not pass.
func TestFingerprintNeedsAChain(t *testing.T) {
	ca, caKey := indextest.NewCA(t, "pinned CA")
	other, otherKey := indextest.NewCA(t, "intruder CA")
	good, _ := indextest.NewServerCert(t, ca, caKey)
	forged, _ := indextest.NewServerCert(t, other, otherKey)
	sum := sha256.Sum256(ca.Raw)
	verify := verifyFingerprint(sum[:])

	cases := []struct {
		name   string
		server string
		chain  []*x509.Certificate
		ok     bool
	}{
		{"signed by the pinned CA", "127.0.0.1", []*x509.Certificate{good, ca}, true},
		{"the pinned CA not sent", "localhost", []*x509.Certificate{good}, false},
		{"copy of the pinned CA beside another CA's certificate", "127.0.0.1", []*x509.Certificate{forged, ca}, false},
		{"right chain, wrong host", "elasticsearch.example", []*x509.Certificate{good, ca}, false},
		{"no certificate", "127.0.0.1", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(tls.ConnectionState{ServerName: tc.server, PeerCertificates: tc.chain})
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var fe *FingerprintError
			if !errors.As(err, &fe) || !IsUntrustedCertificate(err) {
				t.Fatalf("error %v: want a *FingerprintError", err)
			}
		})
	}
}
