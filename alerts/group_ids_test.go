package alerts

import (
	"strings"
	"testing"
	"time"
)

// A group lists the full id of each alert, so that an id taken from a group finds the alert
// document; a group written when ids were cut to 16 hex digits takes the full id in place of
// the prefix instead of counting the alert twice.
func TestGroupKeepsFullAlertIDs(t *testing.T) {
	hash := strings.Repeat("c", 64)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	alert := func(id string) *Alert {
		return &Alert{ID: id, Source: AttachmentProtection, Time: at, Files: []File{{Name: "x.xlsm", SHA256: hash}}, Recipients: []string{"a@example.com"}}
	}
	first, second := strings.Repeat("1", 64), strings.Repeat("2", 64)

	var g Group
	g.Add(alert(first))
	g.Add(alert(second))
	if len(g.AlertIDs) != 2 || g.AlertIDs[0] != first || g.AlertIDs[1] != second || g.AlertCount != 2 || g.LatestAlertID != second {
		t.Fatalf("alert_ids %v (count %d, latest %s), want both full ids", g.AlertIDs, g.AlertCount, g.LatestAlertID)
	}

	old := Group{Key: "file:" + hash, Kind: "file", SHA256: hash, AlertIDs: []string{first[:16], second[:16]}, AlertCount: 2}
	if !old.Add(alert(first)) {
		t.Error("replacing a prefix by the full id did not change the group")
	}
	if len(old.AlertIDs) != 2 || old.AlertIDs[0] != first || old.AlertIDs[1] != second[:16] || old.AlertCount != 2 {
		t.Errorf("old group after its first alert again: alert_ids %v count %d, want the full id in place of its prefix", old.AlertIDs, old.AlertCount)
	}
	if old.Add(alert(first)) {
		t.Error("the same alert added again changed the group")
	}
}
