package index

import (
	"encoding/base64"
	"regexp"
	"strings"
)

// redactor removes credentials from text that came from outside this package: transport
// errors, error answers of Elasticsearch or of a proxy in front of it, bulk item reasons. A
// server that echoes the request's headers puts the credential there in the form it was sent
// (base64 of "user:password", or the API key), not in the form it was configured, so every
// form is removed, and so is whatever follows an Authorization header name.
type redactor struct {
	secrets []string // longest first, so that a secret containing another is removed whole
}

// authEcho matches an Authorization header as a server may echo it: in a header dump
// ("Authorization: Basic dXNlcjpw"), in JSON ("authorization":["ApiKey abc"]) or as a
// parameter (authorization=abc). The scheme is kept, the credential goes.
var authEcho = regexp.MustCompile(`(?i)(authorization["']?\]?\s*[:=]\s*\[?\s*["']?)((?:basic|bearer|apikey)\s+)?[^\s"',;\]}]+`)

func newRedactor(username, password, apiKey string) redactor {
	var r redactor
	add := func(s string) {
		// A secret of a few characters would match everywhere; those go only through the
		// header rule (and are too weak to protect much anyway).
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
	add(password)
	if password != "" {
		userPass := username + ":" + password
		add(userPass)
		add(base64.StdEncoding.EncodeToString([]byte(userPass)))
		add(base64.RawStdEncoding.EncodeToString([]byte(userPass)))
		add(base64.URLEncoding.EncodeToString([]byte(userPass)))
	}
	if apiKey != "" {
		add(apiKey)
		// Elasticsearch issues the key as base64 of "id:key"; the decoded pair, and the key
		// part alone, are secrets too.
		if raw, err := base64.StdEncoding.DecodeString(apiKey); err == nil {
			add(string(raw))
			if _, key, ok := strings.Cut(string(raw), ":"); ok {
				add(key)
			}
		} else {
			// A key configured as "id:key" is sent encoded.
			add(base64.StdEncoding.EncodeToString([]byte(apiKey)))
		}
	}
	// Longest first: removing "user:password" before "password" keeps the user's name out of
	// a half-redacted string, and removing the base64 form first keeps it whole.
	for i := 1; i < len(r.secrets); i++ {
		for j := i; j > 0 && len(r.secrets[j]) > len(r.secrets[j-1]); j-- {
			r.secrets[j], r.secrets[j-1] = r.secrets[j-1], r.secrets[j]
		}
	}
	return r
}

// redact returns s without any credential.
func (r redactor) redact(s string) string {
	s = authEcho.ReplaceAllString(s, "${1}${2}<secret>")
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "<secret>")
	}
	return s
}
