package state

import (
	"os"
	"strings"
	"testing"
	"time"
)

// A report holds the file's views sorted, their failures counted, its runs newest first;
// an empty file says no crawl has run yet.
func TestReport(t *testing.T) {
	s := openTemp(t)
	rep, err := s.Report(Report{StatePath: s.Path()}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.NoCrawlYet || rep.Damage != "" || len(rep.Views) != 0 {
		t.Errorf("report of an empty file: %+v", rep)
	}
	b, a := Key{Mailbox: "b@x", View: "INBOX"}, Key{Mailbox: "a@x", View: "SENT"}
	if err := s.Commit(map[Key]Position{b: {Token: day(2), Indexed: 3}, a: {Pass: &Pass{End: day(3), Low: day(1), Full: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordFailure(Failure{Key: b, DocID: "d1", MessageID: "m1", Reason: "mapping", Status: 400, At: day(2)}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []RunRecord{{Command: "crawl", ExitCode: 1}, {Command: "crawl", ExitCode: 2}} {
		if err := s.AddRun(r); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = s.Report(Report{StatePath: s.Path()}, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.NoCrawlYet || len(rep.Views) != 2 || rep.Views[0].Mailbox != "a@x" || rep.Views[1].Mailbox != "b@x" {
		t.Fatalf("views %+v", rep.Views)
	}
	if v := rep.Views[0]; !v.PassPending || !v.FullPending || !v.ResumeAt.Equal(day(1)) || !v.PassEnd.Equal(day(3)) || v.Token != nil {
		t.Errorf("view with a pending full pass: %+v", v)
	}
	if v := rep.Views[1]; v.Failures != 1 || v.Indexed != 3 || !v.Token.Equal(day(2)) || v.PassPending {
		t.Errorf("view with a token and a failure: %+v", v)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].ExitCode != 2 || rep.Runs[0].V != 0 {
		t.Errorf("runs %+v, want the newest first", rep.Runs)
	}
}

// A snapshot reads back as written, at mode 0600, without its version; one of a newer
// encoding is refused, one written before snapshots were versioned is read.
func TestSnapshotRoundTrip(t *testing.T) {
	statePath := t.TempDir() + "/state.db"
	if err := WriteSnapshot(statePath, Report{StatePath: statePath}); err == nil {
		t.Error("a snapshot without its header was written")
	}
	written := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rep := Report{StatePath: statePath, Shard: "1/3", Views: []ViewStatus{{Mailbox: "a@x", View: "INBOX", Indexed: 7}},
		Snapshot: &SnapshotInfo{Written: written, PID: 42, ViewsDone: 1, ViewsTotal: 2, Messages: 7}}
	if err := WriteSnapshot(statePath, rep); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SnapshotPath(statePath))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(SnapshotPath(statePath))
	if !strings.Contains(string(raw), `"v":1`) {
		t.Errorf("snapshot %s carries no version", raw)
	}
	got, err := ReadSnapshot(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if got.V != 0 || got.Shard != "1/3" || len(got.Views) != 1 || got.Views[0].Indexed != 7 || *got.Snapshot != *rep.Snapshot {
		t.Errorf("read back %+v", got)
	}

	legacy := strings.Replace(string(raw), `"v":1,`, "", 1)
	if err := os.WriteFile(SnapshotPath(statePath), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSnapshot(statePath); err != nil {
		t.Errorf("a snapshot written before versions: %v", err)
	}
	newer := strings.Replace(string(raw), `"v":1,`, `"v":2,`, 1)
	if err := os.WriteFile(SnapshotPath(statePath), []byte(newer), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSnapshot(statePath); err == nil || !strings.Contains(err.Error(), "newer mimecrawl") {
		t.Errorf("a snapshot of a newer version: %v", err)
	}
}
