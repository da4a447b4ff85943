package mimecast

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Paths of the legacy endpoints this client calls, each with the role permission it needs.
var (
	pathDomains       = needs("/api/domain/get-internal-domain", "Directories | Internal | Read")
	pathUsers         = needs("/api/user/get-internal-users", "Directories | Internal | Read")
	pathMessageList   = needs("/api/archive/get-message-list", "Archive | Search | Read")
	pathMessageDetail = needs("/api/archive/get-message-detail", "Archive | Search Content View")
	pathMessagePart   = needs("/api/archive/get-message-part", "Archive | Search Content View")
	// The 2.0 reference text names "Archive | Read" for get-file; in practice it behaves like
	// the other content endpoints (inferred), so we name Content View, the stricter one.
	pathFile = needs("/api/archive/get-file", "Archive | Search Content View")
)

// InternalDomains returns every internal domain of the account.
func (c *Client) InternalDomains(ctx context.Context) ([]api.Domain, error) {
	// An empty data[] asks for every domain.
	ans, err := c.call(ctx, pathDomains, &api.Request{Data: []json.RawMessage{}}, false)
	if err != nil {
		return nil, fmt.Errorf("list internal domains: %w", err)
	}
	return decodeDomains("POST "+pathDomains, ans.env, c.shapes)
}

// InternalUsers returns the mailboxes of one domain, walking every page with pageSize;
// aliases and distribution lists (addressType dl_from_ldap) are skipped. Users whose answer
// leaves Domain empty get domain.
func (c *Client) InternalUsers(ctx context.Context, domain string, pageSize int) ([]api.User, error) {
	op := "POST " + pathUsers
	var out []api.User
	err := c.paginate(ctx, pathUsers, api.UsersFilter{Domain: domain}, pageSize, "list users of domain "+domain,
		func(env *api.Response) (int, error) {
			users, rows, err := decodeUsers(op, env, c.shapes)
			if err != nil {
				return 0, fmt.Errorf("list users of domain %s: %w", domain, err)
			}
			for _, u := range users {
				if u.Alias || u.AddressType == api.AddressTypeDistributionList {
					continue
				}
				if u.Domain == "" {
					u.Domain = domain
				}
				out = append(out, u)
			}
			return rows, nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListMessages walks get-message-list for one filter page by page, in order, calling fn once
// per non-empty page. It stops when next is absent, a page is empty, or a token repeats. An
// error from fn stops the walk and is returned unchanged.
//
// Records are decoded one by one and tolerantly (see package api). A record the crawler
// cannot use (not an object, no id, no readable received time) does not fail the page: it
// is passed to fn with Problem set, and then always has ID == "" or a Received that
// api.ParseTime rejects, so the caller fails that one message. The order of records within
// a page is the server's; it is not assumed to be newest-first.
func (c *Client) ListMessages(ctx context.Context, f api.MessageListFilter, pageSize int, fn func(page []api.MessageSummary) error) error {
	op := "POST " + pathMessageList
	what := fmt.Sprintf("list messages of %s %s", f.Mailbox, f.View)
	return c.paginate(ctx, pathMessageList, f, pageSize, what, func(env *api.Response) (int, error) {
		msgs, err := decodeMessages(op, env, c.shapes)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		if len(msgs) == 0 {
			return 0, nil
		}
		return len(msgs), fn(msgs)
	})
}

// paginate walks a paged legacy endpoint. Every page resends the same data item with
// meta.pagination {pageSize, pageToken}; the first page has no token. page consumes one
// answer and returns how many records it held; its error is returned unchanged, while call
// errors are wrapped with what and the page number.
//
// The walk stops when next is absent, when a page is empty (fixtures show a final empty page
// that still carries a next) or when a token comes back that was already used, which would
// otherwise loop for ever.
func (c *Client) paginate(ctx context.Context, path string, item any, pageSize int, what string, page func(*api.Response) (int, error)) error {
	raw, err := json.Marshal(item)
	if err != nil {
		return fmt.Errorf("%s: encode filter: %w", what, err)
	}
	seen := map[string]bool{}
	token := ""
	for n := 1; ; n++ {
		req := &api.Request{
			Meta: &api.RequestMeta{Pagination: &api.Pagination{PageSize: max(pageSize, 0), PageToken: token}},
			Data: []json.RawMessage{raw},
		}
		ans, err := c.call(ctx, path, req, false)
		if err != nil {
			return fmt.Errorf("%s page %d: %w", what, n, err)
		}
		count, err := page(ans.env)
		if err != nil {
			return err
		}
		if count == 0 {
			return nil
		}
		var next string
		if p := ans.env.Meta.Pagination; p != nil {
			next = p.Next
		}
		if next == "" {
			return nil
		}
		if seen[next] {
			c.log.Warn().Str("op", "POST "+path).Int("page", n).Msg("page token repeated; stopping the walk")
			return nil
		}
		seen[next] = true
		token = next
	}
}

// MessageDetail returns the metadata, headers and attachment list of one message.
func (c *Client) MessageDetail(ctx context.Context, id string) (*api.MessageDetail, error) {
	req, err := envelope(api.MessageDetailRequest{ID: id})
	if err != nil {
		return nil, err
	}
	ans, err := c.call(ctx, pathMessageDetail, req, false)
	if err != nil {
		return nil, fmt.Errorf("message detail: %w", err)
	}
	d, err := decodeDetail("POST "+pathMessageDetail, ans.env, c.shapes)
	if err != nil {
		return nil, fmt.Errorf("message detail: %w", err)
	}
	return d, nil
}

// GetFile returns the bytes of an attachment (attachment id) or the whole RFC 822 message
// (message id). It handles both answers seen in the wild: the bytes streamed directly
// (non-JSON Content-Type) and JSON data[0].urls[] / url with a pre-signed URL, which is
// fetched WITHOUT the bearer token. The caller closes the body. Read errors on the body are
// *Error values with Retryable set.
func (c *Client) GetFile(ctx context.Context, id string) (io.ReadCloser, error) {
	return c.file(ctx, pathFile, api.FileRequest{ID: id})
}

// MessagePart returns one rendition of a message (HTML, PLAIN, RFC822), with the same
// handling of streamed and pre-signed answers as GetFile. The caller closes the body.
func (c *Client) MessagePart(ctx context.Context, req api.MessagePartRequest) (io.ReadCloser, error) {
	return c.file(ctx, pathMessagePart, req)
}

// file calls a file endpoint and returns the bytes, fetching a pre-signed URL if that is the
// answer. A download that fails retryably, or is refused because the short-lived URL expired,
// asks the API for a fresh URL; call does its own retries for the API side.
func (c *Client) file(ctx context.Context, path string, item any) (io.ReadCloser, error) {
	op := "POST " + path
	req, err := envelope(item)
	if err != nil {
		return nil, err
	}
	base, _ := url.Parse(c.base)
	for retry := 0; ; retry++ {
		ans, err := c.call(ctx, path, req, true)
		if err != nil {
			return nil, err
		}
		if ans.stream != nil {
			return ans.stream, nil
		}
		urls, err := decodeFileURLs(op, ans.env, base)
		if err != nil {
			return nil, err
		}
		// The field notes fetch the first URL; what further URLs would mean is not known.
		if len(urls) > 1 {
			c.log.Debug().Str("op", op).Int("urls", len(urls)).Msg("several download urls; fetching the first")
		}
		rc, err := c.download(ctx, urls[0])
		if err == nil {
			return rc, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		if !IsRetryable(err) || retry >= c.maxRetries {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		c.stats.retries.Add(1)
		if err := c.backoff(ctx, err, retry+1); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
}

// download GETs a pre-signed URL. The URL is the credential: no Authorization header goes to
// the download host, and its path and query never appear in errors or logs.
func (c *Client) download(ctx context.Context, u *url.URL) (io.ReadCloser, error) {
	op := "GET " + hostOnly(u)
	// Downloads are archive requests in flight like the call that gave the URL, though no
	// quota counts them: they take a slot of the concurrency limiter.
	sl, err := c.limit.acquire(ctx, EndpointDownload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	actx, cancel := context.WithCancelCause(context.WithValue(ctx, downloadKey{}, true))
	timer := time.AfterFunc(c.timeout, func() { cancel(errAttemptTimeout) })
	release := func() {
		timer.Stop()
		cancel(nil)
		sl.release()
	}
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: build request: %w", op, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		release()
		return nil, c.networkError(ctx, actx, op, err)
	}
	sl.answered(resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		release()
		// The body is not kept: storage hosts echo the signed request in their errors.
		// 401/403/410 from a download host mean the short-lived URL is no longer good; a
		// fresh one from the API fixes that, so they are retryable here (inferred).
		s := resp.StatusCode
		e := &Error{Op: op, Status: s, download: true,
			Retryable: retryableStatus(s) || s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusGone}
		if retryableStatus(s) {
			e.hint, e.hasHint = waitHint(resp.Header, c.now())
		}
		return nil, e
	}
	return c.watchBody(ctx, actx, op, resp.Body, timer, release, sl), nil
}

// envelope wraps one data item in a legacy request.
func envelope(item any) (*api.Request, error) {
	raw, err := json.Marshal(item)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return &api.Request{Data: []json.RawMessage{raw}}, nil
}
