package alerts

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/integration/mimecast"
)

// lockedBuffer collects log lines from the poller's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeRawLogs serves one page of raw records.
type fakeRawLogs struct{ recs []json.RawMessage }

func (f fakeRawLogs) SecurityLogs(ctx context.Context, k mimecast.LogKind, q mimecast.LogQuery) (mimecast.Page, error) {
	return mimecast.Page{Records: f.recs, Total: -1}, nil
}

// Finding 7: a record over alerts.max_record_size and one without its time are counted by
// reason and warned about at warn, naming the limit and the missing field; the rest of
// the page is indexed.
func TestUnusableRecordsCountedByReason(t *testing.T) {
	dlp := func(subject string, withTime bool) json.RawMessage {
		m := map[string]any{"senderAddress": "a@x.example", "recipientAddress": "b@corp.example", "subject": subject,
			"policy": "Block cards", "action": "block", "messageId": "<" + subject[:min(8, len(subject))] + "@x>"}
		if withTime {
			m["eventTime"] = "2026-11-01T11:00:00+0000"
		}
		b, _ := json.Marshal(m)
		return b
	}
	f := newFixture(false)
	var logs lockedBuffer
	p, err := New(Deps{Logs: fakeRawLogs{recs: []json.RawMessage{
		dlp("fine", true), dlp(strings.Repeat("x", 5000), true), dlp("no time", false), dlp("no time either", false), dlp("also fine", true),
	}}, Sink: f.sink, Cursors: f.cursors, Rules: keepAll{}},
		Options{Sources: []Source{DLP}, Now: f.clock.now, MaxRecordBytes: 4096, Logger: zerolog.New(&logs).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	s := one(t, p.Once(context.Background()))
	if s.Indexed != 2 || s.Malformed != 3 || s.MalformedReasons[ReasonTooLarge] != 1 || s.MalformedReasons[ReasonNoTime] != 2 {
		t.Fatalf("summary = %+v; want 2 indexed, 1 too large and 2 without time", s)
	}
	out := logs.String()
	for _, want := range []string{"alerts.max_record_size accepts at most 4096", "field eventTime: missing"} {
		if strings.Count(out, want) != 1 {
			t.Errorf("want one warning with %q:\n%s", want, out)
		}
	}
}
