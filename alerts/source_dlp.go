package alerts

import (
	"strings"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// DLP: Data Leak Prevention logs; the action stands for the verdict.
const DLP Source = "dlp"

var dlpSpec = logSpec(DLP, mimecast.DLPLogs, "POST /api/dlp/get-logs",
	"Monitoring | Data Leak Prevention | Read", normalizeDLP, routesFilter)

// normalizeDLP reads one dlpLogs[] record (§4.4). DLP has no verdict of its own; the
// action stands for it.
func normalizeDLP(r record) (Alert, error) {
	t, err := r.timeField("eventTime")
	if err != nil {
		return Alert{}, err
	}
	a := Alert{
		Time:       t,
		Action:     r.str("action"),
		Route:      strings.ToLower(r.str("route")),
		Sender:     strings.ToLower(r.str("senderAddress")),
		Recipients: r.addresses("recipientAddress"),
		Subject:    r.str("subject"),
		MessageID:  r.str("messageId"),
		Rule:       r.str("policy"),
	}
	a.Verdict = strings.ToLower(a.Action)
	a.Status = statusFromAction(a.Action)
	a.ID = hashID(DLP, a.MessageID, recipientKey(a.Recipients), idTime(t), a.Rule)
	return a, nil
}
