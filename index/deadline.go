package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// TimeoutError says that Elasticsearch did not answer one request within its deadline. The
// client does not retry it: the deadline already waited long, and a node that stalls would
// otherwise cost the deadline once per retry.
type TimeoutError struct {
	Method, Path string
	After        time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s %s: no answer from Elasticsearch within %s", e.Method, e.Path, e.After)
}

// Timeout reports true, as a net.Error that timed out does.
func (e *TimeoutError) Timeout() bool { return true }

// deadlineTransport gives every request its own deadline, covering the answer's body too: a
// node that accepts a connection and never answers, or stops half-way through an answer, ends
// the request with a TimeoutError instead of holding its caller for ever. It sits below the
// client's retries, so each attempt has its own deadline. Bulk requests, which carry megabytes
// and may run through an ingest pipeline, get a longer one.
type deadlineTransport struct {
	next          http.RoundTripper
	request, bulk time.Duration
}

func (t *deadlineTransport) timeout(r *http.Request) time.Duration {
	if strings.HasSuffix(r.URL.Path, "/_bulk") {
		return t.bulk
	}
	return t.request
}

func (t *deadlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	d := t.timeout(r)
	parent := r.Context()
	ctx, cancel := context.WithTimeout(parent, d)
	res, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		if expired(ctx, parent) {
			return nil, &TimeoutError{Method: r.Method, Path: r.URL.Path, After: d}
		}
		return nil, err
	}
	res.Body = &deadlineBody{ReadCloser: res.Body, ctx: ctx, parent: parent, cancel: cancel,
		timeout: &TimeoutError{Method: r.Method, Path: r.URL.Path, After: d}}
	return res, nil
}

// expired tells whether ctx ended by its own deadline rather than by its parent.
func expired(ctx, parent context.Context) bool {
	return errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil
}

// deadlineBody keeps the request's deadline alive until the body is closed, and turns a read
// cut off by the deadline into a TimeoutError.
type deadlineBody struct {
	io.ReadCloser
	ctx, parent context.Context
	cancel      context.CancelFunc
	timeout     *TimeoutError
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && expired(b.ctx, b.parent) {
		return n, b.timeout
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// retryOnError is the client's rule for retrying a request that got no answer: everything but
// a deadline that already expired and a request whose caller gave up.
func retryOnError(r *http.Request, err error) bool {
	var te *TimeoutError
	if errors.As(err, &te) || r.Context().Err() != nil {
		return false
	}
	// A refused certificate stays refused; retrying it only delays the message.
	return !IsUntrustedCertificate(err)
}
