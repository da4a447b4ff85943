package index

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// earlyAnswer answers at once, as a server refusing a body by its length does, and reads and
// closes the request's body on a goroutine of its own once release is closed, as net/http's
// transport may after returning.
type earlyAnswer struct {
	release chan struct{}
	read    atomic.Int64
	closed  atomic.Bool
}

func (e *earlyAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	go func() {
		<-e.release
		n, _ := io.Copy(io.Discard, r.Body)
		e.read.Store(n)
		e.closed.Store(true)
		r.Body.Close()
	}()
	return &http.Response{StatusCode: http.StatusRequestEntityTooLarge, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// RoundTrip returns only once the transport below closed the body, so a caller that reuses the
// body's buffer after the answer (the bulk indexer does) never races with the transport.
func TestDeadlineTransportWaitsForTheBody(t *testing.T) {
	below := &earlyAnswer{release: make(chan struct{})}
	tr := &deadlineTransport{next: below, request: time.Minute, bulk: time.Minute}
	body := bytes.Repeat([]byte("x"), 1<<16)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/_bulk", bytes.NewBuffer(body))
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan bool)
	go func() {
		res, err := tr.RoundTrip(req)
		if err == nil {
			res.Body.Close()
		}
		returned <- below.closed.Load()
	}()
	close(below.release)
	if closed := <-returned; !closed {
		t.Fatal("RoundTrip returned while the transport below still held the body")
	}
	if n := below.read.Load(); n != int64(len(body)) {
		t.Errorf("the transport read %d bytes of %d", n, len(body))
	}
}
