package alerts

import "testing"

// ECS fields of the release log, against ECS 8.11 (ecs.version 8.11.0): event.kind alert only
// for a flagged message that was released (categories email and intrusion_detection, types
// info and allowed); email.*, user.* (the operator), rule.name (the policy).
func TestHeldReleaseECS(t *testing.T) {
	const flaggedReleased = `{"id":"eNpVheld1","released":"2024-06-01T08:30:00+00:00","status":"released",
		"operator":"Ops@corp.example","heldReason":"High-Confidence Impersonation Protection","heldGroup":"Everyone",
		"policy":"Impersonation Protect","detectionLevel":"moderate","spamScore":"14","route":"inbound","size":5120,
		"fromEnv":{"displayableName":"X","emailAddress":"bounce@evil.example"},
		"fromHdr":{"displayableName":"CEO","emailAddress":"ceo@evil.example"},
		"to":[{"displayableName":"Ann","emailAddress":"Ann@corp.example"},{"emailAddress":"bob@corp.example"}],
		"subject":"Wire today","spamProcessingDetail":{"spamVerdict":{"decision":"spam","risk":"low"}}}`
	runEventTable(t, decodeHeldRelease, []eventCase{
		{name: "flagged and released: an alert", raw: flaggedReleased,
			want: map[string]any{"@timestamp": "2024-06-01T08:30:00Z", "ecs.version": "8.11.0", "event.kind": "alert",
				"event.category": []any{"email", "intrusion_detection"}, "event.type": []any{"info", "allowed"},
				"event.action": "held-message-released", "event.reason": "High-Confidence Impersonation Protection",
				"event.severity": float64(47), "event.risk_score": float64(47), "event.provider": "held_release_logs",
				"rule.name": "Impersonation Protect", "user.email": "ops@corp.example", "user.name": "ops",
				"email.from.address": []any{"ceo@evil.example"}, "email.sender.address": "bounce@evil.example",
				"email.to.address": []any{"ann@corp.example", "bob@corp.example"}, "email.subject": "Wire today",
				"email.direction": "inbound", "message": "Held message released by Ops@corp.example: Wire today",
				"related.user":             []any{"ops@corp.example", "ops", "ceo@evil.example", "bounce@evil.example", "ann@corp.example", "bob@corp.example"},
				"mimecast.held_release.id": "eNpVheld1", "mimecast.held_release.flagged": true,
				"mimecast.held_release.spam_score": float64(14), "mimecast.held_release.size": float64(5120),
				"mimecast.held_release.spam_verdict": "spam"}},
		{name: "spam released by its recipient: an event", raw: `{"id":"eNpVheld2","released":"2024-06-01T08:31:00+0000",
			"status":"released","heldReason":"Spam Detection","policy":"Moderate Spam Detection","route":"outbound",
			"spamProcessingDetail":{"spamVerdict":{"decision":"spam"}}}`,
			want: map[string]any{"event.kind": "event", "event.category": []any{"email"}, "event.type": []any{"info"},
				"email.direction": "outbound", "mimecast.held_release.flagged": false},
			absent: []string{"event.severity", "event.risk_score"}},
		{name: "malware verdict rejected: denied, not an alert", raw: `{"id":"eNpVheld3","released":"2024-06-01T08:32:00Z",
			"status":"rejected","heldReason":"Content Examination","rejectReason":"Message contains undesirable content",
			"messageInfo":"Expired in queue - rejected by housekeeping","spamProcessingDetail":{"spamVerdict":{"decision":"malware"}}}`,
			want: map[string]any{"event.kind": "event", "event.category": []any{"email", "intrusion_detection"},
				"event.type": []any{"info", "denied"}, "event.action": "held-message-rejected",
				"message":                             "Held message rejected",
				"mimecast.held_release.reject_reason": "Message contains undesirable content",
				"mimecast.held_release.message_info":  "Expired in queue - rejected by housekeeping"},
			absent: []string{"user.email"}},
		{name: "no released time", raw: `{"id":"eNpVheld4","status":"released"}`, reason: ReasonNoTime},
	})
	// One held message id on records that differ in route or recipients (as public samples
	// show) are distinct events.
	distinctIDs(t, decodeHeldRelease,
		`{"id":"eNpVsame","released":"2024-06-01T08:30:00Z","status":"released","route":"inbound","to":[{"emailAddress":"a@x.example"}]}`,
		`{"id":"eNpVsame","released":"2024-06-01T08:30:00Z","status":"released","route":"outbound","to":[{"emailAddress":"a@x.example"}]}`,
		`{"id":"eNpVsame","released":"2024-06-01T08:30:00Z","status":"released","route":"inbound","to":[{"emailAddress":"b@x.example"}]}`,
		`{"id":"eNpVsame","released":"2024-06-01T08:30:00Z","status":"rejected","route":"inbound","to":[{"emailAddress":"a@x.example"}]}`)
}
