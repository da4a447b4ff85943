package alerts

import (
	"context"
	"errors"
	"fmt"

	"github.com/mimecrawl/mimecrawl/index"
)

// DocStore reads and conditionally writes documents in batches. Implemented by
// *index.Cluster.
type DocStore interface {
	// GetDocs reads documents in real time with one request; missing ones are absent.
	GetDocs(ctx context.Context, k index.Kind, ids []string) (map[string]index.Stored, error)
	// PutDocs writes documents in one request, each only if it is new (Create) or still at
	// its Version; one error per write, a failed condition wrapping index.ErrConflict and a
	// busy refusal index.ErrBusy.
	PutDocs(ctx context.Context, k index.Kind, ws []index.CondWrite) ([]error, error)
}

var _ DocStore = (*index.Cluster)(nil)

// NewGroupStore returns the GroupStore of {prefix}-alert-groups in s.
func NewGroupStore(s DocStore) GroupStore { return groupStore{s} }

type groupStore struct{ s DocStore }

func (g groupStore) GetGroups(ctx context.Context, ids []string) (map[string]StoredGroup, error) {
	docs, err := g.s.GetDocs(ctx, GroupsKind, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]StoredGroup, len(docs))
	for id, d := range docs {
		out[id] = StoredGroup{Doc: d.Source, Version: GroupVersion{SeqNo: d.Version.SeqNo, PrimaryTerm: d.Version.PrimaryTerm}}
	}
	return out, nil
}

func (g groupStore) PutGroups(ctx context.Context, ws []GroupWrite) ([]error, error) {
	cw := make([]index.CondWrite, len(ws))
	for i, w := range ws {
		cw[i] = index.CondWrite{ID: w.ID, Doc: w.Doc, Version: index.Version{SeqNo: w.Version.SeqNo, PrimaryTerm: w.Version.PrimaryTerm}, Create: !w.Found}
	}
	errs, err := g.s.PutDocs(ctx, GroupsKind, cw)
	if err != nil {
		return nil, err
	}
	for i, e := range errs {
		switch {
		case errors.Is(e, index.ErrConflict):
			errs[i] = fmt.Errorf("%w: %w", ErrGroupConflict, e)
		case errors.Is(e, index.ErrBusy):
			errs[i] = fmt.Errorf("%w: %w", ErrGroupBusy, e)
		}
	}
	return errs, nil
}
