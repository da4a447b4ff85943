package alerts

import "testing"

// ECS fields of the threat-intel indicators, against ECS 8.11 (ecs.version 8.11.0):
// event.kind enrichment, event.category threat, event.type indicator, threat.indicator.*
// (type, file.hash.*, url.full, ip, first_seen, last_seen, modified_at, confidence,
// provider, description), threat.feed.name, related.*.
func TestThreatIntelIndicatorECS(t *testing.T) {
	runEventTable(t, decodeThreatIntelCustomer, []eventCase{
		{name: "sha-256 file indicator", raw: `{"type":"indicator","id":"indicator--0a1b","created":"2024-07-01T10:00:00.120Z",
			"modified":"2024-07-01T10:00:00.120Z","valid_from":"2024-07-01T09:59:00.000Z","labels":["malicious-activity"],
			"pattern":"[file:hashes.'SHA-256' = 'AB12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34']"}`,
			want: map[string]any{"@timestamp": "2024-07-01T10:00:00.12Z", "ecs.version": "8.11.0", "event.kind": "enrichment",
				"event.category": []any{"threat"}, "event.type": []any{"indicator"}, "event.provider": "threat_intel_malware_customer",
				"threat.feed.name": "Mimecast malware_customer", "threat.indicator.type": "file",
				"threat.indicator.file.hash.sha256": "ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34",
				"threat.indicator.first_seen":       "2024-07-01T09:59:00.000Z", "threat.indicator.last_seen": "2024-07-01T10:00:00.120Z",
				"threat.indicator.modified_at": "2024-07-01T10:00:00.120Z", "threat.indicator.provider": "Mimecast",
				"related.hash": []any{"ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34"},
				"tags":         []any{"malicious-activity"}, "mimecast.threat_intel.id": "indicator--0a1b",
				"message": "Mimecast threat-intel indicator (file)"},
			absent: []string{"event.severity", "threat.indicator.confidence"}},
		{name: "md5 as Elastic spells it, confidence, provider in description", raw: `{"type":"indicator","id":"indicator--0a1c",
			"modified":"2024-07-01T10:00:01Z","confidence":85,"description":"Seen in 3 messages. Source: Mimecast Grid",
			"pattern":"[file:hashes.'MD-5' = '0123456789abcdef0123456789abcdef']"}`,
			want: map[string]any{"threat.indicator.file.hash.md5": "0123456789abcdef0123456789abcdef", "threat.indicator.confidence": "High",
				"threat.indicator.provider": "Mimecast Grid", "threat.indicator.description": "Seen in 3 messages. Source: Mimecast Grid"},
			absent: []string{"threat.indicator.first_seen"}},
		{name: "url", raw: `{"type":"indicator","id":"indicator--0a1d","modified":"2024-07-01T10:00:02Z",
			"pattern":"[url:value = 'http://login.evil.example/a?b=1']"}`,
			want: map[string]any{"threat.indicator.type": "url", "threat.indicator.url.full": "http://login.evil.example/a?b=1",
				"threat.indicator.url.original": "http://login.evil.example/a?b=1"}},
		{name: "ipv4", raw: `{"type":"indicator","id":"indicator--0a1e","modified":"2024-07-01T10:00:03Z","confidence":"20",
			"pattern":"[ipv4-addr:value = '198.51.100.7']"}`,
			want: map[string]any{"threat.indicator.type": "ipv4-addr", "threat.indicator.ip": "198.51.100.7",
				"related.ip": []any{"198.51.100.7"}, "threat.indicator.confidence": "Low"}},
		{name: "unknown pattern kept", raw: `{"type":"indicator","id":"indicator--0a1f","created":"2024-07-01T10:00:04Z",
			"pattern":"[process:name = 'evil.exe']"}`,
			want: map[string]any{"threat.indicator.type": "unknown", "mimecast.threat_intel.pattern": "[process:name = 'evil.exe']",
				"@timestamp": "2024-07-01T10:00:04Z"}},
		{name: "a malware object is not an indicator", raw: `{"type":"malware","id":"malware--1","modified":"2024-07-01T10:00:00Z"}`,
			reason: ReasonNotIndicator},
		{name: "no id", raw: `{"type":"indicator","modified":"2024-07-01T10:00:00Z"}`, reason: ReasonNoID},
		{name: "no time", raw: `{"type":"indicator","id":"indicator--2"}`, reason: ReasonNoTime},
	})
	// A new version of an indicator (same STIX id, new modified) is a new document; the same
	// indicator in the other feed is that feed's own document.
	distinctIDs(t, decodeThreatIntelCustomer,
		`{"type":"indicator","id":"indicator--v","modified":"2024-07-01T10:00:00Z"}`,
		`{"type":"indicator","id":"indicator--v","modified":"2024-07-02T10:00:00Z"}`)
	a, _ := decodeThreatIntelCustomer([]byte(`{"type":"indicator","id":"indicator--v","modified":"2024-07-01T10:00:00Z"}`))
	b, _ := decodeThreatIntelGrid([]byte(`{"type":"indicator","id":"indicator--v","modified":"2024-07-01T10:00:00Z"}`))
	if a.ID == b.ID {
		t.Error("the two feeds share a document id")
	}
	if got := flatEvent(t, b)["threat.feed.name"]; got != "Mimecast malware_grid" {
		t.Errorf("grid feed name %v", got)
	}
}
