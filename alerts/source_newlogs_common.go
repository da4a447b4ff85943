package alerts

import (
	"slices"
	"strings"
	"time"
)

// eventMapping is the explicit mapping of a new event source's data stream (dynamic false,
// like the alerts'): the fields eventBody, setUser and the poller write, plus the source's
// own (extra, merged into the top level: objects are merged one level deep).
func eventMapping(extra map[string]any) map[string]any {
	props := map[string]any{
		"@timestamp":  typ("date"),
		"message":     typ("text"),
		"tags":        kw(),
		"ecs":         obj(map[string]any{"version": kw()}),
		"data_stream": obj(map[string]any{"type": kw(), "dataset": kw(), "namespace": kw()}),
		"event": obj(map[string]any{
			"kind": kw(), "category": kw(), "type": kw(), "action": kw(), "outcome": kw(), "reason": kw(), "code": kw(),
			"severity": typ("long"), "risk_score": typ("float"),
			"created": typ("date"), "ingested": typ("date"), "provider": kw(), "module": kw(), "dataset": kw(), "id": kw(),
			"original": map[string]any{"type": "keyword", "index": false, "doc_values": false},
		}),
		"observer": obj(map[string]any{"vendor": kw(), "product": kw()}),
		"user":     obj(map[string]any{"email": kw(), "name": kw(), "domain": kw()}),
		"related":  obj(map[string]any{"user": kw(), "ip": typ("ip"), "hash": kw(), "hosts": kw()}),
		"mimecast": obj(map[string]any{"source": kw()}),
	}
	for k, v := range extra {
		have, ok := props[k].(map[string]any)
		add, isObj := v.(map[string]any)
		if !ok || !isObj || have["properties"] == nil || add["properties"] == nil {
			props[k] = v
			continue
		}
		merged := map[string]any{}
		for pk, pv := range have["properties"].(map[string]any) {
			merged[pk] = pv
		}
		for pk, pv := range add["properties"].(map[string]any) {
			merged[pk] = pv
		}
		props[k] = obj(merged)
	}
	return map[string]any{"dynamic": false, "properties": props}
}

// stored is the mapping of a vendor object kept in _source only (its keys vary).
func stored() map[string]any { return map[string]any{"type": "object", "enabled": false} }

// emailMapping maps the email.* fields the new sources write.
func emailMapping() map[string]any {
	return obj(map[string]any{
		"from":        obj(map[string]any{"address": kw()}),
		"sender":      obj(map[string]any{"address": kw()}),
		"to":          obj(map[string]any{"address": kw()}),
		"subject":     map[string]any{"type": "keyword", "ignore_above": 1024, "fields": map[string]any{"text": typ("text")}},
		"message_id":  kw(),
		"direction":   kw(),
		"attachments": map[string]any{"type": "nested", "properties": map[string]any{"file": obj(map[string]any{"name": kw(), "extension": kw()})}},
	})
}

// Helpers shared by the decoders of the event sources added with the archive access,
// release, threat-intel and Cloud Integrated SIEM logs (source_archivelogs.go,
// source_heldrelease.go, source_threatintel.go, source_siemci.go).

// eventBody starts an event document: @timestamp, ecs.version, event.kind/category/type,
// event.module and event.provider (the source's name), event.original (the record as
// served), mimecast.source, observer.vendor.
func eventBody(src Source, raw []byte, at time.Time, kind string, category, types []string) doc {
	d := doc{}
	d.set("event.original", string(raw))
	d.set("mimecast.source", string(src))
	d.set("@timestamp", at.UTC().Format(time.RFC3339Nano))
	d.set("ecs.version", ECSVersion)
	d.set("event.kind", kind)
	d.set("event.category", category)
	d.set("event.type", types)
	d.set("event.module", "mimecast")
	d.set("event.provider", string(src))
	d.set("observer.vendor", "Mimecast")
	return d
}

// setUser fills user.email, user.name and user.domain from an address, and adds both to
// related.user. Something that is not an address ("<>", the system) is left out.
func (d doc) setUser(addr string, related *[]string) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	name, domain, ok := strings.Cut(addr, "@")
	if !ok || name == "" || domain == "" || strings.ContainsAny(addr, "<> ") {
		return
	}
	d.set("user.email", addr)
	d.set("user.name", name)
	d.set("user.domain", domain)
	*related = appendNew(*related, addr, name)
}

// setParties sets the addresses of an email's parties, email.from.address,
// email.sender.address (the first sender) and email.to.address, and related.user to related
// with all of them added.
func (d doc) setParties(related, from, sender, to []string) {
	related = appendNew(related, from...)
	related = appendNew(related, sender...)
	related = appendNew(related, to...)
	d.set("related.user", related)
	d.set("email.from.address", from)
	if len(sender) > 0 {
		d.set("email.sender.address", sender[0])
	}
	d.set("email.to.address", to)
}

// appendNew appends the values not already in list (and not empty).
func appendNew(list []string, vals ...string) []string {
	for _, v := range vals {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// direction maps a route or direction word to email.direction's values (inbound,
// outbound, internal), "" for anything else.
func direction(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "inbound":
		return "inbound"
	case "outbound":
		return "outbound"
	case "internal":
		return "internal"
	}
	return ""
}
