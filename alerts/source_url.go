package alerts

import (
	"strings"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// URLProtection: TTP URL Protection logs, one alert per scan or click of a URL.
const URLProtection Source = "url_protection"

var urlSpec = logSpec(URLProtection, mimecast.URLLogs, "POST /api/ttp/url/get-logs",
	"Monitoring | URL Protection | Read", normalizeURL, routeFilter)

// normalizeURL reads one clickLogs[] record (§4.4, §4.5).
func normalizeURL(r record) (Alert, error) {
	t, err := r.timeField("date")
	if err != nil {
		return Alert{}, err
	}
	a := Alert{
		Time:       t,
		Verdict:    strings.ToLower(r.str("scanResult")),
		Type:       r.str("category"),
		Action:     r.str("action"),
		Route:      strings.ToLower(r.str("route")),
		Sender:     strings.ToLower(r.str("fromUserEmailAddress")),
		Recipients: r.addresses("userEmailAddress"),
		Subject:    r.str("subject"),
		MessageID:  r.str("messageId"),
		URL:        r.str("url"),
		SourceIP:   ipOrEmpty(r.str("sendingIp")),
		Rule:       r.str("ttpDefinition"),
		Details:    r.str("creationMethod"),
	}
	a.Status = statusFromAction(a.Action)
	a.ID = hashID(URLProtection, a.MessageID, recipientKey(a.Recipients), a.URL, idTime(t), r.str("creationMethod"))
	return a, nil
}
