package mimecast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// errAttemptTimeout is the cancel cause of an attempt that ran past RequestTimeout.
var errAttemptTimeout = errors.New("attempt timed out")

// answer is a successful legacy call: the decoded envelope, or, for file endpoints that
// stream, the open body.
type answer struct {
	env    *api.Response
	stream io.ReadCloser
	size   int64 // Content-Length of the stream, -1 if unknown
}

// call POSTs one legacy envelope to path and returns the answer. With stream set, a 2xx
// answer whose Content-Type is not JSON is handed back as an open body.
func (c *Client) call(ctx context.Context, path string, req *api.Request, stream bool) (*answer, error) {
	op := "POST " + path
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", op, err)
	}
	endpoint := c.base + path
	// op, the method and the path, names the endpoint in the statistics: a small fixed set.
	ctx = withEndpoint(ctx, op)
	return retrying(ctx, c, op, quotaGroup(path), func(tok string, attempt int, sl *slot) (*answer, error) {
		return c.attempt(ctx, op, path, endpoint, body, tok, attempt, stream, sl)
	})
}

// retrying is the only retry layer for API calls, whatever their method and envelope: before
// every attempt it waits for the pacer of the call's quota group, then takes the shared
// token, refreshes the token on 401, and repeats retryable failures up to MaxRetries times
// (0: none). A 429 that is the quota slows down every call of the same group, and only those;
// a sporadic one makes this call wait its hint alone (see pacer).
//
// The token is taken last, right before the request leaves, after every wait (slot, quota,
// a 429's hint): a token taken before a wait may be stale when it is used. A 401 refreshes
// the token and repeats the call without counting as a retry. It is a credential failure
// only when a token refused at once after its fetch (within freshToken, and still the newest)
// is refused twice; a 401 to an older token is its age, not the credentials.
//
// Calls of the account's group first take a slot of the concurrency limiter (Config.Concurrency),
// before the pacer, so that a binding quota shows as latency. try owns the slot once it has
// an answer that is not an error: it releases it once it has read the answer, or hands it to
// the streamed body it returns, which releases it when read to its end or closed. After a
// failed try retrying releases it (release is idempotent), once it has told the limiter
// whether a 429 was the quota. A sporadic 429's own wait holds no slot.
func retrying[T any](ctx context.Context, c *Client, op, group string, try func(tok string, attempt int, sl *slot) (T, error)) (T, error) {
	var zero T
	p := c.pacers.get(group)
	lim := c.limit
	if group != groupAccount {
		lim = nil // the REST groups have quotas and budgets of their own
	}
	var (
		strikes  int           // 401s to fresh tokens
		refusals int           // 401s in all
		own      time.Duration // this call's own wait after a sporadic 429
	)
	for attempt, retry := 1, 0; ; attempt++ {
		if own > 0 {
			waitStart := time.Now()
			err := sleep(ctx, own)
			c.stats.addQuotaWait(group, time.Since(waitStart))
			if err != nil {
				return zero, fmt.Errorf("%s: %w", op, err)
			}
			own = 0
		}
		sl, err := lim.acquire(ctx, op)
		if err != nil {
			return zero, fmt.Errorf("%s: %w", op, err)
		}
		waitStart := time.Now()
		werr := c.pacers.wait(ctx, group)
		c.stats.addQuotaWait(group, time.Since(waitStart))
		if werr != nil {
			sl.release()
			return zero, fmt.Errorf("%s: %w", op, werr)
		}
		tok, fetched, err := c.tokens.token(ctx)
		sent, sentOn := time.Now(), c.now()
		if err == nil {
			var ans T
			ans, err = try(tok, attempt, sl)
			if err == nil {
				p.succeeded()
				return ans, nil
			}
		}
		var e *Error
		errors.As(err, &e)
		if e != nil && e.Status == http.StatusTooManyRequests && !e.token {
			// The pacer learns of every 429, retried or not; the limiter shrinks only for
			// the quota's.
			var quota bool
			own, quota = p.rateLimited(sent, e.hint, e.hasHint)
			if !quota {
				sl.notThrottled()
			}
			c.log.Debug().Str("op", op).Str("group", group).Int("attempt", attempt).Dur("own_wait", own).
				Bool("quota", quota).Bool("hint", e.hasHint).Msg("rate limited")
		} else if e != nil && e.Status != 0 && !e.token {
			// Any other answer from the API is not a 429: the density of 429s counts it.
			p.answered()
		}
		sl.release()
		if ctx.Err() != nil {
			// Cancellation is neither retryable nor permanent: stop quietly.
			return zero, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		if e != nil && e.Status == http.StatusUnauthorized && !e.token {
			age := sentOn.Sub(fetched)
			fresh := age <= freshToken && c.tokens.newest(tok)
			if fresh {
				strikes++
			}
			refusals++
			c.tokens.refused(tok, age)
			if strikes >= 2 || refusals > maxRefusals {
				e.Retryable, e.afterRefresh = false, true
				return zero, e
			}
			// Expired or revoked token: repeat the call with a new one (fetched after the
			// waits, or already fetched by another call). This does not count as a retry.
			c.log.Debug().Str("op", op).Str("code", e.Code).Bool("fresh", fresh).Dur("age", age).Msg("token refused; fetching a new one")
			continue
		}
		if !IsRetryable(err) {
			return zero, err
		}
		if retry >= c.maxRetries {
			return zero, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		retry++
		c.stats.retries.Add(1)
		if e != nil && e.Status == http.StatusTooManyRequests && !e.token {
			continue // the wait is own, or the group's pacer
		}
		if err := c.backoff(ctx, err, retry); err != nil {
			return zero, fmt.Errorf("%s: %w", op, err)
		}
	}
}

const (
	// freshToken is how soon after its fetch a token refused by the API counts against the
	// credentials: later, the refusal is taken as the token's age (a server may honour tokens
	// for less than their expires_in, or a call waited), and the token is replaced.
	freshToken = 5 * time.Second
	// maxRefusals bounds the 401s one call meets before it gives up, whatever their cause.
	maxRefusals = 8
)

// backoff sleeps before retry number n of one call after a retryable error that is not a
// 429: the server's hint if it gave one (a 503 may), else exponential backoff with jitter.
func (c *Client) backoff(ctx context.Context, err error, n int) error {
	d := retryBackoff(n, c.minBackoff, c.maxBackoff)
	var e *Error
	if errors.As(err, &e) && e.hasHint {
		d = scaleClamp(e.hint, c.multiplier, c.maxWait)
	}
	c.log.Debug().Int("retry", n).Dur("wait", d).Str("error", err.Error()).Msg("call failed; retrying")
	return sleep(ctx, d)
}

// attempt makes one HTTP exchange for call and classifies its outcome.
// sl is the call's concurrency slot (nil without a limiter), released with the attempt.
func (c *Client) attempt(ctx context.Context, op, path, endpoint string, body []byte, tok string, n int, stream bool, sl *slot) (*answer, error) {
	actx, cancel := context.WithCancelCause(withAttempt(ctx, n))
	timer := time.AfterFunc(c.timeout, func() { cancel(errAttemptTimeout) })
	release := func() {
		timer.Stop()
		cancel(nil)
		sl.release()
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: build request: %w", op, err)
	}
	// NewRequest sets GetBody for a bytes.Reader, so redirects and the tracer can replay it;
	// each attempt gets a fresh reader over the same bytes.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)

	resp, err := c.http.Do(req)
	if err != nil {
		release()
		return nil, c.networkError(ctx, actx, op, err)
	}
	sl.answered(resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The slot stays held: retrying releases it once it knows whether a 429 was the
		// quota's.
		timer.Stop()
		cancel(nil)
		return nil, c.statusError(op, path, resp)
	}
	if stream && !isJSON(resp.Header.Get("Content-Type")) {
		return &answer{stream: c.watchBody(ctx, actx, op, resp.Body, timer, release, sl), size: resp.ContentLength}, nil
	}
	defer release()
	data, err := readBounded(resp.Body, maxJSONBody)
	resp.Body.Close()
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("malformed response from %s: %w", op, err)
		}
		return nil, c.networkError(ctx, actx, op, err)
	}
	env, err := decodeResponse(op, data)
	// An envelope with data[] or fail[] decodes as one, which spares the usual answer a
	// second parse; anything else is probed.
	if stream && (err != nil || (env.Data == nil && env.Fail == nil)) && !isEnvelope(data) {
		// A JSON file served as such (a .json attachment): the bytes are the answer. Mimecast
		// streams files with their own Content-Type (inferred), so this is the only way to
		// tell a JSON file from a JSON envelope.
		c.stats.downloads.Add(1)
		c.stats.downloadBytes.Add(int64(len(data)))
		return &answer{stream: io.NopCloser(bytes.NewReader(data)), size: int64(len(data))}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(env.Fail) > 0 {
		e := failError(op, env.Fail)
		e.Message = c.tokens.scrub(e.Message)
		return nil, e
	}
	return &answer{env: env}, nil
}

// statusError reads a non-2xx answer (bounded) and classifies it.
func (c *Client) statusError(op, path string, resp *http.Response) *Error {
	data, _ := readBounded(resp.Body, maxErrorBody)
	resp.Body.Close()
	code, msg := failText(data)
	e := &Error{
		Op:        op,
		Status:    resp.StatusCode,
		Code:      code,
		Message:   c.tokens.scrub(msg),
		Retryable: retryableStatus(resp.StatusCode),
	}
	if resp.StatusCode == http.StatusForbidden {
		e.Permission = permissions[path]
	}
	if e.Retryable {
		e.hint, e.hasHint = waitHint(resp.Header, c.now())
	}
	return e
}

// networkError wraps a failed exchange with its op. ctx is the call's context, actx the
// attempt's: a cancelled call is reported as such, a timed-out attempt as retryable.
func (c *Client) networkError(ctx, actx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error repeats the URL, which for a download host includes its signature.
		err = ue.Err
	}
	msg := c.tokens.scrub(err.Error())
	if errors.Is(context.Cause(actx), errAttemptTimeout) {
		msg = "no answer within " + c.timeout.String()
	}
	return &Error{Op: op, Message: msg, Retryable: true, cause: err}
}

var errTooLarge = fmt.Errorf("body larger than %d MB", maxJSONBody>>20)

// readBounded reads r up to limit bytes; more is errTooLarge.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}

// watchBody wraps a streamed body: it counts bytes for the statistics, restarts the attempt
// timer on every read (so a large download may take long but may not stall for longer than
// RequestTimeout), and wraps read errors as retryable Errors naming op. The concurrency slot sl
// is released when the body is read to its end or closed, whichever comes first; release (the
// attempt's timer and context, and sl) when it is closed.
func (c *Client) watchBody(ctx, actx context.Context, op string, rc io.ReadCloser, timer *time.Timer, release func(), sl *slot) io.ReadCloser {
	c.stats.downloads.Add(1)
	return &download{c: c, ctx: ctx, actx: actx, op: op, rc: rc, timer: timer, release: release, slot: sl}
}

type download struct {
	c       *Client
	ctx     context.Context
	actx    context.Context
	op      string
	rc      io.ReadCloser
	timer   *time.Timer
	release func()
	slot    *slot
	closed  bool
}

func (d *download) Read(p []byte) (int, error) {
	n, err := d.rc.Read(p)
	d.c.stats.downloadBytes.Add(int64(n))
	if err == nil {
		d.timer.Reset(d.c.timeout)
		return n, nil
	}
	if errors.Is(err, io.EOF) {
		// Read to its end: the request is done even if the caller closes the body later.
		d.timer.Reset(d.c.timeout)
		d.slot.release()
		return n, err
	}
	return n, d.c.networkError(d.ctx, d.actx, d.op, err)
}

func (d *download) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.rc.Close()
	d.release()
	return err
}
