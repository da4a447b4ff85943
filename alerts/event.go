package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mimecrawl/mimecrawl/index"
)

// Event sources (SourceSpec.Records == RecordEvents) are read and written by the same
// machinery as alert sources: cursors, overlap, the paging rule, the tracker, parking of
// refused documents, the data stream id lookup across rollover, summaries, status, metrics
// and health. What they skip is what makes an alert: Rules (selections, filters, priority),
// groups and enrichment. Each writes its own data stream, logs-{dataset}-{namespace}.

// Event is one log record as a document of its source's data stream.
type Event struct {
	// ID is deterministic: the record's own id, else a hash of the record's identifying
	// fields (hashID), so that overlapping windows and replays write it once.
	ID string
	// Time is the record's time: the cursor and @timestamp.
	Time time.Time
	// Body is the ECS document; the poller adds data_stream.*, event.dataset, event.created
	// (when the body has none) and event.ingested.
	Body map[string]any
}

// An event source's decoder is func(raw json.RawMessage) (Event, error) (SourceSpec.decode).
// Its errors are *RecordError with a Reason* constant (decode.go): they fail the one record,
// counted and warned about by reason, never the source.

// Decode decodes one record of the event source src, exactly as the source sent it, into an
// Event (its ID, Time and ECS Body without the fields the poller adds). An error means the
// record is malformed (a *RecordError naming the field) and concerns this record only.
func Decode(src Source, raw json.RawMessage) (Event, error) {
	sp, ok := Spec(src)
	switch {
	case !ok:
		return Event{}, fmt.Errorf("decode record: unknown source %q", src)
	case sp.decode == nil:
		return Event{}, fmt.Errorf("decode record: %q is an alert source, not an event source", src)
	}
	ev, err := sp.decode(raw)
	if err != nil {
		return Event{}, fmt.Errorf("decode %s record: %w", src, err)
	}
	return ev, nil
}

// submitEvents decodes one page of an event source's records and hands them to the sink,
// every document counted in u. It is submit for events: the same size bound, repeat
// detection (o.prev), parking (o.park, o.retry) and data stream lookup, without rules,
// groups or enrichment.
func (s *stream) submitEvents(ctx context.Context, u *unit, recs []json.RawMessage, o submitOptions) (map[string]bool, error) {
	ids := o.pageIDs(len(recs))
	decode := func(raw json.RawMessage) (Event, string, error) {
		ev, err := s.spec.decode(raw)
		if err == nil {
			switch {
			case ev.ID == "":
				err = recordError(ReasonNoID, "the record gives no id")
			case ev.Time.IsZero():
				err = recordError(ReasonNoTime, "the record gives no time")
			}
		}
		return ev, ev.ID, err
	}
	kept := pageRecords(s, u, recs, o, ids, decode, nil)
	if len(kept.recs) == 0 {
		return ids, nil
	}
	op := s.writeOp(o)
	write, err := written(ctx, s, u, kept, o.retry != nil)
	if err != nil {
		return ids, err
	}
	read := s.p.o.Now().UTC()
	for i := range write.recs {
		ev, raw := &write.recs[i], write.raws[i]
		id, attempts := ev.ID, o.retry[ev.ID]
		doc := index.Doc{Kind: s.spec.Kind, ID: id, Op: op, Body: eventDocument(ev, s.spec.Dataset, s.namespace, read)}
		onResult := func(r index.Result) { s.alertResult(u, id, raw, attempts, r) }
		if err := s.add(ctx, u, ev.Time, doc, onResult); err != nil {
			return ids, err
		}
		write.recs[i] = Event{} // the sink holds the body now; let the page's copy go
	}
	return ids, nil
}

// eventDocument completes an event's ECS document with what the poller knows: its data
// stream, event.dataset, event.id, @timestamp and ecs.version when the decoder left them out,
// event.created (when the body has none) and event.ingested, both the time it was read.
func eventDocument(ev *Event, dataset, namespace string, read time.Time) map[string]any {
	body := ev.Body
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["@timestamp"]; !ok {
		body["@timestamp"] = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	if _, ok := body["ecs"]; !ok {
		body["ecs"] = map[string]any{"version": ECSVersion}
	}
	event, ok := body["event"].(map[string]any)
	if !ok {
		event = map[string]any{}
		body["event"] = event
	}
	r := read.UTC().Format(time.RFC3339Nano)
	event["dataset"] = dataset
	event["ingested"] = r
	if _, ok := event["created"]; !ok {
		event["created"] = r
	}
	if _, ok := event["id"]; !ok {
		event["id"] = ev.ID
	}
	return withDataset(body, dataset, namespace)
}

// eventSpecCheck reports what is wrong with an event source's spec: the table test runs it
// over every spec, so that a new source cannot forget its decoder or its own data stream.
func eventSpecCheck(sp SourceSpec) error {
	switch {
	case sp.decode == nil:
		return fmt.Errorf("event source %s has no decoder", sp.Name)
	case sp.Kind == AlertsKind:
		return fmt.Errorf("event source %s writes the alerts' data stream; it needs its own", sp.Name)
	case sp.Dataset == "" || sp.Dataset == Dataset:
		return fmt.Errorf("event source %s needs a dataset of its own, mimecrawl.<name>", sp.Name)
	}
	return nil
}
