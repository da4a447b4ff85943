package alerts

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzNormalize feeds arbitrary records to every source (Normalize for alert sources, Decode
// for event sources): neither may panic, and a record accepted must have an id, a time, and a
// document that encodes.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		attachmentDocx, attachmentPptx,
		`{"date":"2024-03-01T11:00:00+0000","userEmailAddress":["a"],"url":"http://[::1]:80/#","sendingIp":"Internal IP"}`,
		`{"eventTime":"2023-04-17T00:00:00.000+05:30[Asia/Kolkata]","recipientAddress":{"emailAddress":1}}`,
		`{"timestamp":"1731499059314","recipients":[[["x"]]],"files":[{"size":"1e400"}]}`,
		`{"timestamp":1e300}`, `[]`, `null`, `{"date":{}}`,
		`{"id":"eNq1","auditType":"User Logged On","user":"a@b","eventTime":"2021-10-11T15:39:17 GMT","eventInfo":"IP: ::1","category":"authentication_logs"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, src := range Sources {
			if sp, _ := Spec(src); sp.Records == RecordEvents {
				ev, err := Decode(src, json.RawMessage(raw))
				if err != nil {
					continue
				}
				if len(ev.ID) != 64 || strings.Trim(ev.ID, "0123456789abcdef") != "" || ev.Time.IsZero() {
					t.Errorf("%s: accepted with id %q, time %v: %s", src, ev.ID, ev.Time, raw)
				}
				if _, err := json.Marshal(eventDocument(&ev, sp.Dataset, "default", ev.Time)); err != nil {
					t.Errorf("%s: document does not encode: %v", src, err)
				}
				continue
			}
			a, err := Normalize(src, json.RawMessage(raw))
			if err != nil {
				continue
			}
			if len(a.ID) != 64 || strings.Trim(a.ID, "0123456789abcdef") != "" {
				t.Errorf("%s: id %q", src, a.ID)
			}
			if a.Time.IsZero() {
				t.Errorf("%s: accepted a record without a time: %s", src, raw)
			}
			if _, err := json.Marshal(AlertDocument(&a, Enrichment{})); err != nil {
				t.Errorf("%s: document does not encode: %v", src, err)
			}
			var g Group
			g.Add(&a)
		}
	})
}
