package index

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// templatePriority is above the priority of Elasticsearch's built-in templates (100), so that
// ours win if a built-in pattern ever matches our names.
const templatePriority = 500

// How the indices of one kind are laid out (alias = IndexName(k), e.g. mimecast-messages):
//
//   - Documents live in a versioned index, alias-000001, named by the schema version of the
//     kind's spec; everything reads and writes through the alias, the name users query.
//   - The index template {alias} matches {alias}-0* and is composed of {alias}@mimecrawl (our
//     mapping, and shards and replicas when configured) and, when it exists, {alias}@custom: the
//     operator's settings, analyzers, ILM policy and mapping additions, which win over ours.
//     Setup never writes @custom and never changes the settings of an existing index, so what
//     an operator set survives every upgrade.
//   - A new schema version is a new index: Setup copies the documents of the old one into it,
//     converting them, and then moves the alias in one atomic request (see migrate.go).

// CustomTemplate returns the name of the operator's component template for kind k.
func (c *Cluster) CustomTemplate(k Kind) string { return c.IndexName(k) + "@custom" }

func (c *Cluster) ownTemplate(k Kind) string { return c.IndexName(k) + "@mimecrawl" }

// VersionedIndex returns the name of the index that holds the documents of kind k at the
// schema version of this release.
func (c *Cluster) VersionedIndex(k Kind) string {
	return fmt.Sprintf("%s-%06d", c.IndexName(k), k.spec.version())
}

// Setup installs, idempotently, the templates of both indices, the attachment pipeline when
// the cluster has the attachment processor, and both indices if they are missing. For indices
// that exist it adds any field the mapping gained since they were created; a field whose type
// changed is an error naming the index. An installation of an older schema version (including
// the concrete indices of releases before aliases) is migrated to this one. It is safe to call
// on every run.
//
// Everything it creates carries mimecrawl's mark, and it changes nothing when an object of a
// name it manages exists without it (a *ForeignError; see own.go).
func (c *Cluster) Setup(ctx context.Context) error {
	if err := c.InstallTemplates(ctx); err != nil {
		return err
	}
	for _, k := range []Kind{Messages, Attachments} {
		if err := c.ensureIndex(ctx, k); err != nil {
			return err
		}
	}
	c.log.Debug().Str("messages", c.IndexName(Messages)).Str("attachments", c.IndexName(Attachments)).
		Bool("pipeline", c.AttachmentProcessor()).Msg("index setup done")
	return nil
}

// InstallTemplates installs the templates of both indices and the attachment pipeline, and
// changes no index beyond marking as mimecrawl's those an earlier release created: what
// `check` does when Plan says a migration is due. Every object of a name it manages is checked
// first; one that is not mimecrawl's is a *ForeignError and nothing is written.
func (c *Cluster) InstallTemplates(ctx context.Context) error {
	// Marking comes before the templates are rewritten: the template of an earlier release is
	// what recognises its indices (own.go).
	for _, k := range []Kind{Messages, Attachments} {
		if _, err := c.claim(ctx, k, true); err != nil {
			return err
		}
	}
	if c.AttachmentProcessor() {
		if err := c.claimPipeline(ctx); err != nil {
			return err
		}
	}
	for _, k := range []Kind{Messages, Attachments} {
		if err := c.putTemplate(ctx, k); err != nil {
			return err
		}
	}
	if c.AttachmentProcessor() {
		if err := c.putPipeline(ctx); err != nil {
			return err
		}
	}
	return nil
}

// templateSettings are the index settings of kind k's own component template: the spec's,
// then the configured shards and replicas.
func (c *Cluster) templateSettings(k Kind) obj {
	settings := obj{}
	if extra := k.spec.Settings; extra != nil {
		for key, v := range extra() {
			settings[key] = v
		}
	}
	if c.cfg.Shards != nil {
		settings["number_of_shards"] = *c.cfg.Shards
	}
	if c.cfg.Replicas != nil {
		settings["number_of_replicas"] = *c.cfg.Replicas
	}
	return settings
}

func (c *Cluster) putTemplate(ctx context.Context, k Kind) error {
	name := c.IndexName(k)
	settings := c.templateSettings(k)
	meta := ownMeta(k)
	// The mark in the mapping reaches every index the template creates, also those an
	// operator's rollover adds.
	mapping := mappingOf(k)
	markMapping(mapping, k)
	own := obj{
		"template": obj{"settings": settings, "mappings": mapping},
		"_meta":    meta,
	}
	if err := c.do(ctx, http.MethodPut, "/_component_template/"+c.ownTemplate(k), nil, own, nil); err != nil {
		return fmt.Errorf("install component template %s: %w", c.ownTemplate(k), err)
	}
	custom := c.CustomTemplate(k)
	body := obj{
		"index_patterns":                     []string{name + "-0*"},
		"priority":                           templatePriority,
		"composed_of":                        []string{c.ownTemplate(k), custom},
		"ignore_missing_component_templates": []string{custom},
		"_meta":                              meta,
	}
	if err := c.do(ctx, http.MethodPut, "/_index_template/"+name, nil, body, nil); err != nil {
		return fmt.Errorf("install index template %s: %w", name, err)
	}
	return nil
}

func (c *Cluster) putPipeline(ctx context.Context) error {
	name := c.PipelineName()
	attachment := obj{
		"field":         pipelineSource,
		"target_field":  pipelineTarget,
		"indexed_chars": c.cfg.AttachmentIndexedChars,
		"remove_binary": true,
		// Documents without data (oversize, or text the crawler extracted) pass untouched.
		"ignore_missing": true,
	}
	// A file the extractor cannot read (encrypted, damaged) should not cost the document: keep
	// its metadata and say why the text is missing. That needs the set and remove processors,
	// which every full distribution has; without them the item fails and is reported.
	if c.processors["set"] && c.processors["remove"] {
		attachment["on_failure"] = []obj{
			{"set": obj{"field": pipelineError, "value": "{{ _ingest.on_failure_message }}"}},
			{"remove": obj{"field": pipelineSource, "ignore_missing": true}},
		}
	}
	body := obj{
		"description": pipelineDescription,
		"processors":  []obj{{"attachment": attachment}},
		"_meta":       ownMeta(Attachments),
	}
	if err := c.do(ctx, http.MethodPut, "/_ingest/pipeline/"+name, nil, body, nil); err != nil {
		return fmt.Errorf("install ingest pipeline %s: %w", name, err)
	}
	return nil
}

// layout is what the cluster holds under the alias name of one kind.
type layout struct {
	concrete bool     // an index, not an alias, has the name (releases before aliases)
	indices  []string // the indices the alias points to
}

func (l layout) has(name string) bool { return slices.Contains(l.indices, name) }

// resolve reads what the alias name of kind k is.
func (c *Cluster) resolve(ctx context.Context, k Kind) (layout, error) {
	name := c.IndexName(k)
	r, err := c.resolveName(ctx, name)
	if err != nil {
		return layout{}, err
	}
	var l layout
	if r.index {
		l.concrete = true
		l.indices = []string{name}
	}
	if r.alias != nil {
		l.indices = slices.Sorted(slices.Values(r.alias))
	}
	return l, nil
}

// resolved is what holds a name: a concrete index, an alias (with its indices) or a data stream
// (with its backing indices, as listed); nothing when all are false and nil.
type resolved struct {
	index   bool
	alias   []string
	stream  bool
	backing []string
}

// resolveName asks the cluster what holds name (_resolve/index, every kind of object, hidden
// ones included). The one reading of that answer, for the aliased indices and the data streams.
func (c *Cluster) resolveName(ctx context.Context, name string) (resolved, error) {
	var res struct {
		Indices []struct {
			Name string `json:"name"`
		} `json:"indices"`
		Aliases []struct {
			Name    string   `json:"name"`
			Indices []string `json:"indices"`
		} `json:"aliases"`
		DataStreams []struct {
			Name    string   `json:"name"`
			Backing []string `json:"backing_indices"`
		} `json:"data_streams"`
	}
	q := url.Values{"expand_wildcards": {"all"}}
	err := c.do(ctx, http.MethodGet, "/_resolve/index/"+url.PathEscape(name), q, nil, &res)
	switch {
	case notFound(err):
		return resolved{}, nil
	case err != nil:
		return resolved{}, fmt.Errorf("resolve %s: %w", name, err)
	}
	var r resolved
	for _, ix := range res.Indices {
		r.index = r.index || ix.Name == name
	}
	for _, a := range res.Aliases {
		if a.Name == name {
			r.alias = append([]string{}, a.Indices...)
		}
	}
	for _, ds := range res.DataStreams {
		if ds.Name == name {
			r.stream, r.backing = true, ds.Backing
		}
	}
	return r, nil
}

// ensureIndex makes the alias of kind k point to the versioned index of this release: it
// creates the index, or migrates an older one into it, or, when it is in place, updates its
// mapping with what the templates now compose (additive: new fields are added, a changed one
// is an error naming the index).
func (c *Cluster) ensureIndex(ctx context.Context, k Kind) error {
	alias, target := c.IndexName(k), c.VersionedIndex(k)
	// Creating first and looking only when that fails keeps a fresh start to one request,
	// and avoids the race of check-then-create between two processes starting together: the
	// creation fails when the index exists, or when an index of the release before aliases
	// holds the alias's name.
	body := obj{"aliases": obj{alias: obj{"is_write_index": true}}, "mappings": obj{"_meta": ownMeta(k)}}
	err := c.do(ctx, http.MethodPut, "/"+target, nil, body, nil)
	var se *StatusError
	switch {
	case err == nil:
		c.log.Info().Str("index", target).Str("alias", alias).Msg("created index")
		return nil
	case errors.As(err, &se) && se.Status == http.StatusBadRequest:
		// Exists already (resource_already_exists_exception), or the alias name is taken by
		// an index (invalid_alias_name_exception): what is there decides.
	default:
		return fmt.Errorf("create index %s: %w", target, err)
	}
	l, rerr := c.resolve(ctx, k)
	if rerr != nil {
		return rerr
	}
	// Whatever holds the names now must be what the check before the templates found ours.
	if err := c.checkOwned(ctx, k, l.indices...); err != nil {
		return err
	}
	switch {
	case l.has(target) && !l.concrete:
		if err := c.updateMapping(ctx, target); err != nil {
			return err
		}
		// Indices an operator's rollover added behind the alias get the new fields too; one
		// that cannot (a name no template matches) keeps working with the fields it has.
		for _, name := range l.indices {
			if name == target {
				continue
			}
			if err := c.updateMapping(ctx, name); err != nil {
				c.log.Warn().Err(err).Str("index", name).Msg("cannot add new fields to an index behind the alias")
			}
		}
		return nil
	case len(l.indices) > 0:
		return c.migrate(ctx, k, l)
	case se.Type != "resource_already_exists_exception":
		return fmt.Errorf("create index %s: %w", target, err)
	}
	// The index exists without the alias: a migration that stopped after creating it, with
	// the old index already gone. Point the alias at it, if it is ours.
	if err := c.checkOwned(ctx, k, target); err != nil {
		return err
	}
	actions := []obj{{"add": obj{"index": target, "alias": alias, "is_write_index": true}}}
	if err := c.do(ctx, http.MethodPost, "/_aliases", nil, obj{"actions": actions}, nil); err != nil {
		return fmt.Errorf("point alias %s to %s: %w", alias, target, err)
	}
	return c.updateMapping(ctx, target)
}

// updateMapping adds to an existing index the fields that the mapping its templates compose
// today (ours and the operator's together) has and the index lacks. Fields the index has are
// left exactly as they are, whatever their parameters (an operator's analyzer, say), except
// that a different type is an error naming the index: that needs a new schema version. Settings
// are never touched.
func (c *Cluster) updateMapping(ctx context.Context, name string) error {
	return c.updateMappingAs(ctx, name, name)
}

// updateMappingAs is updateMapping of index name with the mapping the templates compose for
// an index named like: a data stream's backing index takes the templates of the stream's name.
func (c *Cluster) updateMappingAs(ctx context.Context, name, like string) error {
	var sim struct {
		Template struct {
			Mappings obj `json:"mappings"`
		} `json:"template"`
	}
	if err := c.do(ctx, http.MethodPost, "/_index_template/_simulate_index/"+url.PathEscape(like), nil, nil, &sim); err != nil {
		return fmt.Errorf("compose the mapping of %s from its templates: %w", name, err)
	}
	want, _ := sim.Template.Mappings["properties"].(map[string]any)
	if len(want) == 0 {
		return fmt.Errorf("update the mapping of existing index %s: no template matches it", name)
	}
	var cur map[string]struct {
		Mappings struct {
			Properties obj `json:"properties"`
		} `json:"mappings"`
	}
	if err := c.do(ctx, http.MethodGet, "/"+url.PathEscape(name)+"/_mapping", nil, nil, &cur); err != nil {
		return fmt.Errorf("read the mapping of %s: %w", name, err)
	}
	var have obj
	for _, m := range cur {
		have = m.Mappings.Properties
	}
	add, err := missingFields(want, have, "")
	if err != nil {
		return fmt.Errorf("update the mapping of existing index %s: %w", name, err)
	}
	if len(add) == 0 {
		return nil
	}
	if err := c.do(ctx, http.MethodPut, "/"+name+"/_mapping", nil, obj{"properties": add}, nil); err != nil {
		return fmt.Errorf("update the mapping of existing index %s: %w", name, err)
	}
	c.log.Info().Str("index", name).Msg("added fields to the mapping of an existing index")
	return nil
}

// missingFields returns the properties of want that have lacks, recursing into objects, or
// an error naming a field whose type differs.
func missingFields(want, have obj, path string) (obj, error) {
	out := obj{}
	for name, w := range want {
		wf, _ := w.(map[string]any)
		hf, ok := have[name].(map[string]any)
		if !ok {
			out[name] = w
			continue
		}
		wt, hasWT := wf["type"].(string)
		ht, hasHT := hf["type"].(string)
		if !hasWT {
			wt = "object"
		}
		if !hasHT {
			ht = "object"
		}
		if wt != ht {
			return nil, fmt.Errorf("field %s%s is a %s in the index and a %s in this release's mapping", path, name, ht, wt)
		}
		wp, _ := wf["properties"].(map[string]any)
		hp, _ := hf["properties"].(map[string]any)
		if len(wp) == 0 {
			continue
		}
		sub, err := missingFields(wp, hp, path+name+".")
		if err != nil {
			return nil, err
		}
		if len(sub) > 0 {
			entry := obj{"properties": sub}
			if wt == "nested" {
				entry["type"] = "nested"
			}
			out[name] = entry
		}
	}
	return out, nil
}
