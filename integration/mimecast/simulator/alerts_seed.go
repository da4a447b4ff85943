package simulator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Seeded records of the original alert sources (their specs are in alerts.go, the seeding
// loop in sources.go). Everything derives from Options.Seed and Options.Alerts, so the
// same options give the same records, byte for byte. Vocabularies follow the reference
// (§4.4, §4.5): records carry no ids (impersonation's MTOKEN aside), two attachment records
// share messageId and date, one malicious attachment goes to many recipients, some URL
// records have sendingIp "Internal IP", SIEM numbers are strings and timestamps epoch ms.

// SIEMTypes are the SIEM event types (reference §4.4), in the order seeded events cycle.
var SIEMTypes = []string{"receipt", "process", "delivery", "av", "spam", "internal email protect",
	"impersonation protect", "url protect", "attachment protect", "journal"}

// alertGen builds seeded records.
type alertGen struct {
	s        *Server
	o        AlertOptions
	r        *rand.Rand
	internal []string // mailbox addresses of the directory
	external []string
	first    alertMail            // the message of attachment record 0, shared by record 1
	mails    map[uint32]alertMail // archived messages already looked at
}

// seedSIEM stores seeded SIEM events in the stream and in batch files: per type, files of
// SIEMFileEvents events in time order, every second file of a type also repeating the last
// two events of the file before it (batches overlap in practice), plus one malformed file
// whose last line is cut short.
func (g *alertGen) seedSIEM(recs []*alertRec) {
	st := g.s.alerts
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range recs {
		st.seq++
		r.seq = st.seq
	}
	st.siem = append(st.siem, recs...)
	byType := map[string][]*alertRec{}
	for _, r := range recs {
		t := r.fields["type"].(string)
		byType[t] = append(byType[t], r)
	}
	per := g.o.SIEMFileEvents
	for _, typ := range SIEMTypes {
		evs := byType[typ]
		var prev []*alertRec
		for n := 0; len(evs) > 0; n++ {
			take, day := fileTake(evs, per)
			events := evs[:take:take]
			if n%2 == 1 && len(prev) >= 2 {
				events = append(append([]*alertRec{}, prev[len(prev)-2:]...), events...)
			}
			st.addFile(typ, day, events, nil, g.s.keys)
			prev, evs = evs[:take], evs[take:]
		}
	}
	// The malformed file: its first records are good events of its own (they are in the
	// stream and the truth too); its tail is the cut-short record seen in the wild.
	if len(recs) > 0 {
		last := recs[len(recs)-1]
		good := []*alertRec{}
		for k := range 2 {
			fields := g.siemFields(len(recs)+k, "receipt", time.UnixMilli(last.at).UTC())
			fields["timestamp"] = last.at
			raw, _ := marshalCompact(fields)
			r, err := simSourceByName[SourceSIEM].newRecord(g.o, raw, time.UnixMilli(last.at), false)
			if err != nil {
				continue
			}
			st.seq++
			r.seq = st.seq
			st.siem = append(st.siem, r)
			good = append(good, r)
		}
		st.addFile("receipt", dayOf(last.at), good, []byte(`{ "type" : "MTA", "data" :`), g.s.keys)
	}
}

func (g *alertGen) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g *alertGen) hash(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00") + strconv.FormatInt(g.s.opts.Seed, 10)))
	return hex.EncodeToString(h[:])
}

// alertMail is the message an alert is about: for every third record a real archived INBOX
// message (so the alert links to the archive), else an invented one.
type alertMail struct {
	messageID, subject, from, to string
	// file is an attachment the archived message carries (nil: none, or an invented
	// message): an attachment alert about the message names it with its real digest, so that
	// the hash leads from the alert to the archived copies of the file.
	file *alertFile
}

type alertFile struct{ name, sha256, mime string }

func (g *alertGen) mail(i int, source string) alertMail {
	if i%3 == 0 {
		if m, ok := g.archived(i); ok {
			return m
		}
	}
	return alertMail{
		messageID: fmt.Sprintf("<%s.%d@%s>", g.hash(source, strconv.Itoa(i))[:16], i, strings.SplitN(g.pick(g.external), "@", 2)[1]),
		subject:   g.pick(alertSubjects),
		from:      g.pick(g.external),
		to:        g.pick(g.internal),
	}
}

func (g *alertGen) archived(i int) (alertMail, bool) {
	a := g.s.arch
	a.mu.RLock()
	n := len(a.bySeq)
	a.mu.RUnlock()
	for k := range 8 {
		if n == 0 {
			break
		}
		seq := uint32((i*7919 + k) % n)
		if m, ok := g.mails[seq]; ok {
			if m.messageID == "" {
				continue
			}
			return m, true
		}
		m, ref, ok := a.liveMessage(seq)
		if !ok || viewNames[m.view] != api.ViewInbox {
			g.mails[seq] = alertMail{}
			continue
		}
		c := a.content(ref)
		am := alertMail{messageID: c.messageID, subject: c.subject, from: c.from.EmailAddress, to: ref.owner.EmailAddress}
		for _, at := range c.attachments(a.seed) {
			if at.spec.filename != "" {
				am.file = &alertFile{name: at.spec.filename, sha256: at.sha256, mime: at.spec.contentType()}
				break
			}
		}
		g.mails[seq] = am
		return am, true
	}
	return alertMail{}, false
}

var (
	alertSubjects = []string{"Invoice overdue", "Your parcel could not be delivered", "Q3 forecast", "Password expiry notice",
		"Signed contract attached", "Meeting notes", "Payment confirmation", "Updated bank details", "Shared document", "Voicemail received"}
	routes        = []string{"inbound", "inbound", "inbound", "outbound", "internal"}
	attachResults = []string{"safe", "safe", "safe", "malicious", "unknown", "timeout"}
	fileKinds     = []struct{ ext, mime string }{
		{"pdf", "application/pdf"}, {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12"}, {"zip", "application/zip"},
		{"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"}, {"html", "text/html"},
	}
	scanResults  = []string{"clean", "clean", "clean", "malicious", "suspicious"}
	urlHosts     = []string{"docs.example.net", "login-update.example.org", "cdn.partner.example", "track.mailer.example", "files.share.example"}
	urlActions   = map[string][2]string{"clean": {"allow", "Allow"}, "suspicious": {"warn", "Browser Isolation"}, "malicious": {"block", "Block"}}
	identifiers  = []string{"newly_observed_domain", "internal_user_name", "similar_internal_domain", "reply_address_mismatch", "targeted_threat_dictionary"}
	impActions   = []string{"none", "none", "hold", "bounce"}
	dlpPolicies  = []string{"Credit card numbers", "Personal data (GDPR)", "Source code", "Confidential label"}
	dlpActions   = []string{"notification", "hold", "block", "bounce"}
	threatKinds  = []string{"malware", "phishing", "spam", "suspicious", "unwanted"}
	threatStatus = []string{"blocked", "rejected", "delivered", "held", "bounced", "unknown"}
)

// The malicious attachment and URL that many recipients get (the grouping cases).
const (
	campaignFile = "Remittance_Advice_0423.xlsm"
	campaignURL  = "https://login-update.example.org/verify?session=a41b9"
)

func (g *alertGen) attachment(i, n int, at time.Time) map[string]any {
	m := g.mail(i, SourceAttachment)
	fk := fileKinds[g.r.IntN(len(fileKinds))]
	name := fmt.Sprintf("%s_%d.%s", strings.ReplaceAll(g.pick(alertSubjects), " ", "_"), i, fk.ext)
	hash := g.hash("file", strconv.Itoa(i))
	mimeType := fk.mime
	if m.file != nil {
		name, hash, mimeType = m.file.name, m.file.sha256, m.file.mime
	}
	result, route := g.pick(attachResults), g.pick(routes)
	switch {
	case i == 0:
		g.first = m
	case i == 1:
		// The second file of record 0's message: same messageId and date.
		m = g.first
		fk = fileKinds[4]
		name, mimeType = "Quarterly_review.pptx", fk.mime
	case i >= 2 && i < 2+min(8, n/4+1):
		// One malicious file sent to many recipients.
		m.to = g.internal[i%len(g.internal)]
		if i >= len(g.internal)+2 {
			m.to = fmt.Sprintf("user%d@%s", i, strings.SplitN(g.internal[0], "@", 2)[1])
		}
		fk, name, hash, result, route = fileKinds[2], campaignFile, g.hash("campaign"), "malicious", "inbound"
		mimeType = fk.mime
	}
	action := "none, none"
	if result == "malicious" {
		action = "sandbox, block"
	}
	return map[string]any{
		"senderAddress": m.from, "recipientAddress": m.to, "fileName": name, "fileType": mimeType,
		"fileHash": hash, "result": result, "actionTriggered": action, "route": route,
		"details":   "Safe File with On-Demand Sandbox\r\nTime taken: " + strconv.Itoa(2+g.r.IntN(90)) + "s",
		"messageId": m.messageID, "subject": m.subject, "definition": "Default Attachment Protection Definition",
	}
}

func (g *alertGen) urlClick(i, n int, at time.Time) map[string]any {
	m := g.mail(i, SourceURL)
	scan := g.pick(scanResults)
	u := fmt.Sprintf("https://%s/%s/%d", g.pick(urlHosts), g.hash("url", strconv.Itoa(i))[:10], i)
	if i%5 == 1 {
		scan, u = "malicious", campaignURL
	}
	act := urlActions[scan]
	ip := fmt.Sprintf("203.0.113.%d", 1+g.r.IntN(250))
	route := g.pick(routes)
	if route == "internal" || i%7 == 3 {
		ip = "Internal IP"
	}
	category := map[string]string{"clean": "Business", "suspicious": "Newly Registered Domains", "malicious": "Phishing & Fraud"}[scan]
	method := "User Click"
	if i%6 == 4 {
		method = "Entry Scan"
	}
	return map[string]any{
		"userEmailAddress": m.to, "fromUserEmailAddress": m.from, "url": u,
		"ttpDefinition": "Default URL Protection Definition", "subject": m.subject,
		"action": act[0], "actions": act[1], "adminOverride": "N/A", "userOverride": "None",
		"userAwarenessAction": "NA", "scanResult": scan, "category": category, "sendingIp": ip,
		"route": route, "creationMethod": method, "emailPartsDescription": []string{"Body"},
		"messageId": m.messageID, "tagMap": map[string]any{"UrlScan": map[string]any{"ScanResult": []string{scan}}},
	}
}

func (g *alertGen) impersonation(i, n int, at time.Time) map[string]any {
	m := g.mail(i, SourceImpersonation)
	ids := []string{identifiers[i%len(identifiers)]}
	if i%3 == 1 {
		ids = append(ids, identifiers[(i+2)%len(identifiers)])
	}
	malicious := len(ids) > 1 || i%4 == 0
	action := g.pick(impActions)
	if malicious && action == "none" {
		action = "hold"
	}
	similar := strings.SplitN(g.internal[0], "@", 2)[1]
	return map[string]any{
		"id":            "MTOKEN:" + g.s.keys.encodeID('i', uint32(i), 0),
		"senderAddress": m.from, "recipientAddress": m.to,
		"senderIpAddress": fmt.Sprintf("198.51.100.%d", 1+g.r.IntN(250)),
		"subject":         m.subject, "definition": "Default Impersonation Definition",
		"hits": len(ids), "identifiers": ids, "action": action,
		"taggedExternal": true, "taggedMalicious": malicious,
		"impersonationResults": []map[string]any{{
			"impersonationDomainSource": "internal", "similarDomain": strings.Replace(similar, "e", "3", 1),
			"stringSimilarToDomain": similar, "checkerResult": []string{"SimilarDomain"},
		}},
		"messageId": m.messageID,
	}
}

func (g *alertGen) dlp(i, n int, at time.Time) map[string]any {
	m := g.mail(i, SourceDLP)
	// DLP is mostly about mail leaving: swap to an internal sender and an external recipient.
	route := []string{"outbound", "outbound", "internal"}[i%3]
	to := g.pick(g.external)
	if route == "internal" {
		to = g.pick(g.internal)
	}
	return map[string]any{
		"senderAddress": g.internal[i%len(g.internal)], "recipientAddress": to, "subject": m.subject,
		"route": route, "policy": g.pick(dlpPolicies), "action": g.pick(dlpActions), "messageId": m.messageID,
	}
}

func (g *alertGen) threat(i, n int, at time.Time) map[string]any {
	m := g.mail(i, SourceThreats)
	kind := threatKinds[i%len(threatKinds)]
	source := "email"
	if i%4 == 3 {
		source = "url"
	}
	rec := map[string]any{
		"id":       "thr-" + g.hash("threat", strconv.Itoa(i))[:24],
		"analysis": kind, "status": threatStatus[(i/2)%len(threatStatus)],
		"direction": "inbound", "source": source,
		"senderAddress": m.from, "recipientAddress": m.to, "subject": m.subject, "messageId": m.messageID,
	}
	if source == "url" {
		rec["url"] = fmt.Sprintf("https://%s/t/%d", g.pick(urlHosts), i)
	} else if kind == "malware" {
		rec["fileName"] = campaignFile
		rec["sha256"] = g.hash("campaign")
	}
	return rec
}

func (g *alertGen) siemEvent(i, n int, at time.Time) map[string]any {
	return g.siemFields(i, SIEMTypes[i%len(SIEMTypes)], at)
}

// siemFields builds one SIEM event of typ; numbers are strings, as the API sends them.
func (g *alertGen) siemFields(i int, typ string, at time.Time) map[string]any {
	m := g.mail(i, SourceSIEM)
	agg := g.hash("agg", strconv.Itoa(i))[:22]
	ev := map[string]any{
		"timestamp": at.UnixMilli(), "type": typ, "subtype": "",
		"aggregateId": agg + "_" + strconv.FormatInt(at.Unix(), 10), "processingId": g.hash("proc", strconv.Itoa(i))[:32] + "_" + strconv.FormatInt(at.Unix(), 10),
		"accountId": g.s.keys.customerCode, "_offset": 100000 + i, "_partition": i % 12,
		"messageId": m.messageID, "subject": m.subject,
	}
	switch typ {
	case "receipt":
		ev["subtype"] = "Allow"
		ev["senderEnvelope"], ev["recipients"], ev["senderIp"] = m.from, m.to, fmt.Sprintf("192.0.2.%d", 1+i%250)
		ev["action"], ev["spamScore"], ev["tlsVersion"] = "Acc", strconv.Itoa(g.r.IntN(10)), "TLSv1.3"
	case "process":
		ev["subtype"], ev["action"] = "Allow", "Allow"
		ev["numberAttachments"] = strconv.Itoa(g.r.IntN(3))
		if i%4 == 1 {
			ev["subtype"], ev["action"], ev["holdReason"] = "Hld", "Hld", "Spam Detection"
		}
	case "delivery":
		ev["subtype"] = "Delivery"
		ev["delivered"], ev["deliveryAttempts"], ev["destinationIp"] = "true", "1", fmt.Sprintf("10.0.0.%d", 1+i%250)
		ev["direction"], ev["emailSize"], ev["recipients"], ev["route"] = "Inbound", strconv.Itoa(2000+g.r.IntN(90000)), m.to, "Inbound"
		ev["senderEnvelope"], ev["tlsUsed"] = m.from, "Yes"
	case "av":
		ev["subtype"], ev["fileName"], ev["sha256"], ev["virusFound"] = "Av", campaignFile, g.hash("campaign"), "Troj/DocDl-ABC"
	case "spam":
		ev["subtype"], ev["spamScore"], ev["spamInfo"] = "Spam", strconv.Itoa(10+g.r.IntN(90)), "Heuristic"
	case "attachment protect":
		ev["subtype"] = "Attachment Protect"
		name := fmt.Sprintf("report_%d.pdf", i)
		ev["fileName"], ev["fileExtension"] = name, "pdf"
		ev["md5"], ev["sha1"], ev["sha256"] = g.hash("md5", name)[:32], g.hash("sha1", name)[:40], g.hash("file", name)
	case "url protect":
		ev["subtype"], ev["url"], ev["urlCategory"] = "Url Protect", fmt.Sprintf("https://%s/s/%d", g.pick(urlHosts), i), "Phishing & Fraud"
	case "impersonation protect":
		ev["subtype"], ev["similarDomain"], ev["action"] = "Impersonation Protect", "examp1e.com", "Hold"
	case "internal email protect":
		ev["subtype"], ev["scanResults"] = "Internal Email Protect", "clean"
	case "journal":
		ev["subtype"], ev["direction"] = "Journal", "Internal"
	}
	return ev
}

// siemKnownType reports whether t is a SIEM event type.
func siemKnownType(t string) bool {
	for _, k := range SIEMTypes {
		if k == t {
			return true
		}
	}
	return false
}
