package alerts

import (
	"strings"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Impersonation: TTP Impersonation Protection logs (inbound mail only).
const Impersonation Source = "impersonation"

var impersonationSpec = logSpec(Impersonation, mimecast.ImpersonationLogs, "POST /api/ttp/impersonation/get-logs",
	"Monitoring | Impersonation Protection | Read", normalizeImpersonation, nil)

// normalizeImpersonation reads one impersonationLogs[] record (§4.4). These logs exist
// for inbound mail only [D], so the route is inbound.
func normalizeImpersonation(r record) (Alert, error) {
	t, err := r.timeField("eventTime")
	if err != nil {
		return Alert{}, err
	}
	a := Alert{
		Time:       t,
		Type:       strings.Join(stringList(r["identifiers"]), ","),
		Action:     r.str("action"),
		Route:      "inbound",
		Sender:     strings.ToLower(r.str("senderAddress")),
		Recipients: r.addresses("recipientAddress"),
		Subject:    r.str("subject"),
		MessageID:  r.str("messageId"),
		SourceIP:   ipOrEmpty(r.str("senderIpAddress")),
		Rule:       r.str("definition"),
	}
	if r.boolean("taggedMalicious") {
		a.Verdict = "malicious"
	}
	if hits := r.str("hits"); hits != "" {
		a.Details = "hits: " + hits
	}
	a.Status = statusFromAction(a.Action)
	a.ID = hashID(Impersonation, r.str("id"), a.MessageID, recipientKey(a.Recipients), idTime(t))
	return a, nil
}
