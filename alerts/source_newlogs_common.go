package alerts

import (
	"strings"
	"time"
)

// Helpers shared by the decoders of the event sources added with the archive access,
// release, threat-intel and Cloud Integrated SIEM logs (source_archivelogs.go,
// source_heldrelease.go, source_threatintel.go, source_siemci.go).

// eventBody starts an event document: @timestamp, ecs.version, event.kind/category/type,
// event.module and event.provider (the source's name), observer.vendor.
func eventBody(src Source, at time.Time, kind string, category, types []string) doc {
	d := doc{}
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

// appendNew appends the values not already in list (and not empty).
func appendNew(list []string, vals ...string) []string {
	for _, v := range vals {
		if v == "" {
			continue
		}
		dup := false
		for _, x := range list {
			if x == v {
				dup = true
				break
			}
		}
		if !dup {
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
