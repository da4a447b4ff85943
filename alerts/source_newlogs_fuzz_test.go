package alerts

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzNewLogDecoders: whatever one record holds, each new event decoder either fails it
// with a *RecordError or returns an event with an id, a time and a body that marshals.
func FuzzNewLogDecoders(f *testing.F) {
	for _, s := range []string{
		`{"createTime":"2024-05-02T09:15:07+0000","emailAddr":"a@b.c","searchText":"x"}`,
		`{"viewed":"2024-05-02T09:15:07Z","viewer":"a@b.c","contentViewed":{"x":1},"to":["a","b"]}`,
		`{"id":"e","released":"2024-06-01T08:30:00+00:00","status":"released","to":[{"emailAddress":"x@y"}],"spamProcessingDetail":{"spamVerdict":"x"}}`,
		`{"type":"indicator","id":"i","modified":"2024-07-01T10:00:00Z","pattern":"[file:hashes.'SHA-256' = 'ab'] OR [url:value = 'h\\'x']","confidence":"x","labels":[1,null]}`,
		`{"type":"entities","timestamp":1717236000123,"attachments":[1,"a.b"],"policiesApplied":[null,{"name":7}],"senderHeader":"A <"}`,
		`[]`, `null`, `{}`, `"x"`, `{"timestamp":-1}`,
	} {
		f.Add([]byte(s))
	}
	decs := []func(json.RawMessage) (Event, error){decodeArchiveSearchLog, decodeArchiveSearches, decodeArchiveViewLog,
		decodeHeldRelease, decodeThreatIntelCustomer, decodeThreatIntelGrid, decodeSIEMCI}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, dec := range decs {
			ev, err := dec(raw)
			if err != nil {
				var re *RecordError
				if !errors.As(err, &re) {
					t.Fatalf("error %v is not a RecordError", err)
				}
				continue
			}
			if ev.ID == "" || ev.Time.IsZero() {
				t.Fatalf("event without id or time from %s", raw)
			}
			if _, err := json.Marshal(ev.Body); err != nil {
				t.Fatalf("body does not marshal: %v", err)
			}
		}
	})
}
