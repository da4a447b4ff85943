package index

import "time"

// Address is one mail address with its display name.
type Address struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
}

// MessageDoc is the document of one archived message in the messages index. Its JSON names are
// the field names of the mapping in mappings.go; keep both in step.
type MessageDoc struct {
	Mailbox         string              `json:"mailbox"`
	Domain          string              `json:"domain"`
	View            string              `json:"view"`
	MessageID       string              `json:"message_id"` // the archive's id of the message
	MimeMessageID   string              `json:"mime_message_id,omitempty"`
	Received        time.Time           `json:"received"`
	Subject         string              `json:"subject"`
	From            Address             `json:"from"`
	To              []Address           `json:"to,omitempty"`
	Cc              []Address           `json:"cc,omitempty"`
	ReplyTo         *Address            `json:"reply_to,omitempty"`
	Headers         map[string][]string `json:"headers,omitempty"` // indexed as one flattened field
	Body            string              `json:"body"`
	BodyHTML        bool                `json:"body_from_html"` // the text was derived from an HTML part
	Oversize        bool                `json:"oversize"`       // larger than its download limit: Body is the text read up to it
	Size            int64               `json:"size"`
	AttachmentCount int                 `json:"attachment_count"`
	AttachmentNames []string            `json:"attachment_names,omitempty"`
	// AttachmentText is the text the crawler extracted from the message's attachments, joined
	// and capped, so that a search of the messages index finds a message by its attachments.
	AttachmentText string    `json:"attachment_text,omitempty"`
	Smash          string    `json:"smash,omitempty"`
	Generation     int64     `json:"generation"`
	IndexedAt      time.Time `json:"indexed_at"`
}

// AttachmentDoc is the document of one attachment in the attachments index, linked to its
// message by MessageDocID.
type AttachmentDoc struct {
	Mailbox      string    `json:"mailbox"`
	Domain       string    `json:"domain"`
	View         string    `json:"view"`
	MessageID    string    `json:"message_id"`
	MessageDocID string    `json:"message_doc_id"`
	AttachmentID string    `json:"attachment_id"`
	Received     time.Time `json:"received"`
	Subject      string    `json:"subject"`
	Filename     string    `json:"filename"`
	ContentType  string    `json:"content_type"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	// Oversize marks an attachment larger than the configured cap: metadata only.
	Oversize bool `json:"oversize"`
	// Content is text the crawler extracted itself.
	Content string `json:"content,omitempty"`
	// TextError says why the crawler could not extract text ("corrupt pdf", "limit docx", ...),
	// in the field the ingest pipeline uses for its own failures.
	TextError string `json:"attachment_error,omitempty"`
	// Data is the base64 file for the attachment pipeline, which removes it after extraction.
	// The mapping also excludes it from _source, so it is never stored even without a pipeline.
	Data       string    `json:"data,omitempty"`
	Generation int64     `json:"generation"`
	IndexedAt  time.Time `json:"indexed_at"`
}
