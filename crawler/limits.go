package crawler

import (
	"fmt"
	"io"

	"github.com/mimecrawl/mimecrawl/crawler/body"
)

// DefaultMaxMessageBytes caps the RFC 822 download of one message when
// MessageLimits.MaxMessageBytes is zero: far above real mail (Mimecast's own limits are tens
// of megabytes), far below what would hurt.
const DefaultMaxMessageBytes = 150 << 20

// listedSlack is added to twice the listed size of a message to give its download limit.
const listedSlack = 16 << 20

// MessageLimits bounds what one message may cost, whatever the archive serves. Zero fields
// take their defaults.
type MessageLimits struct {
	// MaxMessageBytes caps the download of a message's RFC 822 form; zero means
	// DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// KeepMemory caps the attachment bytes of one message held in memory between reading the
	// message and indexing its attachments; those beyond it wait in a temporary file. Zero
	// means body.DefaultKeepMemory.
	KeepMemory int64
	// SpillDir is where those temporary files go; "" means the system's temporary directory.
	SpillDir string
}

// downloadLimit is how much of a message's RFC 822 form is read: MaxMessageBytes and, when
// the archive gave a size, twice that size plus 16 MiB. The listed size is inferred to be the
// size of the RFC 822 form; the margin is wide because the listing may well be off (a size
// without headers, or before re-encoding), while a message listed at 15 KB still cannot turn
// into a download of hundreds of megabytes.
func (l MessageLimits) downloadLimit(listed int64) int64 {
	limit := l.MaxMessageBytes
	if limit <= 0 {
		limit = DefaultMaxMessageBytes
	}
	if listed > 0 && listed < limit {
		limit = min(limit, 2*listed+listedSlack)
	}
	return limit
}

func (l MessageLimits) keepMemory() int64 {
	if l.KeepMemory <= 0 {
		return body.DefaultKeepMemory
	}
	return l.KeepMemory
}

// tooLargeError ends the download of a message that goes on past its limit.
type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("message larger than its download limit of %d bytes", e.limit)
}

// limitedBody reads at most limit bytes of a download and fails with *tooLargeError when there
// are more, so that a message of exactly the limit still passes.
type limitedBody struct {
	r     io.Reader
	left  int64
	limit int64
}

func newLimitedBody(r io.Reader, limit int64) *limitedBody {
	return &limitedBody{r: r, left: limit, limit: limit}
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if l.left <= 0 {
		var one [1]byte
		if n, err := io.ReadFull(l.r, one[:]); n == 0 {
			return 0, err
		}
		return 0, &tooLargeError{limit: l.limit}
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
