package index

import (
	"bytes"
	"encoding/json"
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
	doc := sampleDoc(strings.Repeat("Absatz: Die Zahlen für das nächste Quartal sind geprüft.\n", 80))
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
