package index

import (
	"net/mail"
	"testing"
	"time"
)

// parseDate is mail.ParseDate with a shortcut: wherever the shortcut answers, it must answer
// what mail.ParseDate does.
func FuzzParseDateIsMailParseDate(f *testing.F) {
	for _, s := range []string{
		"Fri, 01 Mar 2024 13:00:00 +0100",
		"Fri, 01 Mar 2024 13:00:00 -0000",
		"Fri, 1 Mar 2024 13:00:00 +0100",
		"01 Mar 2024 13:00:00 +0100",
		"Fri, 01 Mar 24 13:00 GMT",
		"Fri, 01 Mar 2024 13:00:00 +0100 (CET)",
		"Fri, 01 Mar 2024 13:00:00 +2400",
		"Fri, 01 Mar 2024 25:00:00 +0100",
		"Fri, 31 Feb 2024 13:00:00 +0100",
		"Fri,  01 Mar 2024 13:00:00 +0100",
		"Fri, 01 Mar 2024 13:00:00 +0100\r\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseDate(s)
		want, err := mail.ParseDate(s)
		if ok != (err == nil) || !got.Equal(want) || offset(got) != offset(want) {
			t.Errorf("parseDate(%q) = %v, %v; mail.ParseDate = %v, %v", s, got, ok, want, err)
		}
	})
}

func offset(t time.Time) int {
	_, off := t.Zone()
	return off
}
