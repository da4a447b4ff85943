package mimecast

import (
	"encoding/json"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// FuzzDecodeSTIXPage: whatever a feed answers, no panic; every record returned is a JSON
// object of type indicator; records and others never exceed the objects given.
func FuzzDecodeSTIXPage(f *testing.F) {
	for _, s := range []string{
		`{"type":"bundle","id":"bundle--1","spec_version":"2.0","objects":[{"type":"indicator","id":"i"},{"type":"malware"}]}`,
		`{"type":"bundle","objects":[]}`, `{"type":"bundle","objects":null}`, `[{"type":"indicator"},{"id":"x"}]`,
		`{"meta":{"pagination":{"next":"t"}},"data":[{"type":"bundle","objects":[{"type":"indicator"}]}]}`,
		`{"data":[{"type":"indicator"},{"type":"relationship"}]}`, `{"objects":[1,2]}`, `[7]`, `"x"`, ``, `{}`,
		`{"objects":{"type":"indicator"}}`, `{"next":"tok","objects":[{"type":"indicator","id":"a"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		page, others, err := decodeSTIXPage("POST /x", body)
		if err != nil {
			return
		}
		if others < 0 || page.Total != -1 {
			t.Fatalf("others %d total %d", others, page.Total)
		}
		for _, r := range page.Records {
			var o struct{ Type string }
			if json.Unmarshal(r, &o) != nil || o.Type != "indicator" {
				t.Fatalf("record %s is not an indicator object", r)
			}
		}
	})
}

// FuzzDecodeWrappedOrFlat: no panic; a wrapped page's records come from its wrapper, a
// flat page's are the data items themselves.
func FuzzDecodeWrappedOrFlat(f *testing.F) {
	for _, s := range []string{
		`{"meta":{"status":200,"pagination":{"next":"n","totalCount":3}},"data":[{"logs":[{"createTime":"x"}]}],"fail":[]}`,
		`{"data":[{"createTime":"a"},{"createTime":"b"}]}`, `{"data":[{}]}`, `{"data":[]}`, `{"data":[{"logs":null}]}`,
		`{"data":[{"logs":{}}]}`, `{"data":[{"logs":[]},{"logs":[]}]}`, `{"data":[1,"x",null]}`,
		`{"data":[{"heldReleaseLogs":[{"id":"a"}],"resultCount":"2"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var env api.Response
		if json.Unmarshal(body, &env) != nil {
			return
		}
		page, err := decodeWrappedOrFlat("POST /x", []string{"logs", "heldReleaseLogs"}, &env)
		if err != nil {
			return
		}
		if len(page.Records) > 0 && len(env.Data) > 1 && len(page.Records) != len(env.Data) {
			t.Fatalf("%d data items gave %d records", len(env.Data), len(page.Records))
		}
	})
}
