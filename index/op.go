package index

import "fmt"

// Op is how Writer.Add writes a document.
type Op int

const (
	// OpIndex writes the document, replacing any with the same id.
	OpIndex Op = iota
	// OpCreate writes the document only if its id is new; a document already there (409)
	// counts as success with Result.Existed set, never as a failure to retry. For records that
	// never change once written, such as alerts, re-reads then cost no rewrite.
	OpCreate
	// OpUpdate applies Doc.Body as an update request body: {"script": ..., "upsert": ...} (or
	// {"doc": ..., "doc_as_upsert": true}). Concurrent updates of one document are retried by
	// Elasticsearch up to updateConflictRetries times.
	OpUpdate
)

// updateConflictRetries is retry_on_conflict of every update: scripted updates of one group
// document from concurrent bulk requests conflict, and a re-run of the script is the fix.
var updateConflictRetries = 5

func (o Op) action() (string, error) {
	switch o {
	case OpIndex:
		return "index", nil
	case OpCreate:
		return "create", nil
	case OpUpdate:
		return "update", nil
	}
	return "", fmt.Errorf("unknown op %d", int(o))
}
