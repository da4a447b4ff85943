package mimecast

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Seeds for the record fuzzers: the shapes the public sources disagree about, and records
// a server should never send. Kept small; the fuzzer mutates from there.
var recordSeeds = []string{
	`{"id":"eNo1","received":"2015-11-16T14:49:18+0000","to":{"emailAddress":"d@e.f","displayableName":"D"}}`,
	`{"id":"eNo1","received":"2015-11-16T14:49:18Z","to":[{"emailAddress":"d@e.f"}],"size":"12","read":"true"}`,
	`{"id":"eNo1","received":"2015-11-16T14:49:18.000+00:00","from":"A <a@b.c>","to":null,"attachmentCount":null,"x":{"y":[]}}`,
	`{"id":{"secureId":"x"},"received":1447685358000}`,
	`{"ID":"eNo1","RECEIVED":"2015-11-16T20:19:18+05:30[Asia/Kolkata]"}`,
	`"just a string"`, `[]`, `null`, `12`, `{}`,
	`{"to":{"emailAddress":"d@e.f"},"cc":"x@y.z, \"Q, R\" <q@r.s>","headers":[{"name":"A","values":"v"},"junk"],` +
		`"attachments":[{"id":"a","size":"10","bodyType":"5"},{"filename":"no id"}],"hasHtmlBody":"true"}`,
	`{"users":[{"emaiLAddress":"a@b.c","alias":"false"},{"name":null},7],"usercount":"1"}`,
	`{"users":{"emailAddress":"a@b.c"},"userCount":[1]}`,
	`{"id":"d1","domain":"x.com","local":"true","sendOnly":0,"inboundType":null}`,
}

// FuzzDecodeRecords feeds one record to every record decoder. Whatever the bytes: no panic,
// a summary honours the bad-record contract, the decoders fail only on non-objects, and a
// decoded summary survives a marshal/unmarshal round trip unchanged.
func FuzzDecodeRecords(f *testing.F) {
	for _, s := range recordSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, record []byte) {
		if !json.Valid(record) {
			return // the envelope decoder rejects the page before any record is read
		}
		env := &api.Response{Data: []json.RawMessage{record}}
		msgs, err := decodeMessages("POST /api/x", env, nil)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("decodeMessages = %d records, %v; want the one record and no error", len(msgs), err)
		}
		m := msgs[0]
		_, terr := api.ParseTime(m.Received)
		if usable := m.ID != "" && terr == nil; usable == (m.Problem != nil) {
			t.Fatalf("record %q received %q: usable %v but Problem %v", m.ID, m.Received, usable, m.Problem)
		}
		if m.Problem != nil && !strings.HasPrefix(m.Problem.Error(), "data[0]") {
			t.Fatalf("problem %q does not name the record", m.Problem)
		}
		object := api.KindOf(record) == api.KindObject
		var s api.MessageSummary
		if _, err := api.Decode(record, &s); (err == nil) != object {
			t.Fatalf("Decode summary error %v for a %s", err, api.KindOf(record))
		}
		if object {
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var back api.MessageSummary
			if _, err := api.Decode(b, &back); err != nil || !reflect.DeepEqual(back, s) {
				t.Fatalf("round trip %+v -> %s -> %+v (%v)", s, b, back, err)
			}
		}
		if _, err := decodeDetail("POST /api/x", env, nil); err != nil && !strings.Contains(err.Error(), "POST /api/x") {
			t.Fatalf("detail error %q does not name the op", err)
		}
		if _, _, err := decodeUsers("POST /api/x", env, nil); (err == nil) != object {
			t.Fatalf("decodeUsers error %v for a %s", err, api.KindOf(record))
		}
		if ds, err := decodeDomains("POST /api/x", env, nil); err != nil || len(ds) > 1 {
			t.Fatalf("decodeDomains = %v, %v", ds, err)
		}
		var tok api.Token
		_, _ = api.Decode(record, &tok)
	})
}

// FuzzAddresses feeds one JSON value to the address decoders, which never fail.
func FuzzAddresses(f *testing.F) {
	for _, s := range []string{`{"emailAddress":"a@b.c","displayableName":"A"}`, `[{"emailAddress":"a@b.c"}]`,
		`"A <a@b.c>"`, `"a@b.c, \"B, C\" <b@c.d>"`, `"=?utf-8?q?J=C3=BCrgen?= <j@x.y>"`, `null`, `1`, `[null,"x"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		var a api.Address
		var l api.Addresses
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("Address: %v", err)
		}
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("Addresses: %v", err)
		}
	})
}
