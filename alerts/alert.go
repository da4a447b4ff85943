package alerts

import "time"

// Source names one source; the names are those of the alerts.sources setting, part of the
// configuration, of the state file's cursors and of every document (mimecast.source): do not
// rename them. Each is declared with its spec in its source_<name>.go; the table
// (source.go) lists them all.
type Source string

// Priority orders alerts for triage. The zero value is "unset"; Low < Medium < High.
type Priority int

// The priorities, stored as mimecast.priority.
const (
	PriorityUnset Priority = iota
	Low
	Medium
	High
)

func (p Priority) String() string {
	switch p {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return ""
}

// Alert is one security event, normalised from whatever shape its source sent. Every field
// but Source, Time and Raw may be empty: sources differ in what they carry.
type Alert struct {
	Source Source
	// ID is the deterministic document id (see the package invariants).
	ID string
	// Time is when the event happened (the record's date, eventTime or timestamp), UTC.
	Time time.Time
	// Verdict is the source's own verdict in lower case: for attachments safe, malicious,
	// unsafe, unknown, timeout, error; for URLs clean, malicious, suspicious; for
	// impersonation malicious or "" (taggedMalicious); for threats the analysis (malware,
	// phishing, spam, suspicious, unwanted); for DLP the action; for SIEM the type's verdict
	// if it has one.
	Verdict string
	// Type is the kind of threat or event (threats: the analysis; SIEM: the event type;
	// otherwise the source's category, such as the URL category or impersonation identifiers).
	Type string
	// Status is what happened to the message: delivered, blocked, rejected, held, bounced or
	// unknown (threats give it; others are mapped from their action where the mapping is clear).
	Status string
	// Route is the mail's direction: inbound, outbound, internal or external.
	Route string
	// Action is the action Mimecast took, as sent.
	Action     string
	Sender     string
	Recipients []string
	Subject    string
	// MessageID is the RFC 5322 Message-ID, with angle brackets, as sent.
	MessageID string
	Files     []File
	URL       string
	// SourceIP is the sending IP, only when the record's value parses as an IP address (URL
	// logs may say "Internal IP").
	SourceIP string
	// Rule is the policy or definition that fired (definition, ttpDefinition, policy).
	Rule    string
	Details string
	// Raw is the record exactly as the source sent it, decoded into generic JSON values.
	Raw map[string]any

	// Set by the pipeline after normalisation.
	Priority     Priority
	PriorityRule string // the rule of alerts.priority that set Priority
	GroupKey     string // attachment SHA-256 or normalised URL; "" when the alert has no group
}

// File is one attachment an alert is about.
type File struct {
	Name      string
	MimeType  string
	Extension string
	SHA256    string // lower-case hex
	MD5       string
	SHA1      string
	Size      int64
}
