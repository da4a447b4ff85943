package alerts

import (
	"strings"
	"testing"
	"time"

	"github.com/mimecrawl/mimecrawl/config"
)

// ECS fields of the Cloud Integrated SIEM events, against ECS 8.11 (ecs.version 8.11.0):
// detections and blocked clicks are alerts (External Alerts rule), the rest events.
func TestSIEMCIECS(t *testing.T) {
	runEventTable(t, decodeSIEMCI, []eventCase{
		{name: "entities with malware, blocked", raw: `{"_offset":11,"_partition":3,"accountId":"CUSA1","aggregateId":"agg_1",
			"processingId":"p1_1","type":"entities","subtype":"MALWARE","threatType":"MALWARE","threatState":"BLOCKED",
			"timestamp":1717236000123,"messageId":"<m1@evil.example>","subject":"Invoice","senderEnvelope":"b@evil.example",
			"senderHeader":"Boss <boss@evil.example>","senderIp":"203.0.113.9","recipients":["Ann@corp.example"],
			"attachments":["inv.xlsm"],"direction":"INBOUND","tags":["MALWARE"],
			"policiesApplied":[{"action":"BLOCK","mode":"ACTIVE","name":"Default O365 Mail policy"}]}`,
			want: map[string]any{"@timestamp": "2024-06-01T10:00:00.123Z", "ecs.version": "8.11.0", "event.kind": "alert",
				"event.category": []any{"email", "intrusion_detection", "malware"}, "event.type": []any{"info", "denied"},
				"event.severity": float64(73), "event.risk_score": float64(73), "event.code": "entities",
				"event.action": "blocked", "event.provider": "siem_ci", "email.message_id": "<m1@evil.example>",
				"email.subject": "Invoice", "email.sender.address": "b@evil.example", "email.from.address": []any{"boss@evil.example"},
				"email.to.address": []any{"ann@corp.example"}, "email.direction": "inbound",
				"email.attachments.file.name": "inv.xlsm", "email.attachments.file.extension": "xlsm",
				"source.ip": "203.0.113.9", "related.ip": []any{"203.0.113.9"}, "rule.name": "Default O365 Mail policy",
				"mimecast.ci.threat_type": "MALWARE", "mimecast.ci.aggregate_id": "agg_1", "observer.product": "Cloud Integrated"}},
		{name: "entities without detection", raw: `{"type":"entities","threatType":"NO_DETECTIONS","threatState":"DELIVERY_IN_PROGRESS",
			"timestamp":"1717236000124","direction":"Inbound","tags":null}`,
			want:   map[string]any{"event.kind": "event", "event.category": []any{"email"}, "event.type": []any{"info"}, "email.direction": "inbound"},
			absent: []string{"event.severity", "mimecast.ci.tags"}},
		{name: "mailflow", raw: `{"type":"mailflow","subtype":null,"timestamp":1717236000125,"messageId":"<m2@x.example>",
			"authResults":[{"type":"SPF","result":"pass","aligned":true},{"type":"DMARC","result":"fail","aligned":null}]}`,
			want: map[string]any{"event.kind": "event", "event.code": "mailflow", "email.message_id": "<m2@x.example>",
				"message": "Cloud Integrated mailflow event"}},
		{name: "urlclick blocked", raw: `{"type":"urlclick","timestamp":1717236000126,"action":"BLOCK","originalUrl":"https://bad.example/x",
			"redirectUrl":"https://bad.example/y","sourceIp":"192.0.2.44"}`,
			want: map[string]any{"event.kind": "alert", "event.category": []any{"web", "intrusion_detection"},
				"event.type": []any{"info", "denied"}, "url.original": "https://bad.example/x", "source.ip": "192.0.2.44",
				"mimecast.ci.redirect_url": "https://bad.example/y", "event.action": "block",
				"message": "URL click block: https://bad.example/x"}},
		{name: "no timestamp", raw: `{"type":"entities"}`, reason: ReasonNoTime},
	})
	// The same event at another stream position is the same event.
	a, _ := decodeSIEMCI([]byte(`{"_offset":1,"_partition":2,"type":"mailflow","timestamp":1717236000125,"messageId":"<m>"}`))
	b, _ := decodeSIEMCI([]byte(`{"_offset":9,"_partition":4,"messageId":"<m>","timestamp":1717236000125,"type":"mailflow"}`))
	if a.ID != b.ID {
		t.Error("one event at two stream positions gets two ids")
	}
	distinctIDs(t, decodeSIEMCI,
		`{"type":"mailflow","timestamp":1717236000125,"messageId":"<m>"}`,
		`{"type":"mailflow","timestamp":1717236000126,"messageId":"<m>"}`)
}

// siem_ci's calls count against the SIEM budget, together with siem's when both are
// configured.
func TestConfigWarningsSIEMCIBudget(t *testing.T) {
	cases := []struct {
		name     string
		sources  []string
		mode     string
		interval time.Duration
		warn     string
	}{
		{"ci alone fits", []string{"siem_ci"}, config.SIEMBatch, time.Minute, ""},
		{"ci alone too often", []string{"siem_ci"}, config.SIEMBatch, 30 * time.Second, "raise poll_interval to 54s"},
		{"both too often", []string{"siem", "siem_ci"}, config.SIEMBatch, 2 * time.Minute, "siem and siem_ci (one budget)"},
		{"stream both fit", []string{"siem", "siem_ci"}, config.SIEMStream, 30 * time.Second, ""},
		{"stream both too often", []string{"siem", "siem_ci"}, config.SIEMStream, 20 * time.Second, "raise poll_interval to 24s"},
	}
	for _, tc := range cases {
		c := config.Default()
		c.Alerts.Sources, c.Alerts.SIEM.Mode, c.Alerts.PollInterval = tc.sources, tc.mode, config.Duration(tc.interval)
		w := siemCIWarnings(c.Alerts)
		switch {
		case tc.warn == "" && len(w) != 0:
			t.Errorf("%s: warnings %q", tc.name, w)
		case tc.warn != "" && (len(w) != 1 || !strings.Contains(w[0], tc.warn)):
			t.Errorf("%s: warnings %q; want one saying %q", tc.name, w, tc.warn)
		}
	}
}
