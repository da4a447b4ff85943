package alerts

import (
	"context"
	"encoding/json"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// The poller's dependencies, declared here where they are used. *mimecast.Client implements
// the sources and Directory, *index.Writer the Sink, *index.Cluster the Archive and
// *state.Store the CursorStore.

// LogSource reads the legacy security logs (attachment, URL, impersonation protection and
// DLP), one page per call. A 403 is an error for which mimecast.IsForbidden is true.
type LogSource interface {
	SecurityLogs(ctx context.Context, kind mimecast.LogKind, q mimecast.LogQuery) (mimecast.Page, error)
}

// ThreatSource reads the API 2.0 threat feed, one page per call, and the details of one
// event (senders, recipients, files, URLs) as a raw JSON object.
type ThreatSource interface {
	ThreatEvents(ctx context.Context, q mimecast.ThreatQuery) (mimecast.Page, error)
	ThreatDetails(ctx context.Context, id string) (json.RawMessage, error)
}

// SIEMSource reads SIEM events: batch files per event type, and the near-real-time stream.
type SIEMSource interface {
	// SIEMBatch returns one page of batch files of one type; its Next is the durable cursor.
	SIEMBatch(ctx context.Context, q mimecast.SIEMBatchQuery) (mimecast.SIEMBatchPage, error)
	// SIEMFileEvents streams one file's records to fn, one at a time. A malformed or expired
	// file is an error wrapping mimecast.ErrMalformedFile or ErrExpiredFile, after the good
	// records before the fault were delivered.
	SIEMFileEvents(ctx context.Context, f mimecast.SIEMFile, fn func(rec json.RawMessage) error) error
	// SIEMEvents returns one page of the stream; later pages may repeat records.
	SIEMEvents(ctx context.Context, q mimecast.SIEMStreamQuery) (mimecast.Page, error)
}

// Sink takes documents for indexing. done is called exactly once per document accepted,
// from another goroutine, and must not block; Add returns an error (and done is not called)
// when ctx ends or the sink is closed.
type Sink interface {
	Add(ctx context.Context, d index.Doc, done func(index.Result)) error
}

// Flusher is a Sink that can send what it has queued at once. A pass that waits for its
// last acknowledgements asks for it, so that the wait is one bulk round trip rather than up
// to the writer's flush interval: with a pass per SIEM event type those intervals added up
// to most of a pass's time. Optional; the wait is correct without it.
type Flusher interface {
	// Flush returns when what was queued before the call has been answered, or ctx ended.
	Flush(ctx context.Context) error
}

// CursorStore keeps each source's cursor, an opaque string, by name. SetCursors writes
// durably before it returns.
type CursorStore interface {
	Cursor(name string) (value string, ok bool, err error)
	SetCursors(updates map[string]string) error
}

// Archive finds archived messages in the messages index: documents of kind k whose keyword
// field equals one of values, with the named source fields. One call per page of alerts.
type Archive interface {
	FindByTerms(ctx context.Context, k index.Kind, field string, values []string, fields []string, perValue int) ([]index.Hit, error)
}

// Directory is the internal user directory, for the recipients of alerts.
type Directory interface {
	InternalDomains(ctx context.Context) ([]api.Domain, error)
	// InternalUsers returns the mailboxes of one domain.
	InternalUsers(ctx context.Context, domain string, pageSize int) ([]api.User, error)
}

// Decider applies the selections, filters and priority mapping to one alert. Implemented
// by *Rules; safe for concurrent use.
type Decider interface {
	Decide(a *Alert) Decision
}

var (
	_ LogSource    = (*mimecast.Client)(nil)
	_ ThreatSource = (*mimecast.Client)(nil)
	_ SIEMSource   = (*mimecast.Client)(nil)
	_ Directory    = (*mimecast.Client)(nil)
	_ Sink         = (*index.Writer)(nil)
	_ Flusher      = (*index.Writer)(nil)
	_ Archive      = (*index.Cluster)(nil)
	_ CursorStore  = (*state.Store)(nil)
	_ Decider      = (*Rules)(nil)
)
