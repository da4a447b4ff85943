package crawler

import (
	"context"
	"io"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// Directory lists what may be crawled. Implemented by *mimecast.Client.
type Directory interface {
	// InternalDomains returns every internal domain of the account.
	InternalDomains(ctx context.Context) ([]api.Domain, error)
	// InternalUsers returns the mailboxes of one domain; aliases and distribution lists are
	// already skipped.
	InternalUsers(ctx context.Context, domain string, pageSize int) ([]api.User, error)
}

// Archive reads messages. Implemented by *mimecast.Client. Every method may be called from
// several goroutines at once.
type Archive interface {
	// ListMessages calls fn once per page, in listing order; an error from fn stops the walk.
	ListMessages(ctx context.Context, f api.MessageListFilter, pageSize int, fn func([]api.MessageSummary) error) error
	MessageDetail(ctx context.Context, id string) (*api.MessageDetail, error)
	// GetFile streams an attachment (attachment id) or the RFC 822 message (message id).
	GetFile(ctx context.Context, id string) (io.ReadCloser, error)
}

// Index answers questions about what is already indexed and removes documents.
// Implemented by *index.Cluster.
type Index interface {
	Existing(ctx context.Context, k index.Kind, ids []string) (map[string]bool, error)
	// Refresh makes every acknowledged write visible to searches; a sweep must see the
	// documents this pass has just overwritten, or it would delete them.
	Refresh(ctx context.Context) error
	DeleteWhere(ctx context.Context, k index.Kind, f index.Filter) (int64, error)
}

// Sink takes documents for indexing. done is called exactly once per document, from another
// goroutine, and must not block. Implemented by *index.Writer.
type Sink interface {
	Add(ctx context.Context, d index.Doc, done func(index.Result)) error
	// Flush sends what was added so far without waiting for a full request or a timer, and
	// returns once it is answered (or ctx ends). The crawler calls it only while a view waits
	// for acknowledgements; batching otherwise is the sink's own business.
	Flush(ctx context.Context) error
}

// Store keeps checkpoints. Implemented by *state.Store.
type Store interface {
	Position(k state.Key) (state.Position, bool, error)
	// Commit writes all updates atomically and durably.
	Commit(updates map[state.Key]state.Position) error
	NextGeneration() (int64, error)
	RecordFailure(f state.Failure) error
	ClearFailure(docID string) error
	FailedMessageIDs(k state.Key) (map[string]bool, error)
	Failures(k *state.Key) ([]state.Failure, error)
}

var (
	_ Sink  = (*index.Writer)(nil)
	_ Index = (*index.Cluster)(nil)
	_ Store = (*state.Store)(nil)
)
