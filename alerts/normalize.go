package alerts

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Normalize decodes one record of src, exactly as the source sent it, into an Alert with
// its ID, Time, Raw and every field the record carries. An error means the record is
// malformed (not a JSON object, or without what an alert needs, such as its time); it
// names the field and concerns this record only.
//
// Decoding is tolerant (see decode.go): unknown fields are ignored, a field of an
// unexpected shape is treated as absent. Addresses are lower-cased.
func Normalize(src Source, raw json.RawMessage) (Alert, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Alert{}, fmt.Errorf("normalize %s record: %w", src, err)
	}
	var a Alert
	switch src {
	case AttachmentProtection:
		a, err = normalizeAttachment(r)
	case URLProtection:
		a, err = normalizeURL(r)
	case Impersonation:
		a, err = normalizeImpersonation(r)
	case DLP:
		a, err = normalizeDLP(r)
	case Threats:
		a, err = normalizeThreat(r)
	case SIEM:
		a, err = normalizeSIEM(r)
	default:
		return Alert{}, fmt.Errorf("normalize record: unknown source %q", src)
	}
	if err != nil {
		return Alert{}, fmt.Errorf("normalize %s record: %w", src, err)
	}
	a.Source = src
	a.Raw, _ = plain(map[string]any(r)).(map[string]any)
	return a, nil
}

// normalizeAttachment reads one attachmentLogs[] record (§4.4).
func normalizeAttachment(r record) (Alert, error) {
	t, err := r.timeField("date")
	if err != nil {
		return Alert{}, err
	}
	a := Alert{
		Time:       t,
		Verdict:    strings.ToLower(r.str("result")),
		Action:     r.str("actionTriggered"),
		Route:      strings.ToLower(r.str("route")),
		Sender:     strings.ToLower(r.str("senderAddress")),
		Recipients: r.addresses("recipientAddress"),
		Subject:    r.str("subject"),
		MessageID:  r.str("messageId"),
		Rule:       r.str("definition"),
		Details:    r.str("details"),
	}
	a.Status = statusFromAction(a.Action)
	name := r.str("fileName")
	f := File{Name: name, MimeType: r.str("fileType"), Extension: extension(name), SHA256: strings.ToLower(r.str("fileHash"))}
	if f.Name != "" || f.SHA256 != "" {
		a.Files = []File{f}
	}
	a.ID = hashID(AttachmentProtection, a.MessageID, idTime(t), recipientKey(a.Recipients), f.SHA256, f.Name)
	return a, nil
}

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

// normalizeSIEM reads one SIEM event (§4.4): always timestamp (epoch milliseconds) and
// type; the rest depends on the type, and many numbers are strings.
func normalizeSIEM(r record) (Alert, error) {
	t, err := r.timeField("timestamp")
	if err != nil {
		return Alert{}, err
	}
	typ := strings.ToLower(r.str("type"))
	a := Alert{
		Time:       t,
		Type:       typ,
		Verdict:    strings.ToLower(r.str("scanResult", "result", "verdict")),
		Action:     r.str("action"),
		Route:      strings.ToLower(r.str("route", "direction")),
		Sender:     strings.ToLower(first(r.addresses("senderEnvelope", "senderHeader", "sender", "senderAddress"))),
		Recipients: r.addresses("recipients", "recipient", "rcpt", "recipientAddress"),
		Subject:    r.str("subject"),
		MessageID:  r.str("messageId"),
		URL:        r.str("url"),
		SourceIP:   ipOrEmpty(r.str("senderIp", "senderIP", "remoteIp", "sourceIp", "ip")),
		Rule:       r.str("policy", "definition", "ttpDefinition", "policyDefinition"),
		Details:    r.str("holdReason", "reason", "subtype"),
	}
	// The types' verdicts (inferred from the event descriptions): a virus found is
	// malicious, an impersonation tagged malicious is malicious.
	if a.Verdict == "" {
		switch {
		case typ == "av" && r.str("virusFound") != "":
			a.Verdict = "malicious"
		case typ == "impersonation protect" && r.boolean("taggedMalicious"):
			a.Verdict = "malicious"
		}
	}
	a.Status = statusFromAction(a.Action)
	if a.Status == "" && r.str("holdReason") != "" {
		a.Status = "held"
	}
	if name, sha := r.str("fileName"), strings.ToLower(r.str("sha256")); name != "" || sha != "" {
		f := File{Name: name, Extension: strings.ToLower(strings.TrimPrefix(r.str("fileExtension"), ".")),
			SHA256: sha, MD5: strings.ToLower(r.str("md5")), SHA1: strings.ToLower(r.str("sha1")),
			MimeType: r.str("fileMime", "fileType", "mimeType")}
		if f.Extension == "" {
			f.Extension = extension(name)
		}
		f.Size, _ = int64Of(r["fileSize"])
		a.Files = []File{f}
	}
	a.ID = contentID(SIEM, r, "_offset", "_partition")
	return a, nil
}

// files reads a list of attachment objects under the names seen or guessed (inferred).
func files(v any) []File {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	var out []File
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		r := record(m)
		name := r.str("fileName", "name", "filename")
		f := File{
			Name:     name,
			MimeType: r.str("fileType", "mimeType", "contentType", "mime_type"),
			SHA256:   strings.ToLower(r.str("sha256", "fileHash", "hash")),
			MD5:      strings.ToLower(r.str("md5")),
			SHA1:     strings.ToLower(r.str("sha1")),
		}
		f.Extension = strings.ToLower(strings.TrimPrefix(r.str("fileExtension", "extension"), "."))
		if f.Extension == "" {
			f.Extension = extension(name)
		}
		if n, ok := int64Of(r["size"]); ok {
			f.Size = n
		} else if n, ok := int64Of(r["fileSize"]); ok {
			f.Size = n
		}
		if f.Name == "" && f.SHA256 == "" {
			continue
		}
		out = append(out, f)
		if len(out) >= maxFiles {
			break
		}
	}
	return out
}

// maxFiles bounds the files of one alert.
const maxFiles = 100

// stringList reads a list of scalars (or one scalar) as sorted text, for identifiers.
func stringList(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if s := scalarString(e); s != "" {
				out = append(out, s)
			}
			if len(out) >= maxAddresses {
				break
			}
		}
	default:
		if s := scalarString(x); s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// recipientKey is the recipients' part of an id: the addresses sorted and joined, so a
// record listing several recipients in another order keeps its id.
func recipientKey(rs []string) string {
	s := append([]string(nil), rs...)
	sort.Strings(s)
	return strings.Join(s, ",")
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}
