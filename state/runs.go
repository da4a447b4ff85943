package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// KeptRuns is how many run records AddRun and AddPass keep; older ones are dropped.
const KeptRuns = 50

// runVersion is the version of the JSON encoding of a RunRecord and of a PassRecord, in their
// field "v". A record without the field was written before it was versioned, by a release
// whose encoding is version 1's: it is read as version 1. A record of a newer version is
// refused (ErrNewerSchema) rather than misread.
const runVersion = 1

// RunRecord is what a crawl did: the run summary the crawl prints and logs at its end
// (job.Summary is this type), as the crawl's state file keeps it in its run history and as
// `status` shows it (Report.Runs). Its JSON is the logged summary's, plus the version "v".
type RunRecord struct {
	// V is the encoding's version; zero in a record returned by Runs (checked and cleared)
	// and in a summary that was not read from the state file, whose JSON then omits it.
	V        int       `json:"v,omitempty"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Seconds  float64   `json:"seconds"`
	Full     bool      `json:"full"`
	// Shard is "i/n" for one shard of a sharded crawl.
	Shard string `json:"shard,omitempty"`

	DomainsTotal        int            `json:"domains_total"`
	DomainsKept         int            `json:"domains_kept"`
	MailboxesEnumerated int            `json:"mailboxes_enumerated"`
	MailboxesKept       int            `json:"mailboxes_kept"`
	Excluded            map[string]int `json:"excluded,omitempty"`

	// ViewsTotal is every kept mailbox view; those not complete, failed or interrupted were
	// not started (the run was stopped first).
	ViewsTotal       int      `json:"views_total,omitempty"`
	ViewsComplete    int      `json:"views_complete"`
	ViewsFailed      int      `json:"views_failed"`
	ViewsInterrupted int      `json:"views_interrupted"`
	FailedViews      []string `json:"failed_views,omitempty"`

	Totals
	MailboxesRemoved int `json:"mailboxes_removed"`
	// RemovalIncomplete: a removal was attempted and did not finish; the mailboxes it did not
	// finish keep their state and the next run tries again.
	RemovalIncomplete bool     `json:"removal_incomplete,omitempty"`
	RemovalRefused    []string `json:"removal_refused,omitempty"`

	APICalls       int64         `json:"api_calls"` // every HTTP exchange with Mimecast
	APIRateLimited int64         `json:"api_rate_limited"`
	APIErrors      map[int]int64 `json:"api_errors_by_status,omitempty"`
	// What the quota counts: calls of API endpoints, not downloads nor token requests; per
	// quota group with their 429s and the time calls waited for the quota. A crawl and an
	// alerts poller on one API application share the account group's quota.
	APIQuotaCalls       int64                 `json:"api_quota_calls"`
	APIDownloads        int64                 `json:"api_download_requests"`
	APITokenRequests    int64                 `json:"api_token_requests"`
	APIQuotaWaitSeconds float64               `json:"api_quota_wait_seconds"`
	APIQuotaGroups      map[string]QuotaGroup `json:"api_quota_groups,omitempty"`
	// The bound on archive requests in flight (performance.concurrency): adaptive or fixed,
	// where it started, where it ended, its time-weighted mean and highest value, and the
	// most requests that were in flight at once.
	APIConcurrency         string  `json:"api_concurrency,omitempty"`
	APIConcurrencyInitial  int     `json:"api_concurrency_initial,omitempty"`
	APIConcurrencyLimit    int     `json:"api_concurrency_limit"`
	APIConcurrencyLimitAvg float64 `json:"api_concurrency_limit_avg"`
	APIConcurrencyLimitMax int     `json:"api_concurrency_limit_max,omitempty"`
	APIInflightMax         int     `json:"api_inflight_max"`
	BulkRequests           int64   `json:"bulk_requests"`
	BytesIndexed           int64   `json:"bytes_indexed"`
	PeakRSSBytes           int64   `json:"peak_rss_bytes,omitempty"`

	FailedDocuments []string `json:"failed_documents,omitempty"`
	Error           string   `json:"error,omitempty"`
	// Fatal: the run could not start, or ended early for a reason that applies to every
	// mailbox (Elasticsearch unreachable, a permission Mimecast refuses).
	Fatal bool `json:"fatal,omitempty"`
	// Interrupted: the run was stopped by a signal before every view was done.
	Interrupted bool `json:"interrupted,omitempty"`
	ExitCode    int  `json:"exit_code"`
}

// Totals are the documents and bytes of a crawl (crawler.Totals is this type), counted as it
// runs; their JSON is flattened into the run summary's.
type Totals struct {
	Messages         int64 `json:"messages_indexed"`
	Skipped          int64 `json:"messages_already_indexed"`
	ExcludedSubjects int64 `json:"messages_excluded_by_subject"`
	Attachments      int64 `json:"attachments_indexed"`
	Oversize         int64 `json:"attachments_oversize"`
	ExcludedNames    int64 `json:"attachments_excluded_by_name"`
	Bytes            int64 `json:"bytes_downloaded"`
	DocsFailed       int64 `json:"documents_failed"`
	FetchFailed      int64 `json:"messages_fetch_failed"`
	MalformedBodies  int64 `json:"malformed_bodies"`
	Deleted          int64 `json:"documents_deleted"`
	// FromMessage counts attachments whose bytes were taken from the downloaded RFC 822
	// message; only an attachment the detail lists and the message lacks is downloaded on its
	// own.
	FromMessage int64 `json:"attachments_from_message"`
	// NotIndexed counts documents that did not reach Elasticsearch (unreachable, or the run
	// stopped first); the next run sends them again. DocsFailed counts those it refused.
	NotIndexed int64 `json:"documents_not_indexed"`
	// InvalidListed counts listed messages that lack what the crawler needs (an id, a readable
	// received time); each is recorded as a failure and retried by the next run.
	InvalidListed int64 `json:"messages_invalid"`
	// TextFailed counts attachments whose text could not be extracted (broken, encrypted,
	// over a limit, too slow); each is indexed with its metadata and the reason.
	TextFailed int64 `json:"attachments_text_failed"`
	// Listed counts the messages the list calls returned, ViewsListed the views whose listing
	// reached its end: with them a progress display estimates the work left (what is listed
	// and not yet handled, and what the views not yet listed are likely to hold).
	Listed      int64 `json:"messages_listed"`
	ViewsListed int64 `json:"views_listed"`
	// TextMisses breaks TextFailed down by format and reason.
	TextMisses []TextMiss `json:"attachments_text_failed_by_reason,omitempty"`
}

// TextMiss counts the attachments of a run indexed without text for one reason in one format:
// a file that is broken, encrypted, over a limit, too slow, without a text layer, or in fonts
// without a Unicode map. Each such document carries the reason in mimecast.attachment_error.
type TextMiss struct {
	Format string `json:"format"`
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// QuotaGroup is one API quota group's share of a run or pass.
type QuotaGroup struct {
	Calls       int64   `json:"calls"`
	RateLimited int64   `json:"rate_limited"`
	WaitSeconds float64 `json:"quota_wait_seconds"`
}

// PassRecord is what one pass of the alerts poller did, as the poller's state file keeps it in
// its run history. Its fields and their JSON names are the pass summary the poller logs.
type PassRecord struct {
	// V is the encoding's version; zero in a record returned by Passes.
	V        int            `json:"v,omitempty"`
	Command  string         `json:"command"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Sources  []SourceRecord `json:"sources"`
	Seconds  float64        `json:"seconds"`
	APICalls int64          `json:"api_calls"`

	APIQuotaCalls  int64                 `json:"api_quota_calls"`
	APIQuotaGroups map[string]QuotaGroup `json:"api_quota_groups,omitempty"`
	ExitCode       int                   `json:"exit_code"`
	Error          string                `json:"error,omitempty"`
}

// SourceRecord is what one pass did with one alert source, named by the source's name.
type SourceRecord struct {
	Source string `json:"source"`
	SourceOutcome
}

// SourceOutcome is what one pass of the alerts poller did with one source, without the
// source's name: the poller's summary of a source (alerts.SourceSummary) and its record here
// share it, each naming the source with its own type. Its JSON is flattened into theirs.
type SourceOutcome struct {
	// Records read from the source, before deduplication and rules.
	Records int64 `json:"records"`
	// Indexed alerts new to Elasticsearch; Existing were already there (re-reads).
	Indexed  int64 `json:"indexed"`
	Existing int64 `json:"existing"`
	// Excluded alerts by reason: "type", "status", "route", "filter N", "low".
	Excluded map[string]int64 `json:"excluded,omitempty"`
	// FilterErrors counts CEL evaluation errors (each kept the alert).
	FilterErrors int64 `json:"filter_errors,omitempty"`
	// Malformed records failed alone; MalformedReasons counts them by reason
	// (alerts.ReasonTooLarge, alerts.ReasonNoTime, ...), each warned about once per pass with
	// its detail.
	Malformed        int64            `json:"malformed,omitempty"`
	MalformedReasons map[string]int64 `json:"malformed_reasons,omitempty"`
	// Repeats are records of a SIEM stream page that the previous page already had.
	Repeats int64 `json:"repeats,omitempty"`
	// FilesSkipped are SIEM batch files skipped for good: unreadable in as many passes as the
	// poller allows a file. FilesPending are those parked after the pass, read again on the
	// next (their pass fails).
	FilesSkipped int64 `json:"files_skipped,omitempty"`
	FilesPending int64 `json:"files_pending,omitempty"`
	// Groups counts group updates acknowledged.
	Groups int64 `json:"groups,omitempty"`
	// Rejected documents Elasticsearch refused for good (counted, passed).
	Rejected int64 `json:"rejected,omitempty"`
	// PagesLooped counts windows (SIEM: passes) ended because a page token came back or
	// the pages exceeded the most a window may have; RecordsUnread the records pages stated
	// but never listed. Either leaves the cursor before the window and fails the source's pass.
	PagesLooped   int64 `json:"pages_looped,omitempty"`
	RecordsUnread int64 `json:"records_unread,omitempty"`
	// Pending counts the alerts parked in the source's cursors after the pass: refused by
	// Elasticsearch, or threat events still without their details. They are tried again on
	// every pass; while any is parked the pass fails.
	Pending int64 `json:"alerts_pending,omitempty"`
	// Forbidden: the API answered 403, the application lacks Permission.
	Forbidden  bool   `json:"forbidden,omitempty"`
	Permission string `json:"permission,omitempty"`
	// Interrupted: the pass was stopped (its context ended) before the source was done.
	Interrupted bool `json:"interrupted,omitempty"`
	// Cursor says where the source's cursor stands after the pass.
	Cursor string `json:"cursor"`
	Error  string `json:"error,omitempty"`
}

// AddRun appends a crawl's record to the run history and drops all but the newest KeptRuns
// records, in one transaction.
func (s *Store) AddRun(r RunRecord) error {
	r.V = runVersion
	return s.addHistory("add run summary", r)
}

// AddPass appends an alerts pass's record to the run history, like AddRun.
func (s *Store) AddPass(r PassRecord) error {
	r.V = runVersion
	return s.addHistory("add pass summary", r)
}

func (s *Store) addHistory(what string, rec any) error {
	value, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("%s to state file %s: %w", what, s.path, err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		// Big-endian sequence numbers sort in insertion order.
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), value); err != nil {
			return err
		}
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for len(keys) > KeptRuns {
			if err := b.Delete(keys[0]); err != nil {
				return err
			}
			keys = keys[1:]
		}
		return nil
	})
	if err != nil {
		return s.writeError(what, err)
	}
	return nil
}

// Runs returns up to n records of the run history, newest first; n <= 0 returns all kept. A
// record of a newer encoding is refused with an error that wraps ErrNewerSchema.
func (s *Store) Runs(n int) ([]RunRecord, error) {
	return historyRecords(s, n, func(r *RunRecord) *int { return &r.V })
}

// Passes returns up to n records of an alerts poller's run history, newest first, like Runs.
func (s *Store) Passes(n int) ([]PassRecord, error) {
	return historyRecords(s, n, func(r *PassRecord) *int { return &r.V })
}

// historyRecords decodes up to n run history records as T, newest first, with the version
// field version points at (checked by decodeHistory) cleared; n <= 0 returns all kept.
func historyRecords[T any](s *Store, n int, version func(*T) *int) ([]T, error) {
	var out []T
	err := s.history(n, func(k, v []byte) error {
		var r T
		if err := decodeHistory(k, v, &r); err != nil {
			return err
		}
		*version(&r) = 0
		out = append(out, r)
		return nil
	})
	return out, err
}

func (s *Store) history(n int, each func(k, v []byte) error) error {
	var newer error
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		count := 0
		for k, v := c.Last(); k != nil && (n <= 0 || count < n); k, v = c.Prev() {
			count++
			if err := each(k, v); err != nil {
				if errors.As(err, new(*newerRecordError)) {
					newer = err
					return errStop
				}
				return err
			}
		}
		return nil
	})
	if newer != nil {
		return fmt.Errorf("state file %s: %w", s.path, newer)
	}
	if err != nil {
		return s.readError(err)
	}
	return nil
}

// newerRecordError is a run history record of a newer encoding than this package reads.
type newerRecordError struct {
	key []byte
	v   int
}

func (e *newerRecordError) Error() string {
	return fmt.Sprintf("run history record %x has version %d, this mimecrawl reads up to %d: use a newer mimecrawl", e.key, e.v, runVersion)
}

func (e *newerRecordError) Unwrap() error { return ErrNewerSchema }

// decodeHistory decodes the run history record k, v into rec. Fields it does not know are
// ignored: the history is a record of what happened, and a field a release dropped must not
// make the records of earlier releases unreadable. A record of a newer version is a
// *newerRecordError, checked before the rest is decoded; anything else that does not decode
// is a *decodeError.
func decodeHistory(k, v []byte, rec any) error {
	if len(k) != 8 {
		return &decodeError{bucket: bucketRuns, key: k, err: errors.New("not a run history key")}
	}
	var head struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(v, &head); err != nil {
		return &decodeError{bucket: bucketRuns, key: k, err: fmt.Errorf("not a run record: %w", err)}
	}
	switch {
	case head.V > runVersion:
		return &newerRecordError{key: bytes.Clone(k), v: head.V}
	case head.V < 0:
		return &decodeError{bucket: bucketRuns, key: k, err: fmt.Errorf("run record version %d", head.V)}
	}
	if err := json.Unmarshal(v, rec); err != nil {
		return &decodeError{bucket: bucketRuns, key: k, err: fmt.Errorf("not a run record: %w", err)}
	}
	return nil
}

// checkHistory is Check's test of one run history record: it decodes as the record of a pass
// of the alerts poller (command "alerts") or of a crawl. A record of a newer version is not
// damage; Runs and Passes refuse it.
func checkHistory(k, v []byte) error {
	var head struct {
		Command string `json:"command"`
	}
	_ = json.Unmarshal(v, &head)
	var err error
	if head.Command == "alerts" {
		var r PassRecord
		err = decodeHistory(k, v, &r)
	} else {
		var r RunRecord
		err = decodeHistory(k, v, &r)
	}
	var de *decodeError
	if errors.As(err, &de) {
		return de.err
	}
	return nil
}
