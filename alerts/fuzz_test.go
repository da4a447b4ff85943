package alerts

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzNormalize feeds arbitrary records to every source: Normalize must not panic, and a
// record it accepts must have an id, a time, and a document that encodes.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		attachmentDocx, attachmentPptx,
		`{"date":"2024-03-01T11:00:00+0000","userEmailAddress":["a"],"url":"http://[::1]:80/#","sendingIp":"Internal IP"}`,
		`{"eventTime":"2023-04-17T00:00:00.000+05:30[Asia/Kolkata]","recipientAddress":{"emailAddress":1}}`,
		`{"timestamp":"1731499059314","recipients":[[["x"]]],"files":[{"size":"1e400"}]}`,
		`{"timestamp":1e300}`, `[]`, `null`, `{"date":{}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, src := range Sources {
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
