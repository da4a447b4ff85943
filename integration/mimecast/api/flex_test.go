package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestAddressShapes(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		want  Address
		shape Kind // "" = documented shape, nothing reported
	}{
		{name: "object", in: `{"emailAddress":"a@b.c","displayableName":"A B"}`, want: Address{"a@b.c", "A B"}},
		{name: "object other case", in: `{"EmailAddress":"a@b.c","DISPLAYABLENAME":"A"}`, want: Address{"a@b.c", "A"}},
		{name: "object extra fields", in: `{"emailAddress":"a@b.c","type":"internal","x":{"y":[1]}}`, want: Address{EmailAddress: "a@b.c"}},
		{name: "object name null", in: `{"emailAddress":"a@b.c","displayableName":null}`, want: Address{EmailAddress: "a@b.c"}},
		{name: "array of one", in: `[{"emailAddress":"a@b.c","displayableName":"A"}]`, want: Address{"a@b.c", "A"}, shape: KindArray},
		{name: "array first with address", in: `[{"displayableName":"nobody"},{"emailAddress":"x@y.z"}]`, want: Address{EmailAddress: "x@y.z"}, shape: KindArray},
		{name: "empty array", in: `[]`, want: Address{}, shape: KindArray},
		{name: "bare string", in: `"a@b.c"`, want: Address{EmailAddress: "a@b.c"}, shape: KindString},
		{name: "named string", in: `"Alice Example <alice@example.com>"`, want: Address{"alice@example.com", "Alice Example"}, shape: KindString},
		{name: "quoted named string", in: `"\"Example, Alice\" <alice@example.com>"`, want: Address{"alice@example.com", "Example, Alice"}, shape: KindString},
		{name: "encoded name", in: `"=?utf-8?q?J=C3=BCrgen?= <j@example.com>"`, want: Address{"j@example.com", "Jürgen"}, shape: KindString},
		{name: "not rfc 5322", in: `"Jürgen Ö. <j@example.com>"`, want: Address{"j@example.com", "Jürgen Ö."}, shape: KindString},
		{name: "junk string", in: `"undisclosed recipients"`, want: Address{EmailAddress: "undisclosed recipients"}, shape: KindString},
		{name: "empty string", in: `""`, want: Address{}, shape: KindString},
		{name: "null", in: `null`, want: Address{}},
		{name: "number", in: `42`, want: Address{}, shape: KindNumber},
		{name: "bool", in: `true`, want: Address{}, shape: KindBool},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s shapes
			var got Address
			got.flex([]byte(tc.in), "to", &s)
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			checkShape(t, s, "to", tc.shape)
			// json.Unmarshal agrees and never fails.
			var viaJSON Address
			if err := json.Unmarshal([]byte(tc.in), &viaJSON); err != nil || viaJSON != tc.want {
				t.Errorf("json.Unmarshal = %+v, %v", viaJSON, err)
			}
		})
	}
}

func TestAddressesShapes(t *testing.T) {
	a, b := Address{"a@b.c", "A"}, Address{EmailAddress: "d@e.f"}
	cases := []struct {
		name  string
		in    string
		want  []Address
		shape Kind
	}{
		{name: "array", in: `[{"emailAddress":"a@b.c","displayableName":"A"},{"emailAddress":"d@e.f"}]`, want: []Address{a, b}},
		{name: "array with null", in: `[null,{"emailAddress":"d@e.f"}]`, want: []Address{b}},
		{name: "empty array", in: `[]`, want: []Address{}},
		{name: "one object", in: `{"emailAddress":"a@b.c","displayableName":"A"}`, want: []Address{a}, shape: KindObject},
		{name: "list string", in: `"A <a@b.c>, d@e.f"`, want: []Address{a, b}, shape: KindString},
		{name: "one string", in: `"d@e.f"`, want: []Address{b}, shape: KindString},
		{name: "null", in: `null`, want: nil},
		{name: "number", in: `7`, want: nil, shape: KindNumber},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s shapes
			var got Addresses
			got.flex([]byte(tc.in), "cc", &s)
			if !reflect.DeepEqual([]Address(got), tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			checkShape(t, s, "cc", tc.shape)
		})
	}
}

func TestNumberBoolStringShapes(t *testing.T) {
	ints := []struct {
		name  string
		in    string
		want  int64
		shape Kind
	}{
		{name: "number", in: `12345`, want: 12345},
		{name: "float", in: `12.0`, want: 12},
		{name: "exponent", in: `1e3`, want: 1000},
		{name: "string", in: `"12345"`, want: 12345, shape: KindString},
		{name: "string with spaces", in: `" 7 "`, want: 7, shape: KindString},
		{name: "non-numeric string", in: `"big"`, want: 0, shape: KindString},
		{name: "null", in: `null`, want: 0},
		{name: "bool", in: `true`, want: 0, shape: KindBool},
		{name: "object", in: `{"bytes":1}`, want: 0, shape: KindObject},
		{name: "too large", in: `1e300`, want: 0},
		{name: "negative", in: `-3`, want: -3},
	}
	for _, tc := range ints {
		t.Run("int64 "+tc.name, func(t *testing.T) {
			var s shapes
			var got FlexInt64
			got.flex([]byte(tc.in), "size", &s)
			if int64(got) != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
			checkShape(t, s, "size", tc.shape)
		})
	}
	t.Run("int out of range", func(t *testing.T) {
		var got FlexInt
		got.flex([]byte(`99999999999`), "n", nil)
		if got != 0 {
			t.Errorf("got %d, want 0", got)
		}
	})

	bools := []struct {
		name  string
		in    string
		want  bool
		shape Kind
	}{
		{name: "true", in: `true`, want: true},
		{name: "false", in: `false`, want: false},
		{name: "string true", in: `"true"`, want: true, shape: KindString},
		{name: "string TRUE", in: `"TRUE"`, want: true, shape: KindString},
		{name: "string false", in: `"false"`, want: false, shape: KindString},
		{name: "one", in: `1`, want: true, shape: KindNumber},
		{name: "zero", in: `0`, want: false, shape: KindNumber},
		{name: "null", in: `null`, want: false},
		{name: "array", in: `[true]`, want: false, shape: KindArray},
	}
	for _, tc := range bools {
		t.Run("bool "+tc.name, func(t *testing.T) {
			var s shapes
			var got FlexBool
			got.flex([]byte(tc.in), "alias", &s)
			if bool(got) != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			checkShape(t, s, "alias", tc.shape)
		})
	}

	strs := []struct {
		name  string
		in    string
		want  string
		shape Kind
	}{
		{name: "string", in: `"eNo1"`, want: "eNo1"},
		{name: "number", in: `12`, want: "12", shape: KindNumber},
		{name: "bool", in: `false`, want: "false", shape: KindBool},
		{name: "object", in: `{"secureId":"x"}`, want: "", shape: KindObject},
		{name: "null", in: `null`, want: ""},
	}
	for _, tc := range strs {
		t.Run("string "+tc.name, func(t *testing.T) {
			var s shapes
			var got FlexString
			got.flex([]byte(tc.in), "id", &s)
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			checkShape(t, s, "id", tc.shape)
		})
	}

	lists := []struct {
		name  string
		in    string
		want  []string
		shape Kind
	}{
		{name: "list", in: `["a","b"]`, want: []string{"a", "b"}},
		{name: "one string", in: `"a"`, want: []string{"a"}, shape: KindString},
		{name: "numbers in list", in: `["a",2,null]`, want: []string{"a", "2"}, shape: KindNumber},
		{name: "null", in: `null`, want: nil},
		{name: "object", in: `{"a":1}`, want: nil, shape: KindObject},
	}
	for _, tc := range lists {
		t.Run("strings "+tc.name, func(t *testing.T) {
			var s shapes
			var got FlexStrings
			got.flex([]byte(tc.in), "values", &s)
			if !reflect.DeepEqual([]string(got), tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.shape == KindNumber {
				checkShape(t, s, "values[]", tc.shape)
			} else {
				checkShape(t, s, "values", tc.shape)
			}
		})
	}
}

func TestTimeShapes(t *testing.T) {
	want := time.Date(2015, 11, 16, 14, 49, 18, 0, time.UTC)
	cases := []struct {
		name string
		in   string
		want time.Time
		bad  bool
	}{
		{name: "+0000", in: "2015-11-16T14:49:18+0000", want: want},
		{name: "Z", in: "2015-11-16T14:49:18Z", want: want},
		{name: "+00:00", in: "2015-11-16T14:49:18+00:00", want: want},
		{name: "other offset", in: "2015-11-16T20:19:18+05:30", want: want},
		{name: "other offset without colon", in: "2015-11-16T09:49:18-0500", want: want},
		{name: "millis +0000", in: "2015-11-16T14:49:18.000+0000", want: want},
		{name: "millis Z", in: "2015-11-16T14:49:18.642Z", want: want.Add(642 * time.Millisecond)},
		{name: "nanos", in: "2015-11-16T14:49:18.000000001Z", want: want.Add(1)},
		{name: "zone id", in: "2015-11-16T20:19:18.000+05:30[Asia/Kolkata]", want: want},
		{name: "spaces", in: " 2015-11-16T14:49:18Z ", want: want},
		{name: "no zone", in: "2015-11-16T14:49:18", bad: true},
		{name: "date only", in: "2015-11-16", bad: true},
		{name: "words", in: "yesterday", bad: true},
		{name: "empty", in: "", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTime(tc.in)
			if tc.bad {
				if err == nil {
					t.Errorf("ParseTime(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}

	flex := []struct {
		name  string
		in    string
		want  string
		shape Kind
	}{
		{name: "string kept as sent", in: `"2015-11-16T14:49:18Z"`, want: "2015-11-16T14:49:18Z"},
		{name: "epoch millis", in: `1447685358000`, want: "2015-11-16T14:49:18+0000", shape: KindNumber},
		{name: "epoch seconds", in: `1447685358`, want: "2015-11-16T14:49:18+0000", shape: KindNumber},
		{name: "epoch string", in: `"1447685358000"`, want: "1447685358000"},
		{name: "null", in: `null`, want: ""},
		{name: "object", in: `{"t":1}`, want: "", shape: KindObject},
		{name: "negative", in: `-5`, want: "", shape: KindNumber},
	}
	for _, tc := range flex {
		t.Run("flex "+tc.name, func(t *testing.T) {
			var s shapes
			var got FlexTime
			got.flex([]byte(tc.in), "received", &s)
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			checkShape(t, s, "received", tc.shape)
		})
	}
}

func TestMessageSummaryVariants(t *testing.T) {
	documented := MessageSummary{ID: "eNo1", Status: "ARCHIVED", Received: "2015-11-16T14:49:18+0000", Subject: "Hi",
		Size: 1234, AttachmentCount: 2, From: Address{"a@b.c", "A"}, To: Address{"d@e.f", "D"}, Smash: "3f78", Read: true}
	cases := []struct {
		name   string
		in     string
		want   MessageSummary
		shapes []Shape
	}{
		{name: "documented", in: `{"id":"eNo1","status":"ARCHIVED","received":"2015-11-16T14:49:18+0000","subject":"Hi","size":1234,"attachmentCount":2,"from":{"emailAddress":"a@b.c","displayableName":"A"},"to":{"emailAddress":"d@e.f","displayableName":"D"},"smash":"3f78","read":true}`,
			want: documented},
		{name: "independent stand-in", in: `{"id":"eNo1","status":"ARCHIVED","received":"2015-11-16T14:49:18+0000","subject":"Hi","size":1234,"attachmentCount":2,"from":{"emailAddress":"a@b.c","displayableName":"A"},"to":[{"emailAddress":"d@e.f","displayableName":"D"}],"smash":"3f78","read":true}`,
			want: documented, shapes: []Shape{{"to", KindArray}}},
		{name: "strings everywhere", in: `{"id":"eNo1","status":"ARCHIVED","received":"2015-11-16T14:49:18+0000","subject":"Hi","size":"1234","attachmentCount":"2","from":"A <a@b.c>","to":"D <d@e.f>","smash":"3f78","read":"true","ccm":false,"recalled":"false","extra":{"deep":[1]}}`,
			want: documented, shapes: []Shape{{"size", KindString}, {"attachmentCount", KindString}, {"from", KindString}, {"to", KindString}, {"read", KindString}}},
		{name: "only what the crawler needs", in: `{"id":"eNo1","received":"2015-11-16T14:49:18Z","to":null,"smash":null}`,
			want: MessageSummary{ID: "eNo1", Received: "2015-11-16T14:49:18Z"}},
		{name: "id as object", in: `{"id":{"secureId":"x"},"received":"2015-11-16T14:49:18Z"}`,
			want: MessageSummary{Received: "2015-11-16T14:49:18Z"}, shapes: []Shape{{"id", KindObject}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got MessageSummary
			shapes, err := Decode([]byte(tc.in), &got)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			if !sameShapes(shapes, tc.shapes) {
				t.Errorf("shapes %v, want %v", shapes, tc.shapes)
			}
		})
	}
	for _, in := range []string{`"eNo1"`, `[]`, `null`, `12`} {
		var m MessageSummary
		if _, err := Decode([]byte(in), &m); err == nil {
			t.Errorf("Decode(%s) succeeded; a record that is not an object must fail", in)
		}
	}
}

func TestMessageDetailVariants(t *testing.T) {
	in := `{"id":"eNo1","subject":"S","size":"99","received":"2015-11-16T14:49:18.000Z",
		"from":[{"emailAddress":"a@b.c"}],"replyTo":null,"envelopeFrom":"a@b.c",
		"to":{"emailAddress":"d@e.f","displayableName":"D"},"cc":"x@y.z, \"Q, R\" <q@r.s>",
		"headers":[{"name":"Subject","values":"S"},{"name":"Received","values":["r1","r2"]},"junk",{"name":"X"}],
		"hasHtmlBody":"true","isPassthrough":null,
		"attachments":[{"id":"att1","filename":"a.pdf","size":"10","bodyType":"5","contentType":"application/pdf"},{"id":"att2","size":3}],
		"unknown":{"a":1}}`
	var d MessageDetail
	shapes, err := Decode([]byte(in), &d)
	if err != nil {
		t.Fatal(err)
	}
	want := MessageDetail{ID: "eNo1", Subject: "S", Size: 99, Received: "2015-11-16T14:49:18.000Z",
		From: Address{EmailAddress: "a@b.c"}, EnvelopeFrom: Address{EmailAddress: "a@b.c"},
		To: []Address{{"d@e.f", "D"}}, Cc: []Address{{EmailAddress: "x@y.z"}, {"q@r.s", "Q, R"}},
		Headers:     []Header{{Name: "Subject", Values: []string{"S"}}, {Name: "Received", Values: []string{"r1", "r2"}}, {Name: "X"}},
		HasHTMLBody: true,
		Attachments: []Attachment{{ID: "att1", Filename: "a.pdf", Size: 10, BodyType: 5, ContentType: "application/pdf"}, {ID: "att2", Size: 3}},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got %+v\nwant %+v", d, want)
	}
	wantShapes := []Shape{{"size", KindString}, {"from", KindArray}, {"envelopeFrom", KindString}, {"to", KindObject},
		{"cc", KindString}, {"headers[].values", KindString}, {"headers[]", KindString}, {"hasHtmlBody", KindString},
		{"attachments[].size", KindString}, {"attachments[].bodyType", KindString}}
	if !sameShapes(shapes, wantShapes) {
		t.Errorf("shapes %v\nwant %v", shapes, wantShapes)
	}
}

func TestUsersDomainsTokenVariants(t *testing.T) {
	cases := []struct {
		name string
		in   string
		into Record
		want any
	}{
		{name: "users documented", in: `{"users":[{"emailAddress":"a@b.c","name":"A","alias":false,"addressType":"created_manually"}],"userCount":1}`,
			into: &UsersPage{}, want: &UsersPage{Users: []User{{EmailAddress: "a@b.c", Name: "A", AddressType: "created_manually"}}, UserCount: 1}},
		{name: "users doc sample spelling", in: `{"users":[{"emaiLAddress":"a@b.c","alias":"true"}],"usercount":"1"}`,
			into: &UsersPage{}, want: &UsersPage{Users: []User{{EmailAddress: "a@b.c", Alias: true}}, UserCount: 1}},
		{name: "users missing fields", in: `{"users":[{"emailAddress":"a@b.c"},42]}`,
			into: &UsersPage{}, want: &UsersPage{Users: []User{{EmailAddress: "a@b.c"}}}},
		{name: "users null", in: `{"users":null}`, into: &UsersPage{}, want: &UsersPage{}},
		{name: "domain strings", in: `{"id":"d1","domain":"x.com","sendOnly":"false","local":"true"}`,
			into: &Domain{}, want: &Domain{ID: "d1", Domain: "x.com", Local: true}},
		{name: "token expires_in string", in: `{"access_token":"t","token_type":"Bearer","expires_in":"1799","scope":""}`,
			into: &Token{}, want: &Token{AccessToken: "t", TokenType: "Bearer", ExpiresIn: 1799}},
		{name: "pagination strings", in: `{"pageSize":"25","totalCount":"100","next":"NDU1NA=="}`,
			into: &Pagination{}, want: &Pagination{PageSize: 25, TotalCount: ptr(100), Next: "NDU1NA=="}},
		{name: "fail with retryable string", in: `{"key":{"id":"x"},"errors":[{"code":"c","message":"m","retryable":"true"}]}`,
			into: &Fail{}, want: &Fail{Key: json.RawMessage(`{"id":"x"}`), Errors: []FailError{{Code: "c", Message: "m", Retryable: true}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode([]byte(tc.in), tc.into); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.into, tc.want) {
				t.Errorf("got %+v, want %+v", tc.into, tc.want)
			}
		})
	}
}

// The marshalled shape is the documented one: the simulator's default answers do not change.
func TestMarshalledShapeUnchanged(t *testing.T) {
	m := MessageSummary{ID: "eNo1", Received: "2015-11-16T14:49:18+0000", To: Address{"d@e.f", "D"}, Size: 3, Read: true}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"eNo1","status":"","received":"2015-11-16T14:49:18+0000","subject":"","size":3,"attachmentCount":0,` +
		`"from":{"emailAddress":"","displayableName":""},"to":{"emailAddress":"d@e.f","displayableName":"D"},"smash":"","read":true}`
	if string(b) != want {
		t.Errorf("marshalled\n%s\nwant\n%s", b, want)
	}
	var back MessageSummary
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

func ptr(n int) *int { return &n }

func checkShape(t *testing.T, s shapes, path string, want Kind) {
	t.Helper()
	if want == "" {
		if len(s.list) != 0 {
			t.Errorf("shapes %v, want none", s.list)
		}
		return
	}
	for _, x := range s.list {
		if x.Field == path && x.Kind == want {
			return
		}
	}
	t.Errorf("shapes %v, want %s as %s", s.list, path, want)
}

func sameShapes(got, want []Shape) bool {
	g := map[Shape]bool{}
	for _, s := range got {
		g[s] = true
	}
	w := map[Shape]bool{}
	for _, s := range want {
		w[s] = true
	}
	return reflect.DeepEqual(g, w)
}
