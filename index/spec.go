package index

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// Kind selects one kind of document, each in its own index {prefix}-{name}. Kinds are
// registered with Register; Messages and Attachments are always there.
type Kind int

// The archive's kinds, registered by this package.
const (
	Messages Kind = iota
	Attachments
)

// Spec describes one index: its name suffix and its explicit mapping. Register it once, from
// the package that owns the documents, so that package index stays ignorant of what they are.
type Spec struct {
	// Name is the index name suffix: the index is {prefix}-{Name}. Lowercase letters, digits
	// and '-'; unique.
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
	// apply.
	DataStream string
}

func (s Spec) version() int { return max(s.Version, 1) }

var (
	specsMu sync.RWMutex
	// specs is indexed by Kind. Registration happens during package initialisation, so in
	// practice the slice only grows before main starts.
	specs = []Spec{
		{Name: "messages", Mapping: messageMapping, Convert: convertMessage},
		{Name: "attachments", Mapping: attachmentMapping, Convert: convertAttachment},
	}
)

var validSpecName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// validDataset is Elastic's rule for a dataset, the middle of logs-{dataset}-{namespace}.
var validDataset = regexp.MustCompile(`^[a-z0-9][a-z0-9._]{0,99}$`)

// Register adds an index spec and returns its Kind. It panics on an invalid or duplicate name
// or a missing mapping: registrations are fixed in code, so that is a programming error, and
// it should fail at start-up rather than when the first document is written.
func Register(s Spec) Kind {
	if !validSpecName.MatchString(s.Name) {
		panic(fmt.Sprintf("index.Register: invalid spec name %q", s.Name))
	}
	if s.DataStream != "" && !validDataset.MatchString(s.DataStream) {
		panic(fmt.Sprintf("index.Register: spec %q has an invalid dataset %q", s.Name, s.DataStream))
	}
	if s.Mapping == nil {
		panic(fmt.Sprintf("index.Register: spec %q has no mapping", s.Name))
	}
	specsMu.Lock()
	defer specsMu.Unlock()
	for _, o := range specs {
		if o.Name == s.Name {
			panic(fmt.Sprintf("index.Register: spec %q registered twice", s.Name))
		}
	}
	specs = append(specs, s)
	return Kind(len(specs) - 1)
}

// KindNamed returns the registered kind with that name.
func KindNamed(name string) (Kind, bool) {
	specsMu.RLock()
	defer specsMu.RUnlock()
	for i, s := range specs {
		if s.Name == name {
			return Kind(i), true
		}
	}
	return 0, false
}

func specOf(k Kind) Spec {
	specsMu.RLock()
	defer specsMu.RUnlock()
	return specs[k]
}

func (k Kind) valid() bool {
	specsMu.RLock()
	defer specsMu.RUnlock()
	return k >= 0 && int(k) < len(specs)
}

// String returns the index suffix of the kind.
func (k Kind) String() string {
	if !k.valid() {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return specOf(k).Name
}

// Ensure installs, idempotently, the index template and the index of each kind, with the same
// rules as Setup (additive mapping updates; a changed field type is an error naming the index).
// Setup does this for the archive's kinds; other documents' owners call Ensure for theirs. Like
// Setup it refuses, with a *ForeignError, objects of its names that are not mimecrawl's.
func (c *Cluster) Ensure(ctx context.Context, kinds ...Kind) error {
	for _, k := range kinds {
		if !k.valid() {
			return fmt.Errorf("ensure index: unknown kind %d", int(k))
		}
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
			return fmt.Errorf("refresh: unknown kind %d", int(k))
		}
		names = append(names, c.IndexName(k))
	}
	joined := strings.Join(names, ",")
	if err := c.do(ctx, http.MethodPost, "/"+joined+"/_refresh", nil, nil, nil); err != nil {
		return fmt.Errorf("refresh %s: %w", joined, err)
	}
	return nil
}
