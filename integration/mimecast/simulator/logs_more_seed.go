package simulator

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Seeded records of the more log sources. Everything derives from Options.Seed and
// AlertOptions (Logs, End, Span), so the same options give the same records, byte for byte.
// Vocabularies follow the public samples named in logs_more.go: archive search logs with
// empty search texts and reasons, a message id, a hash with a user filter and an
// occasional searchPath; release logs released and rejected, with spam verdicts and
// operators; indicators whose patterns are mostly SHA-256 (also MD5, a URL and an IPv4
// address, the STIX forms a feed may carry: inferred); CI entities, mailflow and urlclick
// events with epoch-millisecond timestamps.

var (
	archiveSearchTexts = []string{"", "[Route : outbound]", "invoice", "[User : %s]", "%s [User : %s]", "<%s>"}
	archiveReasons     = []string{"", "", "legal hold review", "sample search"}
	archiveDescs       = []string{"Message Tracking Search", "Audit [Page 1] - Depth 100", "Threat Remediation search", "Archive Search"}
	viewSources        = []string{"Archive", "Message Tracking", "Case Review"}
	heldReasons        = []string{"High-Confidence Impersonation Protection", "Attachment Protection", "Spam Detection",
		"Policy: Content Examination", "Moderate Spam Detection", "Suspected Malware"}
	heldGroups     = []string{"IT Staff Global", "Administrators", "Everyone"}
	spamDecisions  = []string{"spam", "clean", "spam", "malware"}
	detectionLevel = []string{"relaxed", "moderate", "aggressive"}
	malwareNames   = []string{"Business Proposal_Final", "Urgent info! - TwoToEight", "RE: Read: Data base forms",
		"VM: Caller 908-999-4562", "Application pack - TwoToEight"}
	ciActions = []string{"BLOCK", "DO_NOTHING", "WARN"}
)

// moreGen builds seeded records of the more sources.
type moreGen struct {
	s        *Server
	r        *rand.Rand
	internal []string
	external []string
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

func (g *moreGen) hash(i int, kind string) string {
	return hex.EncodeToString(g.s.keys.mac("more", kind, strconv.Itoa(i)))
}

func (g *moreGen) archiveSearch(i int) map[string]any {
	admin := pick(g.r, g.internal)
	text := pick(g.r, archiveSearchTexts)
	switch text {
	case "[User : %s]":
		text = fmt.Sprintf(text, pick(g.r, g.internal))
	case "%s [User : %s]":
		text = fmt.Sprintf(text, g.hash(i, "file"), admin)
	case "<%s>":
		text = fmt.Sprintf(text, g.hash(i, "msg")[:16]+"@mail.example")
	}
	rec := map[string]any{"emailAddr": admin, "source": "archive", "searchText": text,
		"searchReason": pick(g.r, archiveReasons), "description": pick(g.r, archiveDescs)}
	if i%7 == 3 {
		rec["searchPath"] = "/" + pick(g.r, []string{"legal", "hr", "finance"})
	}
	if i%11 == 5 {
		rec["emailAddr"] = "<>" // a system search, as in the public sample
	}
	return rec
}

func (g *moreGen) view(i int) map[string]any {
	return map[string]any{"viewer": pick(g.r, g.internal), "source": pick(g.r, viewSources),
		"subject": pick(g.r, malwareNames), "from": pick(g.r, g.external), "to": pick(g.r, g.internal),
		"discoveryCase": i%5 == 0, "contentViewed": i%3 != 0}
}

func (g *moreGen) heldRelease(i int) map[string]any {
	from := pick(g.r, g.external)
	to := pick(g.r, g.internal)
	decision := pick(g.r, spamDecisions)
	rec := map[string]any{
		"attachments": i%2 == 0, "detectionLevel": pick(g.r, detectionLevel),
		"fromEnv":   map[string]any{"displayableName": "Sender " + strconv.Itoa(i), "emailAddress": from},
		"fromHdr":   map[string]any{"displayableName": "Sender " + strconv.Itoa(i), "emailAddress": from},
		"heldGroup": pick(g.r, heldGroups), "heldReason": pick(g.r, heldReasons),
		"id":       "eNpV" + base64.RawURLEncoding.EncodeToString(g.s.keys.mac("held", strconv.Itoa(i))),
		"operator": pick(g.r, g.internal), "policy": pick(g.r, heldReasons), "route": pick(g.r, []string{"inbound", "outbound", "internal"}),
		"size": 2000 + g.r.IntN(90000),
		"spamProcessingDetail": map[string]any{
			"spf":         map[string]any{"allow": true, "info": "allow"},
			"dkim":        map[string]any{"allow": i%4 != 0, "info": "allow"},
			"spamVerdict": map[string]any{"decision": decision, "risk": pick(g.r, []string{"negligible", "low", "high"}), "description": ""},
		},
		"spamScore": g.r.IntN(20), "status": "released", "subject": pick(g.r, malwareNames),
		"to": []map[string]any{{"displayableName": "Recipient", "emailAddress": to}},
	}
	if i%3 == 2 {
		rec["status"] = "rejected"
		rec["rejectReason"] = "Message contains undesirable content"
		rec["messageInfo"] = "Expired in queue - rejected by housekeeping"
	}
	return rec
}

func (g *moreGen) indicator(i int) map[string]any {
	h := g.hash(i, "indicator"+strconv.Itoa(g.r.IntN(1<<30)))
	pattern := "[file:hashes.'SHA-256' = '" + h + "']"
	switch i % 10 {
	case 3:
		pattern = "[file:hashes.'MD5' = '" + h[:32] + "']"
	case 6:
		pattern = "[url:value = 'http://" + h[:10] + ".example/login']"
	case 9:
		pattern = "[ipv4-addr:value = '198.51.100." + strconv.Itoa(1+i%250) + "']"
	}
	return map[string]any{"type": "indicator", "id": "indicator--" + g.s.uuid("indicator", h),
		"labels": []string{"malicious-activity"}, "pattern": pattern}
}

func (g *moreGen) ciEvent(i int) map[string]any {
	typ := SIEMTypesCI[i%len(SIEMTypesCI)]
	epoch := strconv.FormatInt(int64(1_700_000_000+i), 10)
	rec := map[string]any{"_offset": 1_800_000 + i, "_partition": 53, "accountId": "CUSA102A236",
		"aggregateId":  base64.RawURLEncoding.EncodeToString(g.s.keys.mac("ciagg", strconv.Itoa(i))[:18]) + "_" + epoch,
		"processingId": g.hash(i, "ciproc") + "_" + epoch, "type": typ,
		"messageId": "<" + g.hash(i, "cimsg")[:20] + "@mail.example>"}
	switch typ {
	case "entities":
		threat := pick(g.r, []string{"NO_DETECTIONS", "NO_DETECTIONS", "MALWARE", "PHISHING"})
		rec["subtype"], rec["threatType"] = threat, threat
		rec["threatState"] = map[bool]string{true: "BLOCKED", false: "DELIVERY_IN_PROGRESS"}[threat != "NO_DETECTIONS"]
		rec["attachments"] = []string{}
		if i%2 == 0 {
			rec["attachments"] = []string{pick(g.r, malwareNames) + ".xlsx"}
		}
		rec["direction"] = pick(g.r, []string{"INBOUND", "Inbound", "OUTBOUND"})
		rec["historicalMail"] = false
		rec["policiesApplied"] = []map[string]any{{"action": pick(g.r, ciActions), "mode": "ACTIVE", "name": "Default O365 Mail policy"}}
		rec["recipients"] = []string{pick(g.r, g.internal)}
		rec["senderEnvelope"] = pick(g.r, g.external)
		rec["senderHeader"] = rec["senderEnvelope"]
		rec["senderIp"] = "81.2.69." + strconv.Itoa(1+i%250)
		rec["source"] = "OFFICE_365_MAIL"
		rec["subject"] = pick(g.r, malwareNames)
		rec["tags"] = nil
		if threat != "NO_DETECTIONS" {
			rec["tags"] = []string{threat}
		}
	case "mailflow":
		rec["subtype"] = nil
		rec["authResults"] = []map[string]any{{"aligned": true, "result": "pass", "type": "SPF"},
			{"aligned": false, "result": pick(g.r, []string{"pass", "none"}), "type": "DKIM"},
			{"aligned": nil, "result": pick(g.r, []string{"pass", "fail"}), "type": "DMARC"}}
	case "urlclick":
		rec["subtype"] = "BLOCKED"
		rec["action"] = "BLOCK"
		rec["originalUrl"] = "https://" + g.hash(i, "ciurl")[:12] + ".example/doc"
		rec["redirectUrl"] = "https://" + g.hash(i, "ciredir")[:12] + ".example/landing"
		rec["sourceIp"] = "81.2.69." + strconv.Itoa(1+i%250)
	}
	return rec
}
