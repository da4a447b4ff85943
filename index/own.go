package index

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Ownership: mimecrawl changes, migrates and deletes only what it created.
//
// Everything it creates carries _meta.managed_by = "mimecrawl" and the schema version: the
// index template {alias} and the component template {alias}@mimecrawl (in their own _meta),
// every index (in its mapping's _meta, which the component template also gives to the indices
// an operator's rollover adds) and the attachment pipeline. An alias cannot carry _meta in
// Elasticsearch: an alias is mimecrawl's when every index behind it is.
//
// Installations of releases before the mark are recognised by what those releases did write:
//   - Every release put _meta.managed_by on its index templates, so a template of our name
//     without it is never ours.
//   - An index created before the mark has no _meta of its own; it is ours when the index
//     template named like its alias, as found before this release changes anything, carries
//     the mark and one of its index_patterns matches the index's name: every release installed
//     that template before creating the index, which then took its mapping from it. Setup marks
//     such an index (adds _meta to its mapping, nothing else) before it rewrites the template,
//     whose new patterns no longer match a concrete index of the release before aliases.
//   - The pipeline of a release before the mark has the description they all gave it.
//
// The @custom component templates are the operator's and are never read or written here.

// managedBy is the value of _meta.managed_by on everything mimecrawl creates.
const managedBy = "mimecrawl"

// pipelineDescription is the description of the attachment pipeline; every release gave it
// this one, which is how a pipeline from before the mark is recognised.
const pipelineDescription = "extracts the text of attachments for mimecrawl"

// ownMeta is the _meta mimecrawl puts on the objects of kind k.
func ownMeta(k Kind) obj {
	return obj{"managed_by": managedBy, "schema_version": k.spec.version()}
}

func marked(meta map[string]any) bool {
	s, _ := meta["managed_by"].(string)
	return s == managedBy
}

// ForeignError says that an object with a name mimecrawl manages exists and is not
// mimecrawl's: Setup, Ensure, Plan, a migration or a deletion found it and changed nothing.
type ForeignError struct {
	Object string // "index", "alias", "index template", "component template" or "ingest pipeline"
	Name   string
	Why    string // what was found
	Fix    string // what the operator can do
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%s %s was not created by mimecrawl (%s); mimecrawl leaves it untouched and stops: %s",
		e.Object, e.Name, e.Why, e.Fix)
}

// IsForeign reports whether err says that an object of a name mimecrawl manages is not
// mimecrawl's (a ForeignError).
func IsForeign(err error) bool {
	var fe *ForeignError
	return errors.As(err, &fe)
}

// fixPrefix is the advice every ForeignError ends with.
const fixPrefix = "or give mimecrawl a prefix of its own (elasticsearch.index_prefix)"

func foreignIndex(name, why string) *ForeignError {
	return &ForeignError{Object: "index", Name: name, Why: why,
		Fix: fmt.Sprintf(`rename or delete it, %s; if an earlier mimecrawl did create it, mark it with PUT /%s/_mapping {"_meta":{"managed_by":"mimecrawl"}} (docs/operations.md)`, fixPrefix, name)}
}

func foreignAlias(alias, index string) *ForeignError {
	return &ForeignError{Object: "alias", Name: alias,
		Why: fmt.Sprintf("it points to index %s, which has no _meta.managed_by: mimecrawl and matches no index template of an earlier mimecrawl", index),
		Fix: fmt.Sprintf(`remove the alias from %s (POST /_aliases with a remove action), %s; if an earlier mimecrawl did create %s, mark it with PUT /%s/_mapping {"_meta":{"managed_by":"mimecrawl"}} (docs/operations.md)`,
			index, fixPrefix, index, index)}
}

func foreignTemplate(object, name, alias string) *ForeignError {
	return &ForeignError{Object: object, Name: name,
		Why: "it has no _meta.managed_by: mimecrawl, which every mimecrawl release has put on its templates",
		Fix: fmt.Sprintf("rename or delete it, %s; settings of your own for mimecrawl's indices belong in the component template %s@custom, which mimecrawl never writes", fixPrefix, alias)}
}

// owned remembers, per kind, the indices found to be mimecrawl's, so that a deletion does not
// ask again for every page.
type owned struct {
	mu sync.Mutex
	by map[Kind]map[string]bool
}

func (o *owned) get(k Kind) map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.by[k]
}

func (o *owned) set(k Kind, names map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.by == nil {
		o.by = map[Kind]map[string]bool{}
	}
	o.by[k] = names
}

// claimTemplates checks that the templates of k, named name, are mimecrawl's where they
// exist: the index template of that name, which it returns, and k's component template. One
// that is not is a *ForeignError.
func (c *Cluster) claimTemplates(ctx context.Context, k Kind, name string) (foundTemplate, error) {
	tmpl, err := c.indexTemplate(ctx, name)
	if err != nil {
		return foundTemplate{}, err
	}
	if tmpl.found && !marked(tmpl.meta) {
		return foundTemplate{}, foreignTemplate("index template", name, name)
	}
	own := c.ownTemplate(k)
	found, meta, err := c.componentTemplate(ctx, own)
	if err != nil {
		return foundTemplate{}, err
	}
	if found && !marked(meta) {
		return foundTemplate{}, foreignTemplate("component template", own, name)
	}
	return tmpl, nil
}

// claim checks that every object of kind k that exists under a name mimecrawl manages (the
// index template, the component template, the alias or an index of the alias's name, the
// indices behind the alias, and the versioned index of this release) is mimecrawl's, and
// returns those indices. An object that is not is a *ForeignError and nothing is changed. With
// mark, indices recognised as created by an earlier release (see above) get the mark now.
func (c *Cluster) claim(ctx context.Context, k Kind, mark bool) (map[string]bool, error) {
	if dataStream(k) {
		return c.claimStream(ctx, k)
	}
	alias := c.IndexName(k)
	tmpl, err := c.claimTemplates(ctx, k, alias)
	if err != nil {
		return nil, err
	}
	l, err := c.resolve(ctx, k)
	if err != nil {
		return nil, err
	}
	target := c.VersionedIndex(k)
	metas, err := c.indexMetas(ctx, append(slices.Clone(l.indices), target))
	if err != nil {
		return nil, err
	}
	ours := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(metas)) {
		meta := metas[name]
		switch {
		case marked(meta):
		case tmpl.found && tmpl.matches(name):
			if mark {
				if err := c.markIndex(ctx, k, name, meta); err != nil {
					return nil, err
				}
			}
		case l.concrete && name == alias:
			return nil, foreignIndex(name, "an index, not mimecrawl's alias, holds the name, without _meta.managed_by: mimecrawl, and no index template of an earlier mimecrawl matches it")
		case l.has(name):
			return nil, foreignAlias(alias, name)
		default:
			return nil, foreignIndex(name, "it has no _meta.managed_by: mimecrawl and no index template of an earlier mimecrawl matches it")
		}
		ours[name] = true
	}
	c.owned.set(k, ours)
	return ours, nil
}

// ownedIndices returns the indices of kind k known to be mimecrawl's, checking the cluster when
// this process has not yet, or when refresh is set.
func (c *Cluster) ownedIndices(ctx context.Context, k Kind, refresh bool) (map[string]bool, error) {
	if o := c.owned.get(k); o != nil && !refresh {
		return o, nil
	}
	return c.claim(ctx, k, false)
}

// markIndex adds mimecrawl's mark to the mapping _meta of an index an earlier release created,
// keeping what _meta holds (an operator's keys): Elasticsearch replaces _meta as a whole.
func (c *Cluster) markIndex(ctx context.Context, k Kind, name string, meta map[string]any) error {
	m := obj{}
	maps.Copy(m, meta)
	m["managed_by"] = managedBy
	if name == c.VersionedIndex(k) {
		m["schema_version"] = k.spec.version()
	}
	if err := c.do(ctx, http.MethodPut, "/"+url.PathEscape(name)+"/_mapping", nil, obj{"_meta": m}, nil); err != nil {
		return fmt.Errorf("mark index %s, created by an earlier mimecrawl, as mimecrawl's: %w", name, err)
	}
	c.log.Info().Str("index", name).Msg("marked an index of an earlier release as mimecrawl's")
	return nil
}

// foundTemplate is an index template as the cluster holds it.
type foundTemplate struct {
	found    bool
	meta     map[string]any
	patterns []string
}

// matches tells whether one of the template's index patterns matches name.
func (t foundTemplate) matches(name string) bool {
	return slices.ContainsFunc(t.patterns, func(p string) bool { return wildcardMatch(p, name) })
}

// wildcardMatch matches name against an index pattern, in which only '*' is special.
func wildcardMatch(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, parts[len(parts)-1])
}

func notFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusNotFound
}

func (c *Cluster) indexTemplate(ctx context.Context, name string) (foundTemplate, error) {
	var res struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				IndexPatterns []string       `json:"index_patterns"`
				Meta          map[string]any `json:"_meta"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	err := c.do(ctx, http.MethodGet, "/_index_template/"+url.PathEscape(name), nil, nil, &res)
	switch {
	case notFound(err):
		return foundTemplate{}, nil
	case err != nil:
		return foundTemplate{}, fmt.Errorf("read index template %s: %w", name, err)
	}
	for _, t := range res.IndexTemplates {
		if t.Name == name {
			return foundTemplate{found: true, meta: t.IndexTemplate.Meta, patterns: t.IndexTemplate.IndexPatterns}, nil
		}
	}
	return foundTemplate{}, nil
}

func (c *Cluster) componentTemplate(ctx context.Context, name string) (bool, map[string]any, error) {
	var res struct {
		ComponentTemplates []struct {
			Name              string `json:"name"`
			ComponentTemplate struct {
				Meta map[string]any `json:"_meta"`
			} `json:"component_template"`
		} `json:"component_templates"`
	}
	err := c.do(ctx, http.MethodGet, "/_component_template/"+url.PathEscape(name), nil, nil, &res)
	switch {
	case notFound(err):
		return false, nil, nil
	case err != nil:
		return false, nil, fmt.Errorf("read component template %s: %w", name, err)
	}
	for _, t := range res.ComponentTemplates {
		if t.Name == name {
			return true, t.ComponentTemplate.Meta, nil
		}
	}
	return false, nil, nil
}

// indexMetas returns the mapping _meta of each of the named indices that exists (an empty map
// for one without _meta).
func (c *Cluster) indexMetas(ctx context.Context, names []string) (map[string]map[string]any, error) {
	var res map[string]struct {
		Mappings struct {
			Meta map[string]any `json:"_meta"`
		} `json:"mappings"`
	}
	joined := strings.Join(slices.Compact(slices.Sorted(slices.Values(names))), ",")
	q := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}, "expand_wildcards": {"all"}}
	err := c.do(ctx, http.MethodGet, "/"+joined+"/_mapping", q, nil, &res)
	switch {
	case notFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read the mappings of %s: %w", joined, err)
	}
	out := make(map[string]map[string]any, len(res))
	for name, m := range res {
		if m.Mappings.Meta == nil {
			m.Mappings.Meta = map[string]any{}
		}
		out[name] = m.Mappings.Meta
	}
	return out, nil
}

// claimPipeline checks that the attachment pipeline, if it exists, is mimecrawl's.
func (c *Cluster) claimPipeline(ctx context.Context) error {
	name := c.PipelineName()
	var res map[string]struct {
		Description string         `json:"description"`
		Meta        map[string]any `json:"_meta"`
	}
	err := c.do(ctx, http.MethodGet, "/_ingest/pipeline/"+url.PathEscape(name), nil, nil, &res)
	switch {
	case notFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("read ingest pipeline %s: %w", name, err)
	}
	p, ok := res[name]
	if !ok || marked(p.Meta) || (p.Meta == nil && p.Description == pipelineDescription) {
		return nil
	}
	return &ForeignError{Object: "ingest pipeline", Name: name,
		Why: "it has neither _meta.managed_by: mimecrawl nor the description every mimecrawl release gave it",
		Fix: "rename or delete it, " + fixPrefix}
}

// checkOwned fails with a *ForeignError when an index of kind k that a request is about to
// change is not among the indices known to be mimecrawl's; the knowledge is refreshed once
// before that.
func (c *Cluster) checkOwned(ctx context.Context, k Kind, indices ...string) error {
	ours, err := c.ownedIndices(ctx, k, false)
	if err != nil {
		return err
	}
	for _, name := range indices {
		if ours[name] {
			continue
		}
		if ours, err = c.ownedIndices(ctx, k, true); err != nil {
			return err
		}
		if !ours[name] {
			return foreignIndex(name, "it has no _meta.managed_by: mimecrawl and no index template of an earlier mimecrawl matches it")
		}
	}
	return nil
}

// markMapping puts mimecrawl's mark into the _meta of mapping, keeping any keys a spec set.
func markMapping(mapping map[string]any, k Kind) {
	meta := obj{}
	if m, ok := mapping["_meta"].(map[string]any); ok {
		maps.Copy(meta, m)
	}
	maps.Copy(meta, ownMeta(k))
	mapping["_meta"] = meta
}
