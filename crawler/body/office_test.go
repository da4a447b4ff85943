package body

import "testing"

func TestXLSXNumbersAsDisplayed(t *testing.T) {
	for _, tc := range []struct {
		stored         string
		date, date1904 bool
		want           string
	}{
		{"0.10153280000000001", false, false, "0.1015328"},
		{"1234.5", false, false, "1234.5"},
		{"-42", false, false, "-42"},
		{"1E-3", false, false, "0.001"},
		{"40290", true, false, "2010-04-22"},
		{"36161", true, false, "1999-01-01"},
		{"40290.75", true, false, "2010-04-22 18:00:00"},
		{"0.5", true, false, "12:00:00"},
		{"0", true, true, "1904-01-01"},
		{"-1", true, false, "-1"},
		{"n/a", false, false, "n/a"},
	} {
		if got := xlsxNumber(tc.stored, tc.date, tc.date1904); got != tc.want {
			t.Errorf("xlsxNumber(%q, date %t, 1904 %t) = %q, want %q", tc.stored, tc.date, tc.date1904, got, tc.want)
		}
	}
}

func TestIsDateFormat(t *testing.T) {
	for _, tc := range []struct {
		id     int
		code   string
		custom bool
		want   bool
	}{
		{14, "", false, true},
		{22, "", false, true},
		{2, "", false, false},
		{164, "yyyy\\-mm\\-dd", true, true},
		{165, "[$-409]d mmm yy", true, true},
		{166, "0.00\" days\"", true, false},
		{167, "[Red]#,##0;[Blue]-#,##0", true, false},
		{168, "General", true, false},
		{169, "hh:mm", true, true},
	} {
		if got := isDateFormat(tc.id, tc.code, tc.custom); got != tc.want {
			t.Errorf("isDateFormat(%d, %q) = %t, want %t", tc.id, tc.code, got, tc.want)
		}
	}
}
