package index

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// Kind is one kind of document, each in its own index {prefix}-{Name} (or data stream): a
// handle on an immutable Spec. The package that owns the documents makes it once, with
// NewKind, and passes it to the Cluster and the Writer wherever its documents are written or
// read; package index keeps no list of kinds. A Kind equals only itself (and its copies); the
// zero Kind names no index and is refused everywhere.
type Kind struct{ spec *Spec }

// The archive's kinds, whose documents this package defines (documents.go).
var (
	Messages    = NewKind(Spec{Name: "messages", Mapping: messageMapping, Convert: convertMessage})
	Attachments = NewKind(Spec{Name: "attachments", Mapping: attachmentMapping, Convert: convertAttachment})
)

// NewKind returns the kind described by s, which it copies. It checks nothing: a cluster
// checks the spec, and that its name is its own, when it is given the kind to manage
// (Ensure), so that a wrong spec is an error there rather than a panic at start-up.
func NewKind(s Spec) Kind { return Kind{spec: &s} }

// Spec describes one index: its name suffix and its explicit mapping. The package that owns the
// documents makes a Kind of it (NewKind), so that package index stays ignorant of what they are.
type Spec struct {
	// Name is the index name suffix: the index is {prefix}-{Name}. Lowercase letters, digits
	// and '-'; unique among the kinds one Cluster manages.
	Name string
	// Mapping returns a fresh mapping (the "mappings" object of a template); required.
	Mapping func() map[string]any
	// Settings returns extra index settings, or nil; number_of_shards and number_of_replicas
	// come from Config, and the operator's @custom component template wins over both.
	Settings func() map[string]any
	// Version is the schema version: documents live in the index {prefix}-{Name}-{Version as
	// 000001}. Raise it when the mapping changes in a way an existing index cannot take; Setup
	// and Ensure then migrate the documents (see Convert). 0 means 1. The suffix has the shape
	// rollover increments; before the first spec goes to version 2, mark the schema version in
	// the index too, so that an operator's rolled-over -000002 is not taken for it.
	Version int
	// Convert turns the _source of a document of the previous version (or of a release before
	// versioned indices) into this version's; it may change the map it is given. nil copies
	// documents unchanged.
	Convert func(src map[string]any) map[string]any
	// DataStream, when set, makes the kind an Elasticsearch data stream named after Elastic's
	// scheme, logs-{DataStream}-{namespace} (Config.Namespace), instead of a versioned index
	// behind {prefix}-{Name}: the dataset, e.g. "mimecrawl.alerts". Documents of such a kind
	// are append-only (written with OpCreate; see stream.go), and Version and Convert do not
	// apply. Unique among the kinds one Cluster manages.
	DataStream string
}

func (s *Spec) version() int { return max(s.Version, 1) }

var validSpecName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// validDataset is Elastic's rule for a dataset, the middle of logs-{dataset}-{namespace}.
var validDataset = regexp.MustCompile(`^[a-z0-9][a-z0-9._]{0,99}$`)

// errNoKind is the error of every method given the zero Kind.
var errNoKind = errors.New("the zero Kind names no index")

// check reports what makes the kind unusable: none at all, a name or dataset that cannot be
// part of an index name, or no mapping.
func (k Kind) check() error {
	s := k.spec
	switch {
	case s == nil:
		return errNoKind
	case !validSpecName.MatchString(s.Name):
		return fmt.Errorf("kind %q: invalid name (lowercase letters, digits and '-', at most 64)", s.Name)
	case s.DataStream != "" && !validDataset.MatchString(s.DataStream):
		return fmt.Errorf("kind %q: invalid dataset %q", s.Name, s.DataStream)
	case s.Mapping == nil:
		return fmt.Errorf("kind %q has no mapping", s.Name)
	}
	return nil
}

func (k Kind) valid() bool { return k.spec != nil }

// String returns the index suffix of the kind.
func (k Kind) String() string {
	if !k.valid() {
		return "Kind(none)"
	}
	return k.spec.Name
}

// kindSet holds the kinds one Cluster manages: the archive's, and those given to Ensure. Two
// kinds of one name or one dataset would share templates and indices, each installing its
// mapping over the other's, so the second is refused.
type kindSet struct {
	mu     sync.Mutex
	byName map[string]Kind
}

// add checks kinds and that each name and dataset is given to one kind only, then adds them
// all, or none when one is refused.
func (m *kindSet) add(kinds ...Kind) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	byName, byDataset := maps.Clone(m.byName), map[string]Kind{}
	if byName == nil {
		byName = map[string]Kind{}
	}
	for _, k := range byName {
		if ds := k.spec.DataStream; ds != "" {
			byDataset[ds] = k
		}
	}
	for _, k := range kinds {
		if err := k.check(); err != nil {
			return err
		}
		name, ds := k.spec.Name, k.spec.DataStream
		if o, ok := byName[name]; ok && o != k {
			return fmt.Errorf("kind %q: another kind of that name is managed by this cluster", name)
		}
		if o, ok := byDataset[ds]; ok && ds != "" && o != k {
			return fmt.Errorf("kind %q: dataset %q is kind %q's already", name, ds, o.spec.Name)
		}
		byName[name] = k
		if ds != "" {
			byDataset[ds] = k
		}
	}
	m.byName = byName
	return nil
}

// Ensure installs, idempotently, the index template and the index of each kind, with the same
// rules as Setup (additive mapping updates; a changed field type is an error naming the index).
// Setup does this for the archive's kinds; other documents' owners call Ensure for theirs. Like
// Setup it refuses, with a *ForeignError, objects of its names that are not mimecrawl's.
//
// The kinds become kinds the cluster manages. Ensure changes nothing and returns an error when
// one of them is the zero Kind, has an invalid name or dataset or no mapping, or shares its
// name or dataset with another kind the cluster manages (the archive's, or one given to an
// earlier Ensure): both would install their templates under one name.
func (c *Cluster) Ensure(ctx context.Context, kinds ...Kind) error {
	if err := c.kinds.add(kinds...); err != nil {
		return fmt.Errorf("ensure index: %w", err)
	}
	for _, k := range kinds {
		if _, err := c.claim(ctx, k, true); err != nil {
			return err
		}
	}
	for _, k := range kinds {
		if dataStream(k) {
			if err := c.putStreamTemplate(ctx, k); err != nil {
				return err
			}
			if err := c.ensureStream(ctx, k); err != nil {
				return err
			}
			continue
		}
		if err := c.putTemplate(ctx, k); err != nil {
			return err
		}
		if err := c.ensureIndex(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// RefreshKinds makes every acknowledged write to the indices of kinds visible to searches.
func (c *Cluster) RefreshKinds(ctx context.Context, kinds ...Kind) error {
	names := make([]string, 0, len(kinds))
	for _, k := range kinds {
		if !k.valid() {
			return fmt.Errorf("refresh: %w", errNoKind)
		}
		names = append(names, c.IndexName(k))
	}
	joined := strings.Join(names, ",")
	if err := c.do(ctx, http.MethodPost, "/"+joined+"/_refresh", nil, nil, nil); err != nil {
		return fmt.Errorf("refresh %s: %w", joined, err)
	}
	return nil
}
