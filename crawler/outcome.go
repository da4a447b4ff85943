package crawler

import (
	"errors"
	"fmt"
)

// Outcome is how a pass over one mailbox view ended. The error that goes with it, if any, is in
// ViewResult.Err.
type Outcome int

const (
	// Complete: the window was listed and everything in it acknowledged; the delta token moved
	// to the end of the pass (and a full pass swept what it did not see).
	Complete Outcome = iota + 1
	// Blocked: the pass went through, but some messages failed; the checkpoint stays before the
	// first of them and the next run retries them.
	Blocked
	// Failed: the pass could not go through (listing, checkpoint or sweep failed).
	Failed
	// Interrupted: the run was stopped (signal, or a circuit breaker) before the pass finished;
	// what was acknowledged is committed.
	Interrupted
)

var outcomeNames = map[Outcome]string{Complete: "complete", Blocked: "blocked", Failed: "failed", Interrupted: "interrupted"}

func (o Outcome) String() string {
	if s, ok := outcomeNames[o]; ok {
		return s
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// MarshalText implements encoding.TextMarshaler, for run summaries.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Outcome) UnmarshalText(b []byte) error {
	for k, v := range outcomeNames {
		if v == string(b) {
			*o = k
			return nil
		}
	}
	return fmt.Errorf("unknown view outcome %q", b)
}

// ErrIndexUnreachable ends a run whose bulk requests to Elasticsearch fail as a whole (after the
// client's own retries): fetching more from Mimecast would only spend quota on documents that
// cannot be indexed.
var ErrIndexUnreachable = errors.New("Elasticsearch unreachable")

// ErrForbidden ends a run whose message fetches Mimecast refuses with 403 again and again: the
// API application lacks a permission that every message needs.
var ErrForbidden = errors.New("Mimecast refuses message fetches (403)")

// errPermanentDoc marks a document Elasticsearch rejected for good.
var errPermanentDoc = errors.New("rejected by Elasticsearch")
