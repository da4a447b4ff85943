package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDuration(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		text    string // String() of the result
		wantErr string
	}{
		{in: "15m", want: 15 * time.Minute, text: "15m"},
		{in: "-60s", want: -time.Minute, text: "-1m"},
		{in: "1h30m", want: 90 * time.Minute, text: "1h30m"},
		{in: "+2h", want: 2 * time.Hour, text: "2h"},
		{in: "2d", want: 48 * time.Hour, text: "2d"},
		{in: "-30d", want: -30 * 24 * time.Hour, text: "-30d"},
		{in: "1d12h", want: 36 * time.Hour, text: "36h"},
		{in: "1.5h", want: 90 * time.Minute, text: "1h30m"},
		{in: "250ms", want: 250 * time.Millisecond, text: "250ms"},
		{in: "10us", want: 10 * time.Microsecond, text: "10µs"},
		{in: "10µs", want: 10 * time.Microsecond, text: "10µs"},
		{in: "1h0m0s", want: time.Hour, text: "1h"},
		{in: "1m5s", want: 65 * time.Second, text: "1m5s"},
		{in: "0", want: 0, text: "0s"},
		{in: " 5s ", want: 5 * time.Second, text: "5s"},
		{in: "30", wantErr: "the number 30 has no unit"},
		{in: "-5", wantErr: "has no unit"},
		{in: "", wantErr: "it is empty"},
		{in: "-", wantErr: "there is no number"},
		{in: "5 minutes", wantErr: `unknown unit " minutes"`},
		{in: "5y", wantErr: `unknown unit "y"`},
		{in: "h", wantErr: "expected a number"},
		{in: "1..5s", wantErr: "expected a number"},
		{in: "1h-5m", wantErr: `unknown unit "h-"`},
		{in: "300000d", wantErr: "too large"},
		{in: "99999999999999999999s", wantErr: "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse %q: error %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "e.g. 30s") {
					t.Errorf("error %q does not say what is allowed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse %q: %v", tc.in, err)
			}
			if d.D() != tc.want {
				t.Errorf("parse %q = %v, want %v", tc.in, d.D(), tc.want)
			}
			if d.String() != tc.text {
				t.Errorf("String() = %q, want %q", d.String(), tc.text)
			}
			var back Duration
			if err := back.UnmarshalText([]byte(d.String())); err != nil || back != d {
				t.Errorf("String() %q does not read back: %v, %v", d.String(), back, err)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		text    string
		wantErr string
	}{
		{in: "1048576", want: 1 << 20, text: "1MiB"},
		{in: "25MB", want: 25_000_000, text: "25MB"},
		{in: "25mb", want: 25_000_000, text: "25MB"},
		{in: "25M", want: 25_000_000, text: "25MB"},
		{in: "512KiB", want: 512 << 10, text: "512KiB"},
		{in: "512 KiB", want: 512 << 10, text: "512KiB"},
		{in: "1kB", want: 1000, text: "1KB"},
		{in: "1.5MiB", want: 3 << 19, text: "1536KiB"},
		{in: "2GiB", want: 2 << 30, text: "2GiB"},
		{in: "1TB", want: 1e12, text: "1TB"},
		{in: "100B", want: 100, text: "100"},
		{in: "1001", want: 1001, text: "1001"},
		{in: "0", want: 0, text: "0"},
		{in: "-5MB", want: -5_000_000, text: "-5MB"},
		{in: "25XB", wantErr: `unknown unit "XB"`},
		{in: "MB", wantErr: "expected a whole number"},
		{in: "", wantErr: "expected a whole number"},
		{in: "1.2.3MB", wantErr: "expected a number"},
		{in: "9999999TiB", wantErr: "too large"},
		{in: "99999999999999999999", wantErr: "expected a whole number"},
		{in: "1e9TiB", wantErr: "unknown unit"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var b ByteSize
			err := b.UnmarshalText([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse %q: error %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse %q: %v", tc.in, err)
			}
			if int64(b) != tc.want {
				t.Errorf("parse %q = %d, want %d", tc.in, b, tc.want)
			}
			if b.String() != tc.text {
				t.Errorf("String() = %q, want %q", b.String(), tc.text)
			}
			var back ByteSize
			if err := back.UnmarshalText([]byte(b.String())); err != nil || back != b {
				t.Errorf("String() %q does not read back: %v, %v", b.String(), back, err)
			}
		})
	}
}

func TestDate(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Time
		text    string
		wantErr bool
	}{
		{in: "2024-01-31", want: time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC), text: "2024-01-31"},
		{in: "2024-01-31T00:00:00Z", want: time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC), text: "2024-01-31"},
		{in: "2024-01-31T08:00:00+01:00", want: time.Date(2024, 1, 31, 7, 0, 0, 0, time.UTC), text: "2024-01-31T08:00:00+01:00"},
		{in: "2024-01-31T08:00:00.5Z", want: time.Date(2024, 1, 31, 8, 0, 0, 5e8, time.UTC), text: "2024-01-31T08:00:00.5Z"},
		{in: "2024-02-30", wantErr: true},
		{in: "31.01.2024", wantErr: true},
		{in: "2024-01-31 08:00", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var d Date
			err := d.UnmarshalText([]byte(tc.in))
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "is not a date; write YYYY-MM-DD") {
					t.Fatalf("parse %q: error %v, want a date error", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse %q: %v", tc.in, err)
			}
			if !d.Equal(tc.want) {
				t.Errorf("parse %q = %v, want %v", tc.in, d.Time, tc.want)
			}
			if d.String() != tc.text {
				t.Errorf("String() = %q, want %q", d.String(), tc.text)
			}
		})
	}
	// An unquoted date in YAML is a timestamp to yaml.v3; it must still decode.
	var v struct {
		D Date `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 2024-01-31\n"), &v); err != nil || v.D.String() != "2024-01-31" {
		t.Errorf("yaml date = %v, %v", v.D, err)
	}
}

func TestRegexpMatchesWholeValue(t *testing.T) {
	cases := []struct {
		rule, value string
		want        bool
	}{
		{`admin@example\.com`, "admin@example.com", true},
		{`admin@example\.com`, "sysadmin@example.com", false},
		{`admin@example\.com`, "admin@example.com.evil", false},
		{`.*admin@example\.com`, "sysadmin@example.com", true},
		{`(?i)journal@.*`, "JOURNAL@x.com", true},
		{`journal@.*`, "JOURNAL@x.com", false},
		{`a|b`, "a", true},
		{`a|b`, "ab", false}, // the alternation is inside the anchors
		{`(?i)out of office.*`, "Out of Office: away", true},
	}
	for _, tc := range cases {
		r := MustRegexp(tc.rule)
		if got := r.MatchString(tc.value); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.rule, tc.value, got, tc.want)
		}
		if r.String() != tc.rule {
			t.Errorf("String() = %q, want the source %q", r.String(), tc.rule)
		}
	}

	var zero Regexp
	if zero.MatchString("") || zero.String() != "" {
		t.Error("the zero Regexp must match nothing and print as empty")
	}
	if _, err := NewRegexp("([a-z"); err == nil || err.Error() != "\"([a-z\" is not a valid regular expression: missing closing ]: `[a-z`" {
		t.Errorf("NewRegexp error = %v", err)
	}
	if _, err := NewRegexp("a)"); err == nil || !strings.Contains(err.Error(), "unexpected )") {
		t.Errorf("NewRegexp error = %v", err)
	}
}

func TestMatchAny(t *testing.T) {
	rules := []Regexp{MustRegexp(`a.*`), MustRegexp(`.*b`), MustRegexp(`ab`)}
	cases := []struct {
		in    string
		index int
		ok    bool
	}{
		{"ab", 0, true},
		{"xb", 1, true},
		{"x", -1, false},
	}
	for _, tc := range cases {
		if i, ok := MatchAny(rules, tc.in); i != tc.index || ok != tc.ok {
			t.Errorf("MatchAny(%q) = %d, %v, want %d, %v", tc.in, i, ok, tc.index, tc.ok)
		}
	}
	if i, ok := MatchAny(nil, "x"); i != -1 || ok {
		t.Errorf("MatchAny(nil) = %d, %v", i, ok)
	}
}
