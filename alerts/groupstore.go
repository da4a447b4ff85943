package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mimecrawl/mimecrawl/index"
)

// DocStore reads and conditionally writes single documents. Implemented by *index.Cluster.
type DocStore interface {
	// GetDoc reads a document in real time; found is false when it does not exist.
	GetDoc(ctx context.Context, k index.Kind, id string) (source json.RawMessage, v index.Version, found bool, err error)
	// PutDoc writes a document if it is new (create) or still at version v; a failed
	// condition wraps index.ErrConflict.
	PutDoc(ctx context.Context, k index.Kind, id string, doc json.RawMessage, v index.Version, create bool) error
}

var _ DocStore = (*index.Cluster)(nil)

// NewGroupStore returns the GroupStore of {prefix}-alert-groups in s.
func NewGroupStore(s DocStore) GroupStore { return groupStore{s} }

type groupStore struct{ s DocStore }

func (g groupStore) GetGroup(ctx context.Context, id string) ([]byte, GroupVersion, bool, error) {
	doc, v, found, err := g.s.GetDoc(ctx, GroupsKind, id)
	return doc, GroupVersion{SeqNo: v.SeqNo, PrimaryTerm: v.PrimaryTerm}, found, err
}

func (g groupStore) PutGroup(ctx context.Context, id string, doc []byte, v GroupVersion, found bool) error {
	err := g.s.PutDoc(ctx, GroupsKind, id, doc, index.Version{SeqNo: v.SeqNo, PrimaryTerm: v.PrimaryTerm}, !found)
	if errors.Is(err, index.ErrConflict) {
		return fmt.Errorf("%w: %w", ErrGroupConflict, err)
	}
	return err
}
