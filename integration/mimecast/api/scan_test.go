package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// refLookup is how fields found a member before scan.go: json.Unmarshal into a map, then the
// exact key or the smallest case-insensitive one.
func refLookup(raw []byte, name string) ([]byte, bool, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false, false
	}
	v, ok := obj[name]
	if !ok {
		best := ""
		for k, x := range obj {
			if strings.EqualFold(k, name) && (!ok || k < best) {
				best, v, ok = k, x, true
			}
		}
	}
	return v, ok, true
}

// checkScan compares the scanners with encoding/json on one valid JSON value.
func checkScan(t *testing.T, raw []byte) {
	t.Helper()
	if !json.Valid(raw) {
		return
	}
	if KindOf(raw) == KindObject {
		ms, ok := objectMembers(raw, nil)
		if !ok {
			t.Fatalf("objectMembers failed on %q", raw)
		}
		names := []string{"id", "ID", "to", "emailAddress", "x", ""}
		for _, m := range ms {
			names = append(names, string(m.key), strings.ToUpper(string(m.key)), strings.ToLower(string(m.key)))
		}
		for _, name := range names {
			want, wantOK, _ := refLookup(raw, name)
			got, gotOK := lookup(ms, name)
			if gotOK != wantOK || !bytes.Equal(got, want) {
				t.Fatalf("%q: lookup %q = %q, %v; encoding/json %q, %v", raw, name, got, gotOK, want, wantOK)
			}
		}
	}
	if KindOf(raw) == KindArray {
		var want []json.RawMessage
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("unmarshal %q: %v", raw, err)
		}
		got, ok := arrayItems(raw, nil)
		if !ok || len(got) != len(want) {
			t.Fatalf("%q: arrayItems = %d items, %v; want %d", raw, len(got), ok, len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: item %d = %q, want %q", raw, i, got[i], want[i])
			}
			checkScan(t, got[i])
		}
	}
	if KindOf(raw) == KindString {
		var want string
		_ = json.Unmarshal(raw, &want)
		if got, ok := unquote(raw); !ok || got != want {
			t.Fatalf("unquote %q = %q, %v; want %q", raw, got, ok, want)
		}
	}
}

var scanSeeds = []string{
	`{"id":"a","ID":"b","Id":"c","iD":"d"}`,
	`{"Id":"c","iD":"d"}`,
	`{"id":1,"id":2}`,
	`{"ID":1,"Id":2,"ID":3}`,
	` { "to" : { "emailAddress" : "a\"b" , "x" : [ 1 , "]}" , {"y":"\\"} ] } } `,
	`{"\u0069d":"escaped key","i\\d":"backslash"}`,
	`{"\u212Aey":"kelvin","key":"k"}`,
	`{"x":"\ud83d\ude00 \u00e9 caf\u00e9 \n\t","y":"\ufffd","z":"\u0000"}`,
	`{"a":[],"b":{},"c":null,"d":true,"e":-1.5e3,"f":"","g":[[[]]]}`,
	`[1,"two",{"three":3},[4],null,true, false ,-0.5]`,
	`["\"", "\\", "\\\"", "}]"]`,
	`"plain"`, `"esc\"aped"`, `"\u00e9"`, `"tab\there"`,
	"{\"bad utf8\":\"\xff\xfe\",\"\xff\":1}",
}

func TestScanMatchesEncodingJSON(t *testing.T) {
	for _, s := range append(scanSeeds, recordSamples()...) {
		checkScan(t, []byte(s))
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkScan(t, raw)
		// Invalid JSON must not panic the scanners either.
		_, _ = objectMembers(raw, nil)
		_, _ = arrayItems(raw, nil)
		_, _ = unquote(raw)
	})
}

// recordSamples are whole records of the shapes the decoders meet.
func recordSamples() []string {
	return []string{
		`{"id":"eNo1","received":"2015-11-16T14:49:18+0000","to":[{"emailAddress":"d@e.f","displayableName":"D"}],"headers":[{"name":"A","values":["v","w"]}]}`,
		`{"meta":{"status":200,"pagination":{"pageSize":25,"next":"tok"}},"data":[{"id":"x"}],"fail":[]}`,
	}
}
