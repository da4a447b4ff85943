package alerts

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Threat-intelligence feeds (POST /api/ttp/threat-intel/get-feed, feedType malware_customer
// and malware_grid): STIX 2.x indicators, one record per indicator object (the client keeps
// only those). Each becomes an indicator document (ECS 8.11: event.kind enrichment,
// event.category threat, event.type indicator, threat.indicator.*, threat.feed.name) in the
// data stream logs-ti_mimecrawl.indicators-{namespace}, which Elastic Security's default
// threat index pattern (logs-ti_*) covers, so that indicator-match rules use them. Never
// logs-mimecast.*: those belong to Elastic's own integration.
//
// Fields read: id, type, created, modified, valid_from, valid_until, pattern, labels,
// confidence, description, name. The pattern's observable fills the indicator:
// [file:hashes.'SHA-256' = '…'] (also SHA-1, MD5 and MD-5 as Elastic's pipeline spells it),
// [url:value = '…'], [ipv4-addr:value = '…'], [ipv6-addr:value = '…'],
// [domain-name:value = '…'], [email-addr:value = '…']; any other pattern gives
// threat.indicator.type unknown (the document is still written: the pattern is kept).
//
// Time: modified (the cursor, as Elastic's integration keeps it), else created, else
// valid_from. Id: a hash of the source, the STIX id and modified. STIX keeps one id across
// an indicator's versions and marks a new version with a new modified; documents are only
// ever created in a data stream, so a version must have an id of its own or the update
// would be dropped as a repeat.

// Threat-intel feed sources.
const (
	ThreatIntelCustomer Source = "threat_intel_malware_customer"
	ThreatIntelGrid     Source = "threat_intel_malware_grid"
)

// ThreatIntelDataset is the dataset of the indicator documents: their data stream is
// logs-ti_mimecrawl.indicators-{namespace}.
const ThreatIntelDataset = "ti_mimecrawl.indicators"

// ReasonNotIndicator: a threat-intel record that is not a STIX indicator.
const ReasonNotIndicator = "not an indicator"

// decodeThreatIntelCustomer and decodeThreatIntelGrid decode one indicator of each feed.
func decodeThreatIntelCustomer(raw json.RawMessage) (Event, error) {
	return decodeIndicator(ThreatIntelCustomer, "Mimecast malware_customer", raw)
}

func decodeThreatIntelGrid(raw json.RawMessage) (Event, error) {
	return decodeIndicator(ThreatIntelGrid, "Mimecast malware_grid", raw)
}

// stixComparison matches one comparison of a STIX pattern: object:path = 'value'.
var stixComparison = regexp.MustCompile(`([a-z0-9-]+):([A-Za-z0-9_.'\- ]+?)\s*=\s*'((?:[^'\\]|\\.)*)'`)

func decodeIndicator(src Source, feed string, raw json.RawMessage) (Event, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Event{}, err
	}
	if t := r.str("type"); t != "indicator" {
		return Event{}, recordError(ReasonNotIndicator, "field type: %s, want indicator", quoteValue(r["type"]))
	}
	stixID := r.str("id")
	if stixID == "" {
		return Event{}, recordError(ReasonNoID, "field id: missing; a STIX indicator has one")
	}
	at, err := r.timeField("modified", "created", "valid_from")
	if err != nil {
		return Event{}, err
	}
	d := eventBody(src, raw, at, "enrichment", []string{"threat"}, []string{"indicator"})
	d.set("threat.feed.name", feed)
	d.set("threat.indicator.provider", "Mimecast")
	d.set("threat.indicator.modified_at", at.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	if t, ok := parseTime(r["valid_from"]); ok {
		d.set("threat.indicator.first_seen", t.Format("2006-01-02T15:04:05.000Z07:00"))
	} else if t, ok := parseTime(r["created"]); ok {
		d.set("threat.indicator.first_seen", t.Format("2006-01-02T15:04:05.000Z07:00"))
	}
	d.set("threat.indicator.last_seen", at.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	if c, ok := int64Of(r["confidence"]); ok {
		d.set("threat.indicator.confidence", stixConfidence(c))
	}
	desc := r.str("description")
	d.set("threat.indicator.description", desc)
	if i := strings.Index(desc, "Source: "); i >= 0 {
		// Elastic's pipeline takes the provider from a "Source: x" in the description.
		d.set("threat.indicator.provider", strings.TrimSpace(desc[i+len("Source: "):]))
	}

	pattern := r.str("pattern")
	typ, related := "unknown", map[string][]string{}
	for _, m := range stixComparison.FindAllStringSubmatch(pattern, 8) {
		obj, path, val := m[1], strings.ReplaceAll(strings.TrimSpace(m[2]), " ", ""), strings.ReplaceAll(m[3], `\'`, "'")
		switch obj {
		case "file":
			typ = "file"
			algo := strings.ToLower(strings.NewReplacer("hashes.", "", "'", "", "-", "").Replace(path))
			switch algo {
			case "sha256", "sha1", "md5", "sha512":
				d.set("threat.indicator.file.hash."+algo, strings.ToLower(val))
				related["hash"] = appendNew(related["hash"], strings.ToLower(val))
			case "name":
				d.set("threat.indicator.file.name", val)
			}
		case "url":
			typ = "url"
			d.set("threat.indicator.url.full", val)
			d.set("threat.indicator.url.original", val)
		case "ipv4-addr", "ipv6-addr":
			typ = obj
			if ip := ipOrEmpty(val); ip != "" {
				d.set("threat.indicator.ip", ip)
				related["ip"] = appendNew(related["ip"], ip)
			}
		case "domain-name":
			typ = "domain-name"
			d.set("threat.indicator.url.domain", val)
			related["hosts"] = appendNew(related["hosts"], val)
		case "email-addr":
			typ = "email-addr"
			d.set("threat.indicator.email.address", strings.ToLower(val))
		}
	}
	d.set("threat.indicator.type", typ)
	d.set("related.hash", related["hash"])
	d.set("related.ip", related["ip"])
	d.set("related.hosts", related["hosts"])
	var labels []string
	if l, ok := r["labels"].([]any); ok {
		for _, v := range l {
			labels = appendNew(labels, scalarString(v))
		}
	}
	d.set("tags", labels)
	name := r.str("name")
	msg := "Mimecast threat-intel indicator"
	if typ != "unknown" {
		msg += " (" + typ + ")"
	}
	if name != "" {
		msg += ": " + name
	}
	d.set("message", msg)
	d.set("mimecast.threat_intel.id", stixID)
	d.set("mimecast.threat_intel.pattern", pattern)
	d.set("mimecast.threat_intel.name", name)
	d.set("mimecast.threat_intel.labels", labels)
	return Event{ID: hashID(src, stixID, idTime(at)), Time: at, Body: d}, nil
}

// stixConfidence maps STIX's 0-100 confidence to ECS's words (the STIX 2.1 "None / Low /
// Med / High" scale).
func stixConfidence(c int64) string {
	switch {
	case c <= 0:
		return "None"
	case c < 30:
		return "Low"
	case c < 70:
		return "Medium"
	}
	return "High"
}

// ThreatIntelKind is the indicators' data stream, logs-ti_mimecrawl.indicators-{namespace};
// both feeds write it (their documents' ids differ, threat.feed.name tells them apart).
var ThreatIntelKind = index.NewKind(index.Spec{Name: "ti-indicators", DataStream: ThreatIntelDataset, Mapping: ThreatIntelMapping})

// ThreatIntelMapping is the explicit mapping of the indicators' data stream: the ECS
// threat.indicator fields indicator-match rules compare.
func ThreatIntelMapping() map[string]any {
	return eventMapping(map[string]any{
		"threat": obj(map[string]any{
			"feed": obj(map[string]any{"name": kw()}),
			"indicator": obj(map[string]any{
				"type": kw(), "provider": kw(), "confidence": kw(), "description": typ("text"),
				"first_seen": typ("date"), "last_seen": typ("date"), "modified_at": typ("date"),
				"ip":    typ("ip"),
				"file":  obj(map[string]any{"name": kw(), "hash": obj(map[string]any{"sha256": kw(), "sha1": kw(), "md5": kw(), "sha512": kw()})}),
				"url":   obj(map[string]any{"full": kw(), "original": kw(), "domain": kw()}),
				"email": obj(map[string]any{"address": kw()}),
			}),
		}),
		"mimecast": obj(map[string]any{
			"threat_intel": obj(map[string]any{"id": kw(), "pattern": kw(), "name": kw(), "labels": kw()}),
		}),
	})
}

// ThreatIntelReader reads one answer of a threat-intel feed. Implemented by *mimecast.Client.
type ThreatIntelReader interface {
	ThreatIntelFeed(ctx context.Context, q mimecast.ThreatIntelQuery) (mimecast.Page, error)
}

var _ ThreatIntelReader = (*mimecast.Client)(nil)

const threatIntelPath = "/api/ttp/threat-intel/get-feed"

var (
	threatIntelCustomerSpec = threatIntelSpec(ThreatIntelCustomer, mimecast.FeedMalwareCustomer, decodeThreatIntelCustomer)
	threatIntelGridSpec     = threatIntelSpec(ThreatIntelGrid, mimecast.FeedMalwareGrid, decodeThreatIntelGrid)
)

// threatIntelSpec is the spec of one feed: a time window on the indicators' modified time,
// continued by the feed's own token (the window is not sent again with it); the feed takes
// no page size (the 500 only satisfies the reader contract); no documented retention.
func threatIntelSpec(name Source, feed string, dec func(json.RawMessage) (Event, error)) SourceSpec {
	return SourceSpec{
		Name: name, Endpoint: "POST " + threatIntelPath + " (feedType " + feed + ")", Permission: mimecast.PermissionOf(threatIntelPath),
		Records: RecordEvents, Kind: ThreatIntelKind, Dataset: ThreatIntelDataset,
		pages: apiPages(500, func(r ThreatIntelReader, ctx context.Context, q WindowQuery) (mimecast.Page, error) {
			tq := mimecast.ThreatIntelQuery{FeedType: feed, Token: q.Token}
			if q.Token == "" {
				tq.Start, tq.End = q.From, q.To
			}
			return r.ThreatIntelFeed(ctx, tq)
		}),
		decode: dec,
	}
}
