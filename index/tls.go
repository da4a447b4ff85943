package index

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
)

// tlsTransport returns the transport the client sends through: rt (or a clone of the default
// transport) trusting only caCert when it is given, or only a chain that a certificate with the
// SHA-256 fingerprint vouches for. Verification is never switched off: with a fingerprint the
// usual chain and host name checks still run, with the pinned certificate as the only root.
func tlsTransport(rt http.RoundTripper, caCert, fingerprint []byte) (http.RoundTripper, error) {
	if rt == nil {
		rt = http.DefaultTransport.(*http.Transport).Clone()
	}
	if len(caCert) == 0 && len(fingerprint) == 0 {
		return rt, nil
	}
	if len(caCert) > 0 && len(fingerprint) > 0 {
		return nil, errors.New("both a CA certificate and a CA fingerprint are given; use one")
	}
	if len(fingerprint) > 0 && len(fingerprint) != sha256.Size {
		return nil, fmt.Errorf("the CA fingerprint has %d bytes; a SHA-256 has %d", len(fingerprint), sha256.Size)
	}
	ht, ok := rt.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("a CA certificate or fingerprint needs an *http.Transport, not %T", rt)
	}
	ht = ht.Clone()
	if ht.TLSClientConfig == nil {
		ht.TLSClientConfig = &tls.Config{}
	}
	ht.TLSClientConfig.MinVersion = max(ht.TLSClientConfig.MinVersion, tls.VersionTLS12)
	if len(caCert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caCert) {
			return nil, errors.New("the CA certificate file holds no PEM certificate")
		}
		ht.TLSClientConfig.RootCAs = pool
		return ht, nil
	}
	// The standard verification cannot take a root it does not know yet; switch it off only to
	// run the same verification below, against the certificate the fingerprint names.
	ht.TLSClientConfig.InsecureSkipVerify = true
	ht.TLSClientConfig.VerifyConnection = verifyFingerprint(bytes.Clone(fingerprint))
	return ht, nil
}

// FingerprintError is a TLS handshake refused because the server's certificate chain is not
// vouched for by the certificate with the configured SHA-256 fingerprint.
type FingerprintError struct {
	Want []byte // the configured fingerprint
	Err  error  // why the chain failed, when a presented certificate matched; nil when none did
}

func (e *FingerprintError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("the certificate with SHA-256 fingerprint %s does not vouch for the server's certificate: %v", hex.EncodeToString(e.Want), e.Err)
	}
	return fmt.Sprintf("no certificate the server presented has SHA-256 fingerprint %s", hex.EncodeToString(e.Want))
}

func (e *FingerprintError) Unwrap() error { return e.Err }

// verifyFingerprint accepts a connection when one of the presented certificates has the
// fingerprint and the server's certificate chains to it for the host name dialled. Matching
// alone would not do: a CA certificate is public, so anyone can present a copy of it next to
// a certificate of their own.
func verifyFingerprint(want []byte) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &FingerprintError{Want: want}
		}
		for _, cert := range cs.PeerCertificates {
			sum := sha256.Sum256(cert.Raw)
			if !bytes.Equal(sum[:], want) {
				continue
			}
			roots := x509.NewCertPool()
			roots.AddCert(cert)
			intermediates := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: roots, Intermediates: intermediates, DNSName: cs.ServerName,
			})
			if err != nil {
				return &FingerprintError{Want: want, Err: err}
			}
			return nil
		}
		return &FingerprintError{Want: want}
	}
}

// IsUntrustedCertificate reports whether err is a TLS certificate the client refused: not
// signed by a trusted CA, not for the host, expired, or not matching the CA fingerprint.
// Such an error is permanent: retrying cannot change the certificate.
func IsUntrustedCertificate(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		fp *FingerprintError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &fp) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// IsAuthentication reports whether err is Elasticsearch (or a proxy in front of it) refusing
// the credentials: status 401.
func IsAuthentication(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusUnauthorized
}

// outsideError is an error from the client with the configured secrets removed from its
// message; Unwrap keeps the chain, so that callers can still classify it.
type outsideError struct {
	msg string
	err error
}

func (e *outsideError) Error() string { return e.msg }
func (e *outsideError) Unwrap() error { return e.err }
