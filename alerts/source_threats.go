package alerts

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Threats: the API 2.0 threat feed, each event completed with its details (stream.go,
// threatDetailer; an event whose details fail is written without and parked).
const Threats Source = "threats"

var threatsSpec = SourceSpec{
	Name: Threats, Endpoint: "GET /threats/v1/events (and /threats/v1/events/{id}/details)",
	Permission: "Security Events and Data Retrieval | Threat and Security Statistics | Read",
	Records:    RecordAlerts, Kind: AlertsKind, Dataset: Dataset,
	window: func(p *Poller, log zerolog.Logger) (windowFetch, *threatDetailer) { return p.threatFetch(log) },
	needs: func(d Deps) error {
		if d.Threats == nil {
			return errors.New("source threats needs a threat source")
		}
		return nil
	},
	probe: func(ctx context.Context, d Deps, now time.Time) error {
		_, err := d.Threats.ThreatEvents(ctx, mimecast.ThreatQuery{Start: now.Add(-time.Hour), End: now, PageSize: 1, OldestFirst: true})
		return err
	},
	normalize: normalizeThreat,
}

// threatDetailsKey is where the poller puts the answer of
// /threats/v1/events/{id}/details inside the event before normalising it; fields missing
// from the event are read from there.
const threatDetailsKey = "_details"

// normalizeThreat reads one event of GET /threats/v1/events. Its shape is the least
// documented of all (§4.5): every field name below except analysis, status, direction and
// source is inferred, and each is looked up under several plausible names.
func normalizeThreat(r record) (Alert, error) {
	d := r.obj(threatDetailsKey)
	look := func(keys ...string) string {
		if s := r.str(keys...); s != "" {
			return s
		}
		return d.str(keys...)
	}
	lookAddr := func(keys ...string) []string {
		if a := r.addresses(keys...); len(a) > 0 {
			return a
		}
		return d.addresses(keys...)
	}
	t, err := r.timeField("timestamp", "eventTime", "dateTime", "date", "created", "receivedTime")
	if err != nil {
		return Alert{}, err
	}
	analysis := strings.ToLower(look("analysis", "threatType", "type"))
	if analysis == "" {
		if l := stringList(r["analysis"]); len(l) > 0 {
			analysis = strings.ToLower(l[0])
		}
	}
	a := Alert{
		Time:       t,
		Verdict:    analysis,
		Type:       analysis,
		Status:     strings.ToLower(look("status")),
		Route:      strings.ToLower(look("direction", "route")),
		Action:     look("action", "actionTaken"),
		Sender:     strings.ToLower(first(lookAddr("senderAddress", "sender", "from", "fromAddress"))),
		Recipients: lookAddr("recipients", "recipientAddress", "recipient", "to"),
		Subject:    look("subject"),
		MessageID:  look("messageId", "mimeMessageId"),
		SourceIP:   ipOrEmpty(look("senderIp", "senderIP", "sourceIp", "senderIpAddress")),
		Rule:       look("policy", "definition", "rule"),
		URL:        look("url"),
	}
	if a.URL == "" {
		if urls := append(stringList(r["urls"]), stringList(d["urls"])...); len(urls) > 0 {
			a.URL = urls[0]
		}
	}
	a.Files = files(r["files"])
	if len(a.Files) == 0 {
		a.Files = files(r["attachments"])
	}
	if len(a.Files) == 0 && d != nil {
		a.Files = files(d["files"])
		if len(a.Files) == 0 {
			a.Files = files(d["attachments"])
		}
	}
	if id := r.str("id", "eventId", "threatId"); id != "" {
		a.ID = hashID(Threats, id)
	} else {
		a.ID = contentID(Threats, r, threatDetailsKey)
	}
	return a, nil
}
