package alerts

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Held-message release logs (POST /api/gateway/get-held-release-logs, data[0].heldReleaseLogs):
// held mail an operator released or rejected, or housekeeping rejected when it expired.
// Fields (Elastic's message_release_logs samples, restated): id (the held message),
// released (the time; +00:00 in the samples), status (released | rejected), operator,
// heldReason, heldGroup, policy, detectionLevel, spamScore, spamProcessingDetail (spf, dkim,
// dmarc, rbl, ... and spamVerdict {decision, risk, categories}), rejectReason, messageInfo,
// route, size, attachments, subject, fromEnv and fromHdr ({displayableName, emailAddress}),
// to[] (the same objects).
//
// A released message that Mimecast had held for a security reason is an alert
// (event.kind alert, ECS 8.11 categories email and intrusion_detection, types info and
// allowed, event.severity and risk 47: a person chose to let a flagged message through, which
// a security team reviews); everything else is an event (categories email, plus
// intrusion_detection with type denied for a flagged message that was rejected). "Flagged"
// is inferred, as nothing documents a flag: the held reason or policy names a security
// check (impersonation, malware, virus, phishing, attachment or URL protection, threat,
// suspicious), or the spam verdict's decision is malware, phishing, virus or malicious.
// Plain spam released by its recipient is not an alert.
//
// Id: the record's id is the held message's, and Elastic's samples repeat one id on
// records that differ in route and recipients, so the id hashes it with status, time,
// route and recipients.

// HeldRelease is the release log source.
const HeldRelease Source = "held_release_logs"

// heldSecurityWords mark a held reason or policy as a security verdict (inferred).
var heldSecurityWords = []string{"impersonation", "malware", "virus", "phish", "attachment protection",
	"url protection", "threat", "suspicious", "malicious"}

// decodeHeldRelease decodes one release log record.
func decodeHeldRelease(raw json.RawMessage) (Event, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Event{}, err
	}
	at, err := r.timeField("released", "releaseTime", "eventTime", "date")
	if err != nil {
		return Event{}, err
	}
	status := strings.ToLower(r.str("status"))
	released := status == "released" || status == "release"
	rejected := status == "rejected" || status == "reject" || (status == "" && r.str("rejectReason") != "")
	flagged := heldFlagged(r)

	kind, category, types := "event", []string{"email"}, []string{"info"}
	switch {
	case flagged && released:
		kind, category, types = "alert", []string{"email", "intrusion_detection"}, []string{"info", "allowed"}
	case flagged && rejected:
		category, types = []string{"email", "intrusion_detection"}, []string{"info", "denied"}
	}
	d := eventBody(HeldRelease, raw, at, kind, category, types)
	action := "held-message-" + status
	if status == "" {
		action = "held-message-released"
		if rejected {
			action = "held-message-rejected"
		}
	}
	d.set("event.action", action)
	reason := r.str("heldReason")
	d.set("event.reason", reason)
	if kind == "alert" {
		d.set("event.severity", 47)
		d.set("event.risk_score", 47)
	}
	d.set("rule.name", r.str("policy"))

	var related []string
	operator := r.str("operator")
	d.setUser(operator, &related)
	from := addresses(r["fromHdr"])
	sender := addresses(r["fromEnv"])
	to := r.addresses("to", "recipients")
	d.setParties(related, from, sender, to)
	subject := r.str("subject")
	d.set("email.subject", subject)
	d.set("email.direction", direction(r.str("route")))

	verb := "released"
	if rejected {
		verb = "rejected"
	}
	msg := "Held message " + verb
	if operator != "" {
		msg += " by " + operator
	}
	if subject != "" {
		msg += ": " + subject
	}
	d.set("message", msg)

	id := r.str("id")
	d.set("mimecast.held_release.id", id)
	d.set("mimecast.held_release.status", status)
	d.set("mimecast.held_release.held_reason", reason)
	d.set("mimecast.held_release.held_group", r.str("heldGroup"))
	d.set("mimecast.held_release.detection_level", r.str("detectionLevel"))
	d.set("mimecast.held_release.reject_reason", r.str("rejectReason"))
	d.set("mimecast.held_release.message_info", r.str("messageInfo"))
	d.set("mimecast.held_release.flagged", flagged)
	if n, ok := int64Of(r["spamScore"]); ok {
		d.set("mimecast.held_release.spam_score", n)
	}
	if n, ok := int64Of(r["size"]); ok {
		d.set("mimecast.held_release.size", n)
	}
	if v := verdictDecision(r); v != "" {
		d.set("mimecast.held_release.spam_verdict", v)
	}
	if spd := r.obj("spamProcessingDetail"); spd != nil {
		d.set("mimecast.held_release.spam_processing_detail", plain(map[string]any(spd)))
	}
	eid := hashID(HeldRelease, id, status, idTime(at), strings.ToLower(r.str("route")), strings.Join(to, ","))
	return Event{ID: eid, Time: at, Body: d}, nil
}

// verdictDecision is spamProcessingDetail.spamVerdict.decision, lower case.
func verdictDecision(r record) string {
	if spd := r.obj("spamProcessingDetail"); spd != nil {
		if v := spd.obj("spamVerdict"); v != nil {
			return strings.ToLower(v.str("decision"))
		}
	}
	return ""
}

// heldFlagged reports whether Mimecast held the message for a security reason (see above).
func heldFlagged(r record) bool {
	for _, s := range []string{r.str("heldReason"), r.str("policy")} {
		s = strings.ToLower(s)
		for _, w := range heldSecurityWords {
			if strings.Contains(s, w) {
				return true
			}
		}
	}
	switch verdictDecision(r) {
	case "malware", "phishing", "phish", "virus", "malicious":
		return true
	}
	return false
}

// HeldReleaseDataset is the dataset of the release log: logs-mimecrawl.held_release_logs-{namespace}.
const HeldReleaseDataset = "mimecrawl.held_release_logs"

// HeldReleaseKind is the release log's data stream.
var HeldReleaseKind = index.NewKind(index.Spec{Name: "held-release-logs", DataStream: HeldReleaseDataset, Mapping: HeldReleaseMapping})

// HeldReleaseMapping is the explicit mapping of the release log's data stream.
func HeldReleaseMapping() map[string]any {
	return eventMapping(map[string]any{
		"email": emailMapping(),
		"rule":  obj(map[string]any{"name": kw()}),
		"mimecast": obj(map[string]any{
			"held_release": obj(map[string]any{
				"id": kw(), "status": kw(), "held_reason": kw(), "held_group": kw(), "detection_level": kw(),
				"reject_reason": kw(), "message_info": kw(), "flagged": typ("boolean"), "spam_score": typ("long"),
				"size": typ("long"), "spam_verdict": kw(), "spam_processing_detail": stored(),
			}),
		}),
	})
}

// HeldReleaseReader reads one page of the release log. Implemented by *mimecast.Client.
type HeldReleaseReader interface {
	HeldReleaseLogs(ctx context.Context, q mimecast.WindowQuery) (mimecast.Page, error)
}

var _ HeldReleaseReader = (*mimecast.Client)(nil)

const heldReleasePath = "/api/gateway/get-held-release-logs"

var heldReleaseSpec = SourceSpec{
	Name: HeldRelease, Endpoint: "POST " + heldReleasePath, Permission: mimecast.PermissionOf(heldReleasePath),
	Records: RecordEvents, Kind: HeldReleaseKind, Dataset: HeldReleaseDataset,
	pages: apiPages(500, func(r HeldReleaseReader, ctx context.Context, q WindowQuery) (mimecast.Page, error) {
		return r.HeldReleaseLogs(ctx, mimecast.WindowQuery{Start: q.From, End: q.To, PageSize: q.PageSize, PageToken: q.Token})
	}),
	decode: decodeHeldRelease,
}
