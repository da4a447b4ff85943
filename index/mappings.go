package index

// The mappings of both indices. Field names are the JSON names of MessageDoc and AttachmentDoc.
//
// dynamic is false rather than strict: a field the mapping does not know (a newer crawler, a
// header-like field from an unusual message) is kept in _source but not indexed, instead of
// either rejecting the whole document (strict) or growing the mapping without bound (true).

// obj is a JSON object being built for a request.
type obj = map[string]any

// typed returns a fresh field mapping of type t; fresh so that no two mappings share a map.
func typed(t string) obj { return obj{"type": t} }

// textWithKeyword is full text plus an exact sub-field for sorting and aggregations; values
// longer than the keyword limit are left out of the sub-field only.
func textWithKeyword() obj {
	return obj{"type": "text", "fields": obj{"keyword": obj{"type": "keyword", "ignore_above": 1024}}}
}

func addressMapping() obj {
	return obj{"properties": obj{
		"address": typed("keyword"),
		"name":    textWithKeyword(),
	}}
}

func messageMapping() obj {
	return obj{
		"dynamic": false,
		"properties": obj{
			"mailbox":         typed("keyword"),
			"domain":          typed("keyword"),
			"view":            typed("keyword"),
			"message_id":      typed("keyword"),
			"mime_message_id": typed("keyword"),
			"received":        typed("date"),
			"subject":         textWithKeyword(),
			"from":            addressMapping(),
			"to":              addressMapping(),
			"cc":              addressMapping(),
			"reply_to":        addressMapping(),
			// One flattened field holds every header, so unusual header names cannot grow the
			// mapping; very long values (DKIM signatures) are kept in _source only.
			"headers":          obj{"type": "flattened", "ignore_above": 2048},
			"body":             typed("text"),
			"body_from_html":   typed("boolean"),
			"oversize":         typed("boolean"),
			"size":             typed("long"),
			"attachment_count": obj{"type": "integer"},
			"attachment_names": textWithKeyword(),
			"smash":            typed("keyword"),
			"generation":       typed("long"),
			"indexed_at":       typed("date"),
		},
	}
}

func attachmentMapping() obj {
	return obj{
		"dynamic": false,
		// The base64 file is only input for the pipeline; never store it, also when the cluster
		// has no pipeline to remove it.
		"_source": obj{"excludes": []string{"data"}},
		"properties": obj{
			"mailbox":        typed("keyword"),
			"domain":         typed("keyword"),
			"view":           typed("keyword"),
			"message_id":     typed("keyword"),
			"message_doc_id": typed("keyword"),
			"attachment_id":  typed("keyword"),
			"received":       typed("date"),
			"subject":        textWithKeyword(),
			"filename":       textWithKeyword(),
			"content_type":   typed("keyword"),
			"size":           typed("long"),
			"sha256":         typed("keyword"),
			"oversize":       typed("boolean"),
			"content":        typed("text"),
			// Written by the attachment processor.
			"attachment": obj{"properties": obj{
				"content":        typed("text"),
				"content_type":   typed("keyword"),
				"content_length": typed("long"),
				"language":       typed("keyword"),
				"title":          typed("text"),
				"author":         typed("text"),
			}},
			// Set by the pipeline when extraction failed, so the document is still indexed.
			"attachment_error": obj{"type": "keyword", "ignore_above": 1024},
			"generation":       typed("long"),
			"indexed_at":       typed("date"),
		},
	}
}

func mappingOf(k Kind) obj { return specOf(k).Mapping() }
