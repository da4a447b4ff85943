package index

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// templatePriority is above the priority of Elasticsearch's built-in templates (100), so that
// ours win if a built-in pattern ever matches our names.
const templatePriority = 500

// Setup installs, idempotently, the composable index templates of both indices, the attachment
// pipeline when the cluster has the attachment processor, and both indices if they are missing.
// For indices that exist it adds any field the mapping gained since they were created; a field
// whose type changed is an error naming the index. It is safe to call on every run.
func (c *Cluster) Setup(ctx context.Context) error {
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
	for _, k := range []Kind{Messages, Attachments} {
		if err := c.ensureIndex(ctx, k); err != nil {
			return err
		}
	}
	c.log.Debug().Str("messages", c.IndexName(Messages)).Str("attachments", c.IndexName(Attachments)).
		Bool("pipeline", c.AttachmentProcessor()).Msg("index setup done")
	return nil
}

func (c *Cluster) putTemplate(ctx context.Context, k Kind) error {
	name := c.IndexName(k)
	settings := obj{}
	if extra := specOf(k).Settings; extra != nil {
		for key, v := range extra() {
			settings[key] = v
		}
	}
	if c.cfg.Replicas != nil {
		settings["number_of_replicas"] = *c.cfg.Replicas
	}
	body := obj{
		"index_patterns": []string{name},
		"priority":       templatePriority,
		"template":       obj{"settings": settings, "mappings": mappingOf(k)},
		"_meta":          obj{"managed_by": "mimecrawl"},
	}
	if err := c.do(ctx, http.MethodPut, "/_index_template/"+name, nil, body, nil); err != nil {
		return fmt.Errorf("install index template %s: %w", name, err)
	}
	return nil
}

func (c *Cluster) putPipeline(ctx context.Context) error {
	name := c.PipelineName()
	attachment := obj{
		"field":         "data",
		"target_field":  "attachment",
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
			{"set": obj{"field": "attachment_error", "value": "{{ _ingest.on_failure_message }}"}},
			{"remove": obj{"field": "data", "ignore_missing": true}},
		}
	}
	body := obj{
		"description": "extracts the text of attachments for mimecrawl",
		"processors":  []obj{{"attachment": attachment}},
	}
	if err := c.do(ctx, http.MethodPut, "/_ingest/pipeline/"+name, nil, body, nil); err != nil {
		return fmt.Errorf("install ingest pipeline %s: %w", name, err)
	}
	return nil
}

// ensureIndex creates the index from its template, or, if it exists, puts the current mapping on
// it: mapping updates are additive, so this adds new fields and fails on changed ones.
func (c *Cluster) ensureIndex(ctx context.Context, k Kind) error {
	name := c.IndexName(k)
	// Creating and tolerating "already exists" avoids the race of check-then-create between two
	// processes starting together.
	err := c.do(ctx, http.MethodPut, "/"+name, nil, nil, nil)
	var se *StatusError
	switch {
	case err == nil:
		c.log.Info().Str("index", name).Msg("created index")
		return nil
	case errors.As(err, &se) && se.Type == "resource_already_exists_exception":
	default:
		return fmt.Errorf("create index %s: %w", name, err)
	}
	mapping := mappingOf(k)
	// _source options cannot be changed on an existing index; the template carries them.
	delete(mapping, "_source")
	if err := c.do(ctx, http.MethodPut, "/"+name+"/_mapping", nil, mapping, nil); err != nil {
		return fmt.Errorf("update the mapping of existing index %s: %w", name, err)
	}
	return nil
}
