package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ParseFingerprint reads a SHA-256 certificate fingerprint written as 64 hex digits, with
// or without colons between the bytes (as `openssl x509 -fingerprint -sha256` and
// Elasticsearch print it), and returns its 32 bytes.
func ParseFingerprint(s string) ([]byte, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	if len(h) != 2*32 {
		return nil, fmt.Errorf("has %d hex digits; a SHA-256 fingerprint has 64", len(h))
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, errors.New("is not hexadecimal")
	}
	return b, nil
}

// CAFingerprintSHA256 returns the bytes of elasticsearch.ca_fingerprint, or nil when it is
// not set. Load has validated it.
func (e Elasticsearch) CAFingerprintSHA256() []byte {
	if e.CAFingerprint == "" {
		return nil
	}
	b, err := ParseFingerprint(e.CAFingerprint)
	if err != nil {
		return nil
	}
	return b
}

// cloudAddress returns the Elasticsearch URL an Elastic Cloud id names. A cloud id is
// "label:" followed by base64 of "host[:port]$elasticsearch-id[$kibana-id]"; the cluster
// answers at https://elasticsearch-id.host:port (port 443 when none is given).
func cloudAddress(id string) (string, error) {
	_, enc, ok := strings.Cut(id, ":")
	if !ok || enc == "" {
		return "", errors.New(`has no ":"; a cloud id is "name:" followed by base64, as the Elastic Cloud console shows it`)
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "="))
	if err != nil {
		return "", errors.New(`is not "name:" followed by base64, as the Elastic Cloud console shows it`)
	}
	parts := strings.Split(string(raw), "$")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", errors.New("does not name a host and an Elasticsearch id")
	}
	host, port := parts[0], "443"
	if h, p, err := net.SplitHostPort(parts[0]); err == nil {
		host, port = h, p
	}
	u := &url.URL{Scheme: "https", Host: net.JoinHostPort(parts[1]+"."+host, port)}
	if _, err := url.Parse(u.String()); err != nil {
		return "", fmt.Errorf("names an unusable address: %v", err)
	}
	return u.String(), nil
}

// resolveCloudID replaces the default addresses with the one elasticsearch.cloud_id names.
// Addresses set in the file or the environment together with a cloud id are a conflict.
func (c *Config) resolveCloudID(d *decoder) {
	e := &c.Elasticsearch
	if e.CloudID == "" {
		return
	}
	if _, set := d.origins["elasticsearch.addresses"]; set {
		d.add("elasticsearch.cloud_id", 0, "is set together with elasticsearch.addresses; allowed: one of them (the cloud id names the address)")
		return
	}
	addr, err := cloudAddress(e.CloudID)
	if err != nil {
		d.add("elasticsearch.cloud_id", 0, "%s %v", quote(e.CloudID), err)
		return
	}
	e.Addresses = []string{addr}
}

// checkElasticsearchTLS checks the settings that decide which certificate is trusted.
// Verification is always on: there is no setting that turns it off.
func (c *Config) checkElasticsearchTLS(k *checker) {
	e := c.Elasticsearch
	if e.CAFingerprint == "" {
		return
	}
	if _, err := ParseFingerprint(e.CAFingerprint); err != nil {
		k.add("elasticsearch.ca_fingerprint", "%s %v; allowed: the SHA-256 fingerprint of the cluster's CA certificate, 64 hex digits, colons allowed",
			quote(e.CAFingerprint), err)
	}
	if e.CAFile != "" {
		k.add("elasticsearch.ca_fingerprint", "is set together with elasticsearch.ca_file; allowed: at most one of them")
	}
}
