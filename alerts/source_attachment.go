package alerts

import (
	"strings"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// AttachmentProtection: TTP Attachment Protection logs, one alert per sandboxed attachment.
const AttachmentProtection Source = "attachment_protection"

var attachmentSpec = logSpec(AttachmentProtection, mimecast.AttachmentLogs, "POST /api/ttp/attachment/get-logs",
	"Monitoring | Attachment Protection | Read", normalizeAttachment, routeFilter)

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
