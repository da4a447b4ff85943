package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	req := r.WithContext(ctx)
	sent := trackBodies(req)
	res, err := t.next.RoundTrip(req)
	sent.wait(ctx)
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

// sentBodies counts the bodies of one request that the transport below has opened and not yet
// closed. A transport may return the answer while it still reads the body (a 413 comes as soon
// as the headers say the body is too long) and close it later, on a goroutine of its own. The
// bulk indexer reuses the buffer it gave as the body once the answer is in, so the transport
// would read a buffer being overwritten: RoundTrip waits for every body to be closed first,
// which for an answer the server gave after reading the body is at once.
type sentBodies struct {
	open   atomic.Int64
	closed chan struct{} // a token after every close
}

// trackBodies makes every body of req, and each one its GetBody makes for a retry of the
// transport, count in the returned sentBodies; nil when req has no body.
func trackBodies(req *http.Request) *sentBodies {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	s := &sentBodies{closed: make(chan struct{}, 1)}
	req.Body = s.track(req.Body)
	if get := req.GetBody; get != nil {
		req.GetBody = func() (io.ReadCloser, error) {
			b, err := get()
			if err != nil {
				return nil, err
			}
			return s.track(b), nil
		}
	}
	return s
}

func (s *sentBodies) track(rc io.ReadCloser) io.ReadCloser {
	s.open.Add(1)
	return &sentBody{ReadCloser: rc, s: s}
}

// wait returns once every body is closed or ctx ends, when the transport closes them itself.
func (s *sentBodies) wait(ctx context.Context) {
	if s == nil {
		return
	}
	for s.open.Load() > 0 {
		select {
		case <-s.closed:
		case <-ctx.Done():
			return
		}
	}
}

type sentBody struct {
	io.ReadCloser
	s    *sentBodies
	once sync.Once
}

func (b *sentBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		b.s.open.Add(-1)
		select {
		case b.s.closed <- struct{}{}:
		default:
		}
	})
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
