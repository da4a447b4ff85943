package index

// The mappings of both indices. Field names are the JSON names of MessageDoc and AttachmentDoc:
// ECS fields with ECS's types, and mimecast.* for the rest.
//
// dynamic is false rather than strict: a field the mapping does not know (a newer crawler, a
// header-like field from an unusual message) is kept in _source but not indexed, instead of
// either rejecting the whole document (strict) or growing the mapping without bound (true).
//
// Where ECS names a type that needs a module not every cluster has (wildcard for
// email.message_id, match_only_text for email.subject.text), the core type of the same family
// is used: keyword and text. Queries written for ECS work the same on them.

// obj is a JSON object being built for a request.
type obj = map[string]any

// typed returns a fresh field mapping of type t; fresh so that no two mappings share a map.
func typed(t string) obj { return obj{"type": t} }

func props(p obj) obj { return obj{"properties": p} }

// textWithKeyword is full text plus an exact sub-field for sorting and aggregations; values
// longer than the keyword limit are left out of the sub-field only.
func textWithKeyword() obj {
	return obj{"type": "text", "fields": obj{"keyword": obj{"type": "keyword", "ignore_above": 1024}}}
}

// keywordWithText is ECS's shape for subjects: a keyword, with full text in .text.
func keywordWithText() obj {
	return obj{"type": "keyword", "ignore_above": 1024, "fields": obj{"text": typed("text")}}
}

func addressGroup() obj { return props(obj{"address": typed("keyword")}) }

func namesGroup() obj { return props(obj{"name": textWithKeyword()}) }

// ecsCommon are the ECS fields both documents share.
func ecsCommon(attachments obj) obj {
	return obj{
		"@timestamp": typed("date"),
		"ecs":        props(obj{"version": typed("keyword")}),
		"event": props(obj{
			"kind": typed("keyword"), "category": typed("keyword"), "type": typed("keyword"),
			"module": typed("keyword"), "dataset": typed("keyword"), "ingested": typed("date"),
		}),
		"email": props(obj{
			"message_id":            typed("keyword"),
			"local_id":              typed("keyword"),
			"subject":               keywordWithText(),
			"from":                  addressGroup(),
			"sender":                addressGroup(),
			"to":                    addressGroup(),
			"cc":                    addressGroup(),
			"reply_to":              addressGroup(),
			"direction":             typed("keyword"),
			"origination_timestamp": typed("date"),
			"delivery_timestamp":    typed("date"),
			"attachments":           attachments,
		}),
		"user":    props(obj{"email": typed("keyword")}),
		"related": props(obj{"hash": typed("keyword"), "user": typed("keyword")}),
	}
}

func fileMapping() obj {
	return props(obj{
		"name": typed("keyword"), "mime_type": typed("keyword"), "extension": typed("keyword"),
		"size": typed("long"), "hash": props(obj{"sha256": typed("keyword")}),
	})
}

func messageMapping() obj {
	p := ecsCommon(obj{
		// nested, as ECS has it: "an attachment named X with hash Y" matches one attachment.
		"type":       "nested",
		"properties": obj{"file": fileMapping()},
	})
	p["mimecast"] = props(obj{
		"id":       typed("keyword"),
		"mailbox":  typed("keyword"),
		"domain":   typed("keyword"),
		"view":     typed("keyword"),
		"from":     namesGroup(),
		"to":       namesGroup(),
		"cc":       namesGroup(),
		"reply_to": namesGroup(),
		// One flattened field holds every header, so unusual header names cannot grow the
		// mapping; very long values (DKIM signatures) are kept in _source only.
		"headers":          obj{"type": "flattened", "ignore_above": 2048},
		"auth":             props(obj{"spf": typed("keyword"), "dkim": typed("keyword"), "dmarc": typed("keyword")}),
		"body":             typed("text"),
		"body_from_html":   typed("boolean"),
		"oversize":         typed("boolean"),
		"size":             typed("long"),
		"attachment_count": typed("integer"),
		"attachment_text":  typed("text"),
		"smash":            typed("keyword"),
		"generation":       typed("long"),
	})
	return obj{"dynamic": false, "properties": p}
}

func attachmentMapping() obj {
	// One file per document: a plain object, so that Lens and terms aggregations can use its
	// fields (they cannot reach into nested ones).
	p := ecsCommon(obj{"properties": obj{"file": fileMapping()}})
	// The same file at the top, where Elastic's rules and an analyst's pivot on a hash look.
	p["file"] = fileMapping()
	p["mimecast"] = props(obj{
		"id":             typed("keyword"),
		"mailbox":        typed("keyword"),
		"domain":         typed("keyword"),
		"view":           typed("keyword"),
		"message_doc_id": typed("keyword"),
		"attachment_id":  typed("keyword"),
		"oversize":       typed("boolean"),
		"content":        typed("text"),
		// Written by the attachment processor.
		"attachment": props(obj{
			"content":        typed("text"),
			"content_type":   typed("keyword"),
			"content_length": typed("long"),
			"language":       typed("keyword"),
			"title":          typed("text"),
			"author":         typed("text"),
		}),
		// Set by the pipeline when extraction failed, so the document is still indexed.
		"attachment_error": obj{"type": "keyword", "ignore_above": 1024},
		"generation":       typed("long"),
	})
	return obj{
		"dynamic": false,
		// The base64 file is only input for the pipeline; never store it, also when the cluster
		// has no pipeline to remove it.
		"_source":    obj{"excludes": []string{pipelineSource}},
		"properties": p,
	}
}

// The attachment pipeline reads the file from pipelineSource and writes what it extracts to
// pipelineTarget (AttachmentMeta.Data, and the attachment object of the mapping).
const (
	pipelineSource = "mimecast.data"
	pipelineTarget = "mimecast.attachment"
	pipelineError  = "mimecast.attachment_error"
)

func mappingOf(k Kind) obj { return k.spec.Mapping() }

// Mapping returns a fresh copy of the mapping of kind k (the "mappings" object of its
// template), for tools and tests that check what they reference against it.
func Mapping(k Kind) map[string]any { return mappingOf(k) }
