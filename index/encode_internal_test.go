package index

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleDoc(body string) *MessageDoc {
	return &MessageDoc{
		Timestamp: time.Date(2025, 3, 4, 9, 15, 0, 0, time.UTC),
		ECS:       ECS{Version: ECSVersion},
		Email:     Email{Subject: "Besprechung <über> & \"Budget\"", LocalID: "eNo1"},
		User:      User{Email: "anna@example.com"},
		Mimecast:  MessageMeta{ID: "eNo1", Mailbox: "anna@example.com", View: "INBOX", Body: body, Headers: map[string][]string{"X-A": {"\u2028 <b>"}}},
	}
}

// Documents are sent byte for byte as json.Marshal encodes them, also from a reused buffer
// that held a longer document before.
func TestEncodeBodyIsMarshal(t *testing.T) {
	for _, body := range []string{strings.Repeat("lang <html> & text ü\n", 5000), "", "kurz", "\xff invalid"} {
		want, err := json.Marshal(sampleDoc(body))
		if err != nil {
			t.Fatal(err)
		}
		got, buf, err := encodeBody(sampleDoc(body))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("body of %d bytes: encoded %q..., json.Marshal %q...", len(body), head(got), head(want))
		}
		o := &op{body: got, buf: buf}
		o.recycle()
		if o.buf != nil || o.body != nil {
			t.Error("recycle kept the buffer on the op")
		}
	}
	if _, _, err := encodeBody(func() {}); err == nil {
		t.Error("a function encoded without error")
	}
}

// A small document encoded into a buffer that once held a large one holds about its own size
// until its answer, not the large one's: otherwise the documents queued would hold the memory
// of the largest documents of the run.
func TestQueuedBodyHoldsAboutItsOwnSize(t *testing.T) {
	large := sampleDoc(strings.Repeat("lang <html> & text ü\n", 5000))
	small := sampleDoc("kurz")
	for range 20 {
		body, buf, err := encodeBody(large)
		if err != nil {
			t.Fatal(err)
		}
		(&op{body: body, buf: buf}).recycle()
		body, buf, err = encodeBody(small)
		if err != nil {
			t.Fatal(err)
		}
		held := cap(body)
		if buf != nil {
			held = buf.Cap()
		}
		if held > 2*len(body) {
			t.Fatalf("a body of %d bytes holds %d bytes of memory", len(body), held)
		}
		(&op{body: body, buf: buf}).recycle()
	}
}

func head(b []byte) []byte { return b[:min(len(b), 60)] }

func BenchmarkEncodeBody(b *testing.B) {
	benchEncoders(b, sampleDoc(strings.Repeat("Absatz: Die Zahlen für das nächste Quartal sind geprüft.\n", 80)))
}

// The archive's documents encode themselves byte for byte as json.Marshal encodes them: with
// every field of every nested struct set (so a field added to a struct but not to the encoder
// fails here), with none set, and with random mixes of zero, empty and set fields.
func TestAppendJSONIsMarshal(t *testing.T) {
	docs := map[string]func() any{
		"message":    func() any { return new(MessageDoc) },
		"attachment": func() any { return new(AttachmentDoc) },
	}
	for name, newDoc := range docs {
		t.Run(name+"/full", func(t *testing.T) {
			for n := range 8 {
				doc := newDoc()
				(&filler{n: n}).fill(t, reflect.ValueOf(doc).Elem(), name)
				assertAppendIsMarshal(t, doc)
			}
		})
		t.Run(name+"/zero", func(t *testing.T) { assertAppendIsMarshal(t, newDoc()) })
		t.Run(name+"/mixed", func(t *testing.T) {
			for seed := range uint64(300) {
				doc := newDoc()
				(&filler{rnd: rand.New(rand.NewPCG(seed, 1))}).fill(t, reflect.ValueOf(doc).Elem(), name)
				assertAppendIsMarshal(t, doc)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		assertAppendIsMarshal(t, (*MessageDoc)(nil))
		assertAppendIsMarshal(t, (*AttachmentDoc)(nil))
	})
}

// Every time json.Marshal refuses (years outside 0-9999, zone offsets of a day), in every time
// field, fails the encoding too, instead of writing something Elasticsearch cannot parse.
func TestAppendJSONRefusesWhatMarshalRefuses(t *testing.T) {
	bad := []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	}
	for _, doc := range []any{new(MessageDoc), new(AttachmentDoc)} {
		(&filler{}).fill(t, reflect.ValueOf(doc).Elem(), "doc")
		times := timeFields(reflect.ValueOf(doc).Elem(), nil)
		if len(times) < 4 {
			t.Fatalf("%T: found %d time fields", doc, len(times))
		}
		for i, tv := range times {
			good := tv.Interface().(time.Time)
			for _, b := range bad {
				tv.Set(reflect.ValueOf(b))
				if _, err := json.Marshal(doc); err == nil {
					t.Fatalf("json.Marshal accepted %v", b)
				}
				if _, err := doc.(jsonAppender).appendJSON(nil); err == nil {
					t.Errorf("%T: time field %d = %v encoded without error", doc, i, b)
				}
				if _, _, err := encodeBody(doc); err == nil {
					t.Errorf("%T: encodeBody of time field %d = %v: no error", doc, i, b)
				}
			}
			tv.Set(reflect.ValueOf(good))
		}
	}
}

// The string encoder escapes as json.Marshal does at every position relative to the eight-byte
// words it scans, for every kind of byte that needs attention.
func TestAppendStringAtEveryOffset(t *testing.T) {
	specials := []string{"\"", "\\", "<", ">", "&", "\x00", "\x1f", "\b", "\f", "\n", "\r", "\t", "\x7f",
		"ü", "€", "😀", "\u2028", "\u2029", "\xff", "\xe2\x80", "\xed\xa0\x80", " ", "~"}
	for n := range 25 {
		for pos := range n + 1 {
			for _, sp := range specials {
				s := strings.Repeat("a", pos) + sp + strings.Repeat("b", n-pos)
				assertStringIsMarshal(t, s)
			}
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain ascii text", "<b>&amp;</b>", `"quoted" \back\`,
		"\x00\x01\x1f\x7f\b\f\n\r\t", "\xff\xfe\xc3", "\u2028\u2029", "Grüße, 你好 😀",
		"1234567", "12345678", "123456789", "1234567\xe2\x80\xa8", "12345678<", "\xed\xa0\x80surrogate",
		strings.Repeat("Absatz: geprüft & <ok>.\n", 20)} {
		f.Add(s)
	}
	f.Fuzz(assertStringIsMarshal)
}

func assertStringIsMarshal(t *testing.T, s string) {
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got := appendString([]byte("x"), s)
	if got[0] != 'x' || !bytes.Equal(got[1:], want) {
		t.Errorf("%q: appendString %q, json.Marshal %q", s, got, want)
	}
}

func assertAppendIsMarshal(t *testing.T, doc any) {
	t.Helper()
	want, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := doc.(jsonAppender).appendJSON([]byte("x"))
	if err != nil {
		t.Fatalf("appendJSON: %v", err)
	}
	if got[0] != 'x' || !bytes.Equal(got[1:], want) {
		got = got[1:]
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("appendJSON differs from json.Marshal at byte %d:\n got  ...%s\n want ...%s", i,
			got[max(0, i-40):min(len(got), i+80)], want[max(0, i-40):min(len(want), i+80)])
	}
	body, buf, err := encodeBody(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("encodeBody differs from json.Marshal")
	}
	(&op{body: body, buf: buf}).recycle()
}

// filler sets the fields of a document by reflection, recursively, so that fields added to
// any nested struct later are set without changing the test. With rnd nil it sets every field
// to a non-zero value; with rnd it picks zero, empty or set for each one.
type filler struct {
	rnd *rand.Rand
	n   int // varies the values of full documents
}

// fillStrings are the strings fields take: each exercises an escaping rule.
var fillStrings = []string{"plain", `<a href="x">&amp;</a>`, "\x00\x1f\t\n\r\b\f\x7f", "\xff\xfe bad",
	"\u2028\u2029", "Grüße 😀", `back\slash`, strings.Repeat("long text ü ", 10)}

var fillTimes = []time.Time{
	time.Date(2025, 3, 4, 9, 15, 0, 123456789, time.UTC),
	time.Date(2025, 3, 4, 9, 15, 7, 0, time.FixedZone("", -(7*3600+30*60))),
	time.Date(1, 1, 1, 0, 0, 0, 100, time.FixedZone("", 5*3600+45*60+30)),
	time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
}

// choice returns 0 (leave zero), 1 (empty but not nil, where that differs) or 2 (set).
func (f *filler) choice() int {
	if f.rnd == nil {
		return 2
	}
	return f.rnd.IntN(3)
}

func (f *filler) pick(n int) int {
	if f.rnd == nil {
		f.n++
		return f.n % n
	}
	return f.rnd.IntN(n)
}

func (f *filler) fill(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		if f.choice() != 0 {
			v.Set(reflect.ValueOf(fillTimes[f.pick(len(fillTimes))]))
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f.fill(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.String:
		switch f.choice() {
		case 1, 2:
			v.SetString(fillStrings[f.pick(len(fillStrings))])
		}
	case reflect.Int, reflect.Int64:
		if f.choice() != 0 {
			v.SetInt(int64(f.pick(1000)) - 10 + 1<<40*int64(f.pick(2)))
			if v.Int() == 0 {
				v.SetInt(1)
			}
		}
	case reflect.Bool:
		v.SetBool(f.choice() != 0)
	case reflect.Pointer:
		if f.choice() != 0 {
			v.Set(reflect.New(v.Type().Elem()))
			f.fill(t, v.Elem(), path)
		}
	case reflect.Slice:
		n, set := f.length(3)
		if !set {
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			f.fill(t, v.Index(i), path)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			t.Fatalf("fill %s: map key kind %s; teach the filler (and check the encoder)", path, v.Type().Key().Kind())
		}
		n, set := f.length(14)
		if !set {
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		for i := range n {
			k := reflect.New(v.Type().Key()).Elem()
			k.SetString(fmt.Sprint(fillStrings[f.pick(len(fillStrings))][:3], i))
			e := reflect.New(v.Type().Elem()).Elem()
			f.fill(t, e, path)
			v.SetMapIndex(k, e)
		}
	default:
		t.Fatalf("fill %s: kind %s; teach the filler (and check the encoder)", path, v.Kind())
	}
}

// length picks the length of a slice or map: unset (nil, set false), empty, or 1 to most.
func (f *filler) length(most int) (n int, set bool) {
	switch f.choice() {
	case 0:
		return 0, false
	case 2:
		return 1 + f.pick(most), true
	}
	return 0, true
}

// timeFields returns the settable time.Time values in v, also behind pointers and in slices.
func timeFields(v reflect.Value, found []reflect.Value) []reflect.Value {
	if v.Type() == reflect.TypeFor[time.Time]() {
		return append(found, v)
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			found = timeFields(v.Field(i), found)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			found = timeFields(v.Elem(), found)
		}
	case reflect.Slice:
		for i := range v.Len() {
			found = timeFields(v.Index(i), found)
		}
	}
	return found
}

// BenchmarkEncodeMessageDoc compares the hand encoder with encoding/json on a message of the
// kind the crawler sends most: a few KB of mostly ASCII text with some umlauts and markup, a
// dozen headers, a few addresses.
func BenchmarkEncodeMessageDoc(b *testing.B) { benchEncoders(b, benchMessageDoc()) }

// benchEncoders compares the hand encoder, encodeBody (the hand encoder into a pooled
// buffer) and encoding/json on doc.
func benchEncoders(b *testing.B, doc *MessageDoc) {
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var dst []byte
		for b.Loop() {
			var err error
			if dst, err = doc.appendJSON(dst[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(dst)))
	})
	b.Run("encodeBody", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			body, buf, err := encodeBody(doc)
			if err != nil {
				b.Fatal(err)
			}
			(&op{body: body, buf: buf}).recycle()
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchMessageDoc() *MessageDoc {
	received := time.Date(2025, 3, 4, 9, 15, 2, 318000000, time.UTC)
	sent := received.Add(-3 * time.Second)
	var body strings.Builder
	for body.Len() < 4000 {
		body.WriteString("Hallo Anna,\r\n\r\nanbei die Zahlen für das nächste Quartal; die Übersicht liegt unter " +
			"<https://intranet.example.com/q3?team=ops&view=all>. Bitte bis Freitag prüfen.\r\n\r\n" +
			"Viele Grüße\r\nBen\r\n\r\n> On Mon, Anna wrote:\r\n> Können wir das \"Budget\" noch einmal ansehen?\r\n")
	}
	headers := map[string][]string{}
	for i, h := range []string{"Received", "Return-Path", "DKIM-Signature", "Authentication-Results", "Content-Type",
		"MIME-Version", "X-Mailer", "X-MS-Exchange-Organization-SCL", "Thread-Topic", "Thread-Index", "Accept-Language",
		"Content-Language"} {
		headers[h] = []string{fmt.Sprintf("value %d of %s; from mail.example.com (10.0.0.%d) by mx <x@example.com>", i, h, i)}
	}
	return &MessageDoc{
		Timestamp: received,
		ECS:       ECS{Version: ECSVersion},
		Event:     NewEvent(received.Add(time.Minute)),
		Email: Email{MessageID: "<CAF1234567890abcdef@mail.example.com>", LocalID: "eNoVzrEOgjAQgOF36eyA0",
			Subject: "AW: Quartalszahlen Q3 & Budget <Entwurf>", From: &Addresses{Address: []string{"ben@example.com"}},
			To:        &Addresses{Address: []string{"anna@example.com", "team-ops@example.com"}},
			Cc:        &Addresses{Address: []string{"carla@example.org"}},
			Direction: "inbound", OriginationTimestamp: &sent, DeliveryTimestamp: received,
			Attachments: []EmailAttachment{{File: File{Name: "Quartal Q3.xlsx", MimeType: "application/vnd.ms-excel",
				Extension: "xlsx", Size: 48211, Hash: &Hash{SHA256: strings.Repeat("ab", 32)}}}}},
		User: User{Email: "anna@example.com"},
		Mimecast: MessageMeta{ID: "eNoVzrEOgjAQgOF36eyA0", Mailbox: "anna@example.com", Domain: "example.com",
			View: "INBOX", From: &Names{Name: []string{"Ben Müller"}}, To: &Names{Name: []string{"Anna Schmidt"}},
			Headers: headers, Auth: &Auth{SPF: []string{"pass"}, DKIM: []string{"pass"}, DMARC: []string{"pass"}},
			Body: body.String(), Size: 61234, AttachmentCount: 1, Generation: 7},
	}
}
