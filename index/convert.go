package index

// Conversion of documents written by releases before ECS (flat names: mailbox, view,
// received, message_id = the archive's id, mime_message_id, ...) to this release's shape, for
// the migration. Values are moved, never re-derived from Mimecast: what the old document did
// not hold (the envelope sender, attachment hashes on the message, the pivot fields file.* and
// related.*, whether mail was internal) stays absent, or the view's direction, until the
// message is crawled again; attachment documents take their message's email fields from the
// migrated messages (fromMessages in migrate.go).

// convertMessage converts an old message document. A document already in the new shape
// (mimecast present) is returned unchanged.
func convertMessage(old map[string]any) map[string]any {
	if _, ok := old["mimecast"]; ok {
		return old
	}
	view := str(old["view"])
	headers := headerValues(old["headers"])
	email := obj{
		"message_id":         old["mime_message_id"],
		"local_id":           old["message_id"],
		"subject":            old["subject"],
		"from":               addressesOf(old["from"]),
		"to":                 addressesOf(old["to"]),
		"cc":                 addressesOf(old["cc"]),
		"reply_to":           addressesOf(old["reply_to"]),
		"direction":          Direction(view),
		"delivery_timestamp": old["received"],
	}
	if t := OriginationTime(headers["Date"]); t != nil {
		email["origination_timestamp"] = t
	}
	var atts []any
	for _, n := range list(old["attachment_names"]) {
		name := str(n)
		f := obj{"name": name}
		if ext := Extension(name); ext != "" {
			f["extension"] = ext
		}
		atts = append(atts, obj{"file": f})
	}
	if atts != nil {
		email["attachments"] = atts
	}
	mc := obj{
		"id": old["message_id"], "mailbox": old["mailbox"], "domain": old["domain"], "view": old["view"],
		"from": namesOf(old["from"]), "to": namesOf(old["to"]), "cc": namesOf(old["cc"]), "reply_to": namesOf(old["reply_to"]),
		"headers": old["headers"], "body": old["body"], "body_from_html": old["body_from_html"],
		"oversize": old["oversize"], "size": old["size"], "attachment_count": old["attachment_count"],
		"smash": old["smash"], "generation": old["generation"],
	}
	if a := ParseAuthResults(headers["Authentication-Results"]); a != nil {
		mc["auth"] = a
	}
	return compact(obj{
		"@timestamp": old["received"],
		"ecs":        obj{"version": ECSVersion},
		"event":      eventOf(old),
		"email":      compact(email),
		"user":       obj{"email": old["mailbox"]},
		"mimecast":   compact(mc),
	})
}

// convertAttachment converts an old attachment document.
func convertAttachment(old map[string]any) map[string]any {
	if _, ok := old["mimecast"]; ok {
		return old
	}
	file := obj{"name": old["filename"], "mime_type": old["content_type"], "size": old["size"]}
	if ext := Extension(str(old["filename"])); ext != "" {
		file["extension"] = ext
	}
	if h := str(old["sha256"]); h != "" {
		file["hash"] = obj{"sha256": h}
	}
	email := obj{
		"local_id":           old["message_id"],
		"subject":            old["subject"],
		"direction":          Direction(str(old["view"])),
		"delivery_timestamp": old["received"],
		"attachments":        []any{obj{"file": compact(file)}},
	}
	mc := obj{
		"id": old["message_id"], "mailbox": old["mailbox"], "domain": old["domain"], "view": old["view"],
		"message_doc_id": old["message_doc_id"], "attachment_id": old["attachment_id"],
		"oversize": old["oversize"], "content": old["content"], "attachment": old["attachment"],
		"attachment_error": old["attachment_error"], "generation": old["generation"],
	}
	return compact(obj{
		"@timestamp": old["received"],
		"ecs":        obj{"version": ECSVersion},
		"event":      eventOf(old),
		"email":      compact(email),
		"user":       obj{"email": old["mailbox"]},
		"mimecast":   compact(mc),
	})
}

func eventOf(old map[string]any) obj {
	return compact(obj{"kind": "event", "category": []string{"email"}, "type": []string{"info"},
		"module": "mimecast", "dataset": EventDataset, "ingested": old["indexed_at"]})
}

// addressesOf turns an old address object ({address, name}) or list of them into an ECS
// address group.
func addressesOf(v any) any {
	var as []string
	for _, a := range objects(v) {
		as = append(as, str(a["address"]))
	}
	if g := AddressGroup(as...); g != nil {
		return g
	}
	return nil
}

func namesOf(v any) any {
	var ns []string
	for _, a := range objects(v) {
		ns = append(ns, str(a["name"]))
	}
	if g := NameGroup(ns...); g != nil {
		return g
	}
	return nil
}

func objects(v any) []map[string]any {
	switch x := v.(type) {
	case map[string]any:
		return []map[string]any{x}
	case []any:
		var out []map[string]any
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func list(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	}
	return []any{v}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// headerValues reads the old flattened headers object: name to a value or a list of them.
func headerValues(v any) map[string][]string {
	m, _ := v.(map[string]any)
	out := make(map[string][]string, len(m))
	for k, vs := range m {
		for _, s := range list(vs) {
			if s, ok := s.(string); ok {
				out[k] = append(out[k], s)
			}
		}
	}
	return out
}

// compact drops nil values, so absent old fields stay absent.
func compact(m obj) obj {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	return m
}
