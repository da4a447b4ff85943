package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// Cloud Integrated SIEM (GET /siem/v1/batch/events/ci and /siem/v1/events/ci): the event
// types entities (a message summary with Mimecast's verdict), mailflow (SPF/DKIM/DMARC
// results) and urlclick (blocked URL clicks). Fields (Elastic's cloud_integrated_logs
// samples and field list, restated): always timestamp (epoch ms), type, subtype, accountId,
// aggregateId, processingId, _offset, _partition; entities: messageId, subject,
// senderEnvelope, senderHeader, senderIp, recipients[], attachments[] (names), direction
// (INBOUND, Inbound, ...), threatType, threatState, tags, policiesApplied[] {action, mode,
// name}, source, historicalMail; mailflow: messageId, authResults[] {type, result, aligned};
// urlclick: action, originalUrl, redirectUrl, sourceIp.
//
// ECS 8.11: an entities record with a detection (threatType other than NO_DETECTIONS and
// POLICIES_DISABLED) and every urlclick record (the log holds blocked clicks only) are
// alerts (event.kind alert, severity and risk 73 for malware, else 47), so that Elastic
// Security's External Alerts rule sees them; the rest are events. Categories: email (info)
// for entities and mailflow, plus intrusion_detection (allowed or denied, from threatState)
// and malware when the threat type says so; web and intrusion_detection for urlclick.
//
// Id: like the cg SIEM source, the record's canonical content without _offset and
// _partition (no id field; where an event sat in the stream is not what it is).

// SIEMCI is the Cloud Integrated SIEM source.
const SIEMCI Source = "siem_ci"

// decodeSIEMCI decodes one Cloud Integrated SIEM event.
func decodeSIEMCI(raw json.RawMessage) (Event, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Event{}, err
	}
	at, err := r.timeField("timestamp")
	if err != nil {
		return Event{}, err
	}
	typ := strings.ToLower(r.str("type"))
	threat := strings.ToUpper(r.str("threatType"))
	state := strings.ToUpper(r.str("threatState"))
	kind, category, types := "event", []string{"email"}, []string{"info"}
	severity := 0
	switch typ {
	case "entities":
		if threat != "" && threat != "NO_DETECTIONS" && threat != "POLICIES_DISABLED" {
			kind, severity = "alert", 47
			category = append(category, "intrusion_detection")
			if strings.Contains(threat, "MALWARE") || strings.Contains(threat, "VIRUS") {
				category, severity = append(category, "malware"), 73
			}
			types = append(types, ciAllowed(state))
		}
	case "urlclick":
		kind, severity = "alert", 47
		category, types = []string{"web", "intrusion_detection"}, []string{"info", "denied"}
		if a := strings.ToUpper(r.str("action")); a != "" && a != "BLOCK" && a != "BLOCKED" {
			types = []string{"info", "allowed"}
		}
	}
	d := eventBody(SIEMCI, raw, at, kind, category, types)
	if severity > 0 {
		d.set("event.severity", severity)
		d.set("event.risk_score", severity)
	}
	d.set("event.code", typ)
	d.set("observer.product", "Cloud Integrated")
	action := strings.ToLower(state)
	if typ == "urlclick" {
		action = strings.ToLower(r.str("action"))
	}
	d.set("event.action", action)

	var related []string
	from := headerAddresses(r["senderHeader"])
	sender := addresses(r["senderEnvelope"])
	to := r.addresses("recipients")
	d.setParties(related, from, sender, to)
	d.set("email.message_id", r.str("messageId"))
	subject := r.str("subject")
	d.set("email.subject", subject)
	d.set("email.direction", direction(r.str("direction")))
	if names, ok := r["attachments"].([]any); ok {
		var files []any
		for _, n := range names {
			if s := scalarString(n); s != "" {
				f := map[string]any{"name": s}
				if ext := extension(s); ext != "" {
					f["extension"] = ext
				}
				files = append(files, map[string]any{"file": f})
			}
		}
		if len(files) > 0 {
			d.set("email.attachments", files)
		}
	}
	ip := ipOrEmpty(r.str("senderIp", "sourceIp"))
	d.set("source.ip", ip)
	if ip != "" {
		d.set("related.ip", []string{ip})
	}
	if u := r.str("originalUrl"); u != "" {
		d.set("url.original", u)
		d.set("url.full", u)
	}
	if policies, ok := r["policiesApplied"].([]any); ok {
		for _, p := range policies {
			if m, ok := p.(map[string]any); ok {
				if name := scalarString(m["name"]); name != "" {
					d.set("rule.name", name)
					break
				}
			}
		}
	}
	msg := "Cloud Integrated " + typ + " event"
	switch {
	case typ == "urlclick" && r.str("originalUrl") != "":
		msg = "URL click " + strings.ToLower(r.str("action")) + ": " + r.str("originalUrl")
	case subject != "":
		msg += ": " + subject
	}
	d.set("message", msg)
	ci := map[string]any{}
	for k, v := range map[string]string{"type": typ, "subtype": r.str("subtype"), "threat_type": r.str("threatType"),
		"threat_state": r.str("threatState"), "account_id": r.str("accountId"), "aggregate_id": r.str("aggregateId"),
		"processing_id": r.str("processingId"), "source": r.str("source"), "redirect_url": r.str("redirectUrl")} {
		if v != "" {
			ci[k] = v
		}
	}
	for _, k := range []string{"authResults", "policiesApplied", "tags"} {
		if v, ok := r[k]; ok && v != nil {
			ci[ciKey(k)] = plain(v)
		}
	}
	d.set("mimecast.ci", ci)
	return Event{ID: contentID(SIEMCI, r, "_offset", "_partition"), Time: at, Body: d}, nil
}

// ciAllowed maps threatState to intrusion_detection's type: blocked and held states are
// denied, the others allowed.
func ciAllowed(state string) string {
	if strings.Contains(state, "BLOCK") || strings.Contains(state, "HELD") || strings.Contains(state, "QUARANTIN") || strings.Contains(state, "REMOV") {
		return "denied"
	}
	return "allowed"
}

// ciKey turns a camelCase key into snake_case.
func ciKey(s string) string {
	var b strings.Builder
	for i, c := range s {
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// headerAddresses reads a From header's address, given bare or as "Name <address>".
func headerAddresses(v any) []string {
	if s, ok := v.(string); ok && strings.Contains(s, "<") {
		if a, err := mail.ParseAddress(s); err == nil {
			return addresses(a.Address)
		}
	}
	return addresses(v)
}

// SIEMCIDataset is the dataset of the CI SIEM events: logs-mimecrawl.siem_ci-{namespace}.
const SIEMCIDataset = "mimecrawl.siem_ci"

// SIEMCIKind is the CI SIEM events' data stream.
var SIEMCIKind = index.NewKind(index.Spec{Name: "siem-ci", DataStream: SIEMCIDataset, Mapping: SIEMCIMapping})

// SIEMCIMapping is the explicit mapping of the CI SIEM events' data stream.
func SIEMCIMapping() map[string]any {
	return eventMapping(map[string]any{
		"email":  emailMapping(),
		"rule":   obj(map[string]any{"name": kw()}),
		"source": obj(map[string]any{"ip": typ("ip")}),
		"url":    obj(map[string]any{"original": kw(), "full": kw()}),
		"mimecast": obj(map[string]any{
			"ci": obj(map[string]any{
				"type": kw(), "subtype": kw(), "threat_type": kw(), "threat_state": kw(), "account_id": kw(),
				"aggregate_id": kw(), "processing_id": kw(), "source": kw(), "redirect_url": kw(),
				"auth_results": stored(), "policies_applied": stored(), "tags": kw(),
			}),
		}),
	})
}

// siemCIBatchPath is the CI batch endpoint, whose permission the spec names.
const siemCIBatchPath = "/siem/v1/batch/events/ci"

var siemCISpec = SourceSpec{
	Name: SIEMCI, Endpoint: "GET " + siemCIBatchPath + " (stream: GET /siem/v1/events/ci)",
	Permission: mimecast.PermissionOf(siemCIBatchPath),
	Records:    RecordEvents, Kind: SIEMCIKind, Dataset: SIEMCIDataset,
	Retention: siemBatchRetention, streamRetention: siemStreamRetention,
	// The cg machinery (batch files per type, or the stream with alerts.siem.stream), with the
	// product and every CI type; an account without the product gets a 403 (or an answer the
	// client takes as one: mimecast.ErrNotLicensed), which isolates this source only.
	poll: func(p *Poller, ctx context.Context, src Source, c *counters, log zerolog.Logger) ([]string, error) {
		return p.pollSIEMOf(ctx, src, c, log, mimecast.ProductCI, mimecast.SIEMTypesCI)
	},
	needs: func(d Deps) error {
		if d.SIEM == nil {
			return errors.New("source siem_ci needs a SIEM source")
		}
		return nil
	},
	probe: func(ctx context.Context, d Deps, now time.Time) error {
		_, err := d.SIEM.SIEMBatch(ctx, mimecast.SIEMBatchQuery{Product: mimecast.ProductCI, Type: mimecast.SIEMTypesCI[0], Start: now, PageSize: 1})
		return err
	},
	decode:   decodeSIEMCI,
	warnings: siemCIWarnings,
}

// siemCIWarnings is siemWarnings for siem_ci: the client paces both products' SIEM calls
// with one budget (the published one, for cg), so with siem also configured the calls of
// both count against it.
func siemCIWarnings(a config.Alerts) []string {
	if a.PollInterval <= 0 {
		return nil
	}
	both := slices.Contains(a.Sources, string(SIEM))
	calls, budget, per := len(mimecast.SIEMTypesCI), siemBatchBudgetCalls, siemBatchBudgetPer
	if both {
		calls += len(a.SIEM.Types)
	}
	if a.SIEM.Mode == config.SIEMStream {
		calls, budget, per = 1, siemStreamBudgetCalls, siemStreamBudgetPer
		if both {
			calls = 2
		}
	}
	passes := float64(per) / float64(a.PollInterval)
	need := float64(calls) * passes
	if need <= float64(budget) {
		return nil
	}
	with := "alerts.sources siem_ci"
	if both {
		with = "alerts.sources siem and siem_ci (one budget)"
	}
	return []string{fmt.Sprintf("alerts.poll_interval: %s with %s (%s mode, %d calls per pass at least) needs %.0f calls per %s, above the %d the endpoint allows; passes will wait on the quota: raise poll_interval to %s or more",
		a.PollInterval, with, a.SIEM.Mode, calls, need, config.Duration(per), budget, config.Duration(time.Duration(int64(per)*int64(calls)/int64(budget)).Round(time.Second)))}
}
