package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// putHistory stores value as the next run history record, as a release wrote it.
func putHistory(t *testing.T, s *Store, value string) {
	t.Helper()
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(value))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A crawl's run summary as the release before versioned records wrote it: no "v", every
// field of the summary.
const legacyRun = `{"command":"crawl","started":"2026-03-01T10:00:00Z","finished":"2026-03-01T10:02:30.5Z","seconds":150.5,"full":true,"shard":"1/2",` +
	`"domains_total":3,"domains_kept":2,"mailboxes_enumerated":40,"mailboxes_kept":38,"excluded":{"pattern":2},` +
	`"views_total":76,"views_complete":74,"views_failed":1,"views_interrupted":1,"failed_views":["a@x INBOX: failed: boom"],` +
	`"messages_indexed":1000,"messages_already_indexed":5,"messages_excluded_by_subject":6,"attachments_indexed":200,"attachments_oversize":7,` +
	`"attachments_excluded_by_name":8,"bytes_downloaded":123456,"documents_failed":9,"messages_fetch_failed":10,"malformed_bodies":11,` +
	`"documents_deleted":12,"attachments_from_message":190,"documents_not_indexed":13,"messages_invalid":14,"attachments_text_failed":3,` +
	`"messages_listed":1020,"views_listed":75,"attachments_text_failed_by_reason":[{"format":"pdf","reason":"encrypted","count":3}],` +
	`"mailboxes_removed":1,"removal_incomplete":true,"removal_refused":["b@x"],` +
	`"api_calls":2000,"api_rate_limited":4,"api_errors_by_status":{"429":4,"500":1},"api_quota_calls":1500,"api_download_requests":450,` +
	`"api_token_requests":2,"api_quota_wait_seconds":1.25,"api_quota_groups":{"archive":{"calls":1500,"rate_limited":4,"quota_wait_seconds":1.25}},` +
	`"api_concurrency":"adaptive","api_concurrency_initial":8,"api_concurrency_limit":12,"api_concurrency_limit_avg":10.5,"api_concurrency_limit_max":16,` +
	`"api_inflight_max":15,"bulk_requests":30,"bytes_indexed":654321,"peak_rss_bytes":99999999,` +
	`"failed_documents":["d1"],"error":"partial","fatal":true,"interrupted":true,"exit_code":3}`

// An alerts pass summary as the release before versioned records wrote it.
const legacyPass = `{"command":"alerts","started":"2026-03-01T10:00:00Z","finished":"2026-03-01T10:00:04Z",` +
	`"sources":[{"source":"siem","records":20,"indexed":15,"existing":2,"excluded":{"type":3},"filter_errors":1,"malformed":2,` +
	`"malformed_reasons":{"no_time":2},"repeats":1,"files_skipped":1,"files_pending":2,"groups":4,"rejected":1,"pages_looped":1,` +
	`"records_unread":5,"alerts_pending":2,"forbidden":true,"permission":"Read SIEM","interrupted":true,"cursor":"c1","error":"e"}],` +
	`"seconds":4,"api_calls":7,"api_quota_calls":6,"api_quota_groups":{"siem":{"calls":6,"rate_limited":0,"quota_wait_seconds":0.5}},` +
	`"exit_code":3,"error":"x"}`

// Records written by the release before versions read back whole, and encode again to the
// same JSON, which is what `status --json` prints.
func TestHistoryOfPreviousRelease(t *testing.T) {
	s := openTemp(t)
	putHistory(t, s, legacyRun)
	runs, err := s.Runs(0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("Runs = %+v, %v", runs, err)
	}
	r := runs[0]
	if r.Command != "crawl" || !r.Finished.Equal(time.Date(2026, 3, 1, 10, 2, 30, 5e8, time.UTC)) || r.Messages != 1000 ||
		r.TextMisses[0] != (TextMiss{Format: "pdf", Reason: "encrypted", Count: 3}) || r.APIErrors[429] != 4 ||
		r.APIQuotaGroups["archive"].WaitSeconds != 1.25 || r.ExitCode != 3 || !r.Interrupted {
		t.Errorf("read back %+v", r)
	}
	if b, _ := json.Marshal(r); string(b) != legacyRun {
		t.Errorf("encodes again as\n%s\nwant\n%s", b, legacyRun)
	}

	a := openTemp(t)
	putHistory(t, a, legacyPass)
	passes, err := a.Passes(0)
	if err != nil || len(passes) != 1 {
		t.Fatalf("Passes = %+v, %v", passes, err)
	}
	p := passes[0]
	if p.Command != "alerts" || len(p.Sources) != 1 || p.Sources[0].Source != "siem" || p.Sources[0].MalformedReasons["no_time"] != 2 ||
		p.APIQuotaGroups["siem"].WaitSeconds != 0.5 || p.ExitCode != 3 {
		t.Errorf("read back %+v", p)
	}
	if b, _ := json.Marshal(p); string(b) != legacyPass {
		t.Errorf("encodes again as\n%s\nwant\n%s", b, legacyPass)
	}
	for _, st := range []*Store{s, a} {
		if err := st.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
}

// AddRun and AddPass write version 1, and what they write reads back equal.
func TestHistoryRoundTrip(t *testing.T) {
	s := openTemp(t)
	var want RunRecord
	if err := json.Unmarshal([]byte(legacyRun), &want); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRun(want); err != nil {
		t.Fatal(err)
	}
	var pass PassRecord
	if err := json.Unmarshal([]byte(legacyPass), &pass); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPass(pass); err != nil {
		t.Fatal(err)
	}
	_ = s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			if !strings.HasPrefix(string(v), `{"v":1,`) {
				t.Errorf("stored %s, want version 1", v)
			}
			return nil
		})
	})
	runs, err := s.Runs(0)
	if err != nil || len(runs) != 2 || !reflect.DeepEqual(runs[1], want) {
		t.Errorf("Runs = %+v, %v\nwant %+v", runs, err, want)
	}
	passes, err := s.Passes(1)
	if err != nil || len(passes) != 1 || !reflect.DeepEqual(passes[0], pass) {
		t.Errorf("Passes = %+v, %v\nwant %+v", passes, err, pass)
	}
}

// A record of a newer version is refused, by name, as a newer schema; Check does not call it
// damage.
func TestHistoryOfNewerVersion(t *testing.T) {
	s := openTemp(t)
	putHistory(t, s, `{"command":"crawl","exit_code":0}`)
	putHistory(t, s, `{"v":2,"command":"crawl","started":{"wall":1}}`)
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	for name, read := range map[string]func() error{
		"Runs":   func() error { _, err := s.Runs(0); return err },
		"Passes": func() error { _, err := s.Passes(0); return err },
		"Report": func() error { _, err := s.Report(Report{}, true); return err },
	} {
		err := read()
		if !errors.Is(err, ErrNewerSchema) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version 2") ||
			!strings.Contains(err.Error(), "newer mimecrawl") || !strings.Contains(err.Error(), s.Path()) {
			t.Errorf("%s: %v, want a newer version refused", name, err)
		}
	}
}

// A record that does not decode is damage, named by Check and by the readers.
func TestHistoryDamage(t *testing.T) {
	for _, v := range []string{`{"command":"crawl","seconds":"long"}`, `[1]`, `{"command":"alerts","sources":5}`, `{"v":-1}`} {
		s := openTemp(t)
		putHistory(t, s, v)
		if err := s.Check(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Check = %v, want damage", v, err)
		}
		_, rerr := s.Runs(0)
		_, perr := s.Passes(0)
		if !errors.Is(rerr, ErrCorrupt) && !errors.Is(perr, ErrCorrupt) {
			t.Errorf("%s: Runs %v, Passes %v, want damage", v, rerr, perr)
		}
	}
}
