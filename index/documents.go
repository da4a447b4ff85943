package index

import (
	"strings"
	"time"
)

// ECSVersion is the version of the Elastic Common Schema the archive's documents follow. The
// fields of MessageDoc and AttachmentDoc outside mimecast.* are ECS fields of this version with
// ECS's types (a test holds them to ECS's definitions).
const ECSVersion = "8.11.0"

// Field names that code outside this file reads or filters on. Documents and mappings spell
// them through their JSON names; everything that queries goes through these.
const (
	FieldMailbox    = "mimecast.mailbox"    // the archived mailbox (keyword)
	FieldView       = "mimecast.view"       // INBOX or SENT (keyword)
	FieldGeneration = "mimecast.generation" // the pass that last wrote the document (long)
	FieldArchiveID  = "mimecast.id"         // the archive's id of the message (keyword)
	FieldMessageID  = "email.message_id"    // the RFC 5322 Message-ID (keyword)
	FieldSubject    = "email.subject"       // keyword, with full text in email.subject.text
	FieldTimestamp  = "@timestamp"          // when the archive received the message
)

// EventDataset is event.dataset of archive documents.
const EventDataset = "mimecast.archive"

// ECS is the ecs field set: the schema version a document follows.
type ECS struct {
	Version string `json:"version"`
}

// Event is the ECS event field set of an archive document.
type Event struct {
	Kind     string    `json:"kind"`     // always "event"
	Category []string  `json:"category"` // always ["email"]
	Type     []string  `json:"type"`     // always ["info"]
	Module   string    `json:"module"`   // "mimecast"
	Dataset  string    `json:"dataset"`  // EventDataset
	Ingested time.Time `json:"ingested"` // when mimecrawl built the document
}

// NewEvent returns the event fields every archive document carries.
func NewEvent(ingested time.Time) Event {
	return Event{Kind: "event", Category: []string{"email"}, Type: []string{"info"}, Module: "mimecast",
		Dataset: EventDataset, Ingested: ingested}
}

// Addresses is an ECS address group (email.from, email.to, ...): lowercase addresses.
type Addresses struct {
	Address []string `json:"address,omitempty"`
}

// Hash holds the digests of a file.
type Hash struct {
	SHA256 string `json:"sha256,omitempty"`
}

// File is ECS's file field set: email.attachments.file, and file at the top of an attachment
// document.
type File struct {
	Name      string `json:"name"`
	MimeType  string `json:"mime_type,omitempty"`
	Extension string `json:"extension,omitempty"` // lowercase, without the dot
	Size      int64  `json:"size"`
	Hash      *Hash  `json:"hash,omitempty"`
}

// EmailAttachment is one entry of email.attachments.
type EmailAttachment struct {
	File File `json:"file"`
}

// Email is ECS's email field set.
type Email struct {
	MessageID string `json:"message_id,omitempty"` // the RFC 5322 Message-ID
	// LocalID is the archive's id of the message, as ECS defines local_id: the id given by
	// the system that produced the event. Also in mimecast.id.
	LocalID              string            `json:"local_id,omitempty"`
	Subject              string            `json:"subject"`
	From                 *Addresses        `json:"from,omitempty"`
	Sender               *Addresses        `json:"sender,omitempty"` // the envelope sender
	To                   *Addresses        `json:"to,omitempty"`
	Cc                   *Addresses        `json:"cc,omitempty"`
	ReplyTo              *Addresses        `json:"reply_to,omitempty"`
	Direction            string            `json:"direction,omitempty"`             // Organisation.Direction: internal, inbound or outbound
	OriginationTimestamp *time.Time        `json:"origination_timestamp,omitempty"` // the Date header
	DeliveryTimestamp    time.Time         `json:"delivery_timestamp"`              // when the archive received it
	Attachments          []EmailAttachment `json:"attachments,omitempty"`
}

// User is ECS's user field set: the mailbox owner.
type User struct {
	Email string `json:"email"`
}

// Related is ECS's related field set: the values one search pivots on across indices. The
// same hash in an alert and in the archive finds the alert and every archived copy of the file;
// an address finds every message it was on, in any role.
type Related struct {
	Hash []string `json:"hash,omitempty"` // SHA-256 of the attached files
	User []string `json:"user,omitempty"` // every address on the message, and the mailbox's
}

// Names are the display names given in an address group (empty ones left out).
type Names struct {
	Name []string `json:"name,omitempty"`
}

// Auth holds the results of the Authentication-Results headers, lowercase (pass, fail,
// softfail, none, ...), one entry per result found.
type Auth struct {
	SPF   []string `json:"spf,omitempty"`
	DKIM  []string `json:"dkim,omitempty"`
	DMARC []string `json:"dmarc,omitempty"`
}

// MessageMeta is the mimecast.* part of a message document: what ECS has no field for.
type MessageMeta struct {
	ID      string `json:"id"` // the archive's id of the message
	Mailbox string `json:"mailbox"`
	Domain  string `json:"domain"`
	View    string `json:"view"`
	// Display names of the ECS address groups.
	From    *Names              `json:"from,omitempty"`
	To      *Names              `json:"to,omitempty"`
	Cc      *Names              `json:"cc,omitempty"`
	ReplyTo *Names              `json:"reply_to,omitempty"`
	Headers map[string][]string `json:"headers,omitempty"` // indexed as one flattened field
	Auth    *Auth               `json:"auth,omitempty"`
	Body    string              `json:"body"`
	// BodyHTML says the text was derived from an HTML part.
	BodyHTML bool `json:"body_from_html"`
	// Oversize: larger than its download limit; Body is the text read up to it.
	Oversize        bool  `json:"oversize"`
	Size            int64 `json:"size"`
	AttachmentCount int   `json:"attachment_count"`
	// AttachmentText is the text the crawler extracted from the message's attachments, joined
	// and capped, so that a search of the messages index finds a message by its attachments.
	AttachmentText string `json:"attachment_text,omitempty"`
	Smash          string `json:"smash,omitempty"`
	Generation     int64  `json:"generation"`
}

// MessageDoc is the document of one archived message in the messages index. Its JSON names are
// the field names of the mapping in mappings.go; keep both in step.
type MessageDoc struct {
	Timestamp time.Time   `json:"@timestamp"` // when the archive received the message
	ECS       ECS         `json:"ecs"`
	Event     Event       `json:"event"`
	Email     Email       `json:"email"`
	User      User        `json:"user"`
	Related   Related     `json:"related"` // set by SetPivots
	Mimecast  MessageMeta `json:"mimecast"`
}

// AttachmentMeta is the mimecast.* part of an attachment document.
type AttachmentMeta struct {
	ID           string `json:"id"` // the archive's id of the message
	Mailbox      string `json:"mailbox"`
	Domain       string `json:"domain"`
	View         string `json:"view"`
	MessageDocID string `json:"message_doc_id"`
	AttachmentID string `json:"attachment_id"`
	// Oversize marks an attachment larger than the configured cap: metadata only.
	Oversize bool `json:"oversize"`
	// Content is text the crawler extracted itself.
	Content string `json:"content,omitempty"`
	// TextError says why the crawler could not extract text ("corrupt pdf", "limit docx", ...),
	// in the field the ingest pipeline uses for its own failures.
	TextError string `json:"attachment_error,omitempty"`
	// Data is the base64 file for the attachment pipeline, which removes it after extraction.
	// The mapping also excludes it from _source, so it is never stored even without a pipeline.
	Data       string `json:"data,omitempty"`
	Generation int64  `json:"generation"`
}

// AttachmentDoc is the document of one attachment in the attachments index, linked to its
// message by mimecast.message_doc_id. Its email fields are its message's, with
// email.attachments holding only this file; the top-level file is the same file, where
// Elastic's rules and the Security app look for a file's hash.
type AttachmentDoc struct {
	Timestamp time.Time      `json:"@timestamp"`
	ECS       ECS            `json:"ecs"`
	Event     Event          `json:"event"`
	Email     Email          `json:"email"`
	File      *File          `json:"file,omitempty"` // set by SetPivots
	User      User           `json:"user"`
	Related   Related        `json:"related"` // set by SetPivots
	Mimecast  AttachmentMeta `json:"mimecast"`
}

// AttachedFile returns the attachment's file fields (email.attachments[0].file), adding the
// entry if the document has none yet.
func (d *AttachmentDoc) AttachedFile() *File {
	if len(d.Email.Attachments) == 0 {
		d.Email.Attachments = []EmailAttachment{{}}
	}
	return &d.Email.Attachments[0].File
}

// SetPivots fills the fields that repeat others so that one search finds documents across
// indices: related.user (every address of the message and the mailbox owner) and
// related.hash (the SHA-256 of every attachment listed). Call it once the document is
// otherwise complete; what changes after is not repeated.
func (d *MessageDoc) SetPivots() {
	d.Related = relatedOf(&d.Email, d.User)
}

// SetPivots fills the fields that repeat others: the top-level file (a copy of
// email.attachments[0].file) and related.user and related.hash as a message has them, with the
// hash of this file only. Call it once the document is otherwise complete.
func (d *AttachmentDoc) SetPivots() {
	f := *d.AttachedFile()
	if f.Hash != nil {
		h := *f.Hash
		f.Hash = &h
	}
	d.File = &f
	d.Related = relatedOf(&d.Email, d.User)
}

// relatedOf is the related field set of a document with email fields e of mailbox u: its
// addresses, lowercase as AddressGroup keeps them, each once in order of appearance, and the
// hashes of e's attachments.
func relatedOf(e *Email, u User) Related {
	var r Related
	seen := map[string]bool{}
	add := func(list *[]string, v string) {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" && !seen[v] {
			seen[v] = true
			*list = append(*list, v)
		}
	}
	add(&r.User, u.Email)
	for _, g := range []*Addresses{e.From, e.Sender, e.To, e.Cc, e.ReplyTo} {
		if g != nil {
			for _, a := range g.Address {
				add(&r.User, a)
			}
		}
	}
	for _, a := range e.Attachments {
		if a.File.Hash != nil {
			add(&r.Hash, a.File.Hash.SHA256)
		}
	}
	return r
}
