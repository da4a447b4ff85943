package alerts

import "time"

// Event is one log record as a document of its source's data stream. Temporary copy of
// the type agreed with the source table's author (alerts/event.go on that branch), kept
// only until that branch is merged; it is deleted then.
type Event struct {
	ID   string         // deterministic: the record's own id, else a hash of identifying fields
	Time time.Time      // the record's time: the cursor and @timestamp
	Body map[string]any // the ECS document; the poller adds data_stream.*, event.dataset, event.ingested
}
