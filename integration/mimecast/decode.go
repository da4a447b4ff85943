package mimecast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// The decoders below turn answers into wire types. They never panic on hostile input (see
// FuzzDecodeResponse) and name the op in every error, so that "malformed response from
// POST /api/..." tells the operator which endpoint broke its contract.

// decodeResponse parses a legacy envelope. The top level must be a JSON object.
func decodeResponse(op string, body []byte) (*api.Response, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, malformed(op, errors.New("empty body"))
	}
	if trimmed[0] != '{' {
		return nil, malformed(op, fmt.Errorf("want a JSON object, got %q", excerpt(trimmed)))
	}
	var env api.Response
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return nil, malformed(op, err)
	}
	return &env, nil
}

// decodeMessages reads a get-message-list page: a flat data[] of summaries.
func decodeMessages(op string, env *api.Response) ([]api.MessageSummary, error) {
	out := make([]api.MessageSummary, len(env.Data))
	for i, raw := range env.Data {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, malformed(op, fmt.Errorf("data[%d]: %w", i, err))
		}
		if out[i].ID == "" {
			return nil, malformed(op, fmt.Errorf("data[%d]: message without id", i))
		}
	}
	return out, nil
}

// decodeUsers reads a get-internal-users page: data[0].users[]. The reference shows one
// element; should several come, their users are concatenated (inferred). An empty data[] is
// an empty page.
func decodeUsers(op string, env *api.Response) ([]api.User, error) {
	var out []api.User
	for i, raw := range env.Data {
		var page api.UsersPage
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, malformed(op, fmt.Errorf("data[%d]: %w", i, err))
		}
		out = append(out, page.Users...)
	}
	return out, nil
}

// decodeDomains reads get-internal-domain: a flat data[].
func decodeDomains(op string, env *api.Response) ([]api.Domain, error) {
	out := make([]api.Domain, len(env.Data))
	for i, raw := range env.Data {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, malformed(op, fmt.Errorf("data[%d]: %w", i, err))
		}
	}
	return out, nil
}

// decodeDetail reads get-message-detail: data[0].
func decodeDetail(op string, env *api.Response) (*api.MessageDetail, error) {
	if len(env.Data) == 0 {
		return nil, malformed(op, errors.New("no data[0] and no fail[]"))
	}
	var d api.MessageDetail
	if err := json.Unmarshal(env.Data[0], &d); err != nil {
		return nil, malformed(op, fmt.Errorf("data[0]: %w", err))
	}
	return &d, nil
}

// decodeFileURLs reads the pre-signed download URLs of get-file (data[0].urls[]) or
// get-message-part (data[0].url). Relative URLs are resolved against base (inferred; not
// seen); only http(s) URLs are accepted.
func decodeFileURLs(op string, env *api.Response, base *url.URL) ([]*url.URL, error) {
	if len(env.Data) == 0 {
		return nil, malformed(op, errors.New("no data[0] and no fail[]"))
	}
	var f api.FileURLs
	if err := json.Unmarshal(env.Data[0], &f); err != nil {
		return nil, malformed(op, fmt.Errorf("data[0]: %w", err))
	}
	raws := f.URLs
	if f.URL != "" {
		raws = append(raws, f.URL)
	}
	var out []*url.URL
	for _, raw := range raws {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, malformed(op, fmt.Errorf("download url: %w", err))
		}
		if base != nil {
			u = base.ResolveReference(u)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, malformed(op, fmt.Errorf("download url %s: want an absolute http(s) URL", hostOnly(u)))
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, malformed(op, errors.New("data[0] has neither urls[] nor url"))
	}
	return out, nil
}

// isEnvelope reports whether a JSON body is a legacy envelope (has meta, data or fail) rather
// than a file that happens to be JSON.
func isEnvelope(body []byte) bool {
	var probe struct {
		Meta *json.RawMessage `json:"meta"`
		Data *json.RawMessage `json:"data"`
		Fail *json.RawMessage `json:"fail"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return false
	}
	return probe.Meta != nil || probe.Data != nil || probe.Fail != nil
}

func malformed(op string, err error) error {
	return fmt.Errorf("malformed response from %s: %w", op, err)
}

func excerpt(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
