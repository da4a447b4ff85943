package alerts

import (
	"net/url"
	"strings"
)

// GroupKey returns the key of the alert's group: "file:" + the SHA-256 of its first
// attachment with a hash, else "url:" + its normalised URL, else "" (no group).
func GroupKey(a *Alert) string {
	for _, f := range a.Files {
		if f.SHA256 != "" {
			return "file:" + f.SHA256
		}
	}
	if a.URL != "" {
		return "url:" + NormalizeURL(a.URL)
	}
	return ""
}

// NormalizeURL returns the form of u that URL groups are keyed by: scheme and host in
// lower case, the scheme's default port dropped, the fragment dropped, and an empty path
// written as "/". A value that does not parse as an absolute URL is only trimmed.
func NormalizeURL(raw string) string {
	s := strings.TrimSpace(raw)
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return s
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" && u.RawPath == "" {
		u.Path = "/"
	}
	return u.String()
}

// GroupUpdate returns the idempotent update of one alert's group in {prefix}-alert-groups:
// the document id, a painless script with its params, and the upsert document used when
// the group does not exist yet. Applying the updates of the same alerts twice, in any
// order, gives the same document. id is "" when the alert belongs to no group.
func GroupUpdate(a *Alert) (id string, script string, params map[string]any, upsert map[string]any) {
	return "", "", nil, nil
}
