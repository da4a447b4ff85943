package job

import "testing"

// TestOutcome: the one rule from what a run did to its exit code.
func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		sum  Summary
		want Code
	}{
		{"ok", Summary{ViewsComplete: 3}, CodeOK},
		{"failed view", Summary{ViewsComplete: 2, ViewsFailed: 1}, CodePartial},
		{"interrupted view", Summary{ViewsInterrupted: 1}, CodePartial},
		{"signal before any view", Summary{Interrupted: true}, CodePartial},
		{"removal refused", Summary{ViewsComplete: 3, RemovalRefused: []string{"a"}}, CodeRefused},
		{"refused and interrupted is partial, never only refused", Summary{RemovalRefused: []string{"a"}, Interrupted: true, ViewsInterrupted: 2}, CodePartial},
		{"refused and a failed view", Summary{RemovalRefused: []string{"a"}, ViewsFailed: 1}, CodePartial},
		{"removal incomplete", Summary{ViewsComplete: 1, RemovalIncomplete: true}, CodePartial},
		{"fatal wins over everything", Summary{Fatal: true, Interrupted: true, ViewsFailed: 1, RemovalRefused: []string{"a"}}, CodeFatal},
		{"breaker", Summary{Fatal: true, ViewsComplete: 5}, CodeFatal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sum.Outcome(); got != tc.want {
				t.Errorf("exit code %d, want %d", got, tc.want)
			}
		})
	}
}

func TestWorst(t *testing.T) {
	for _, tc := range []struct {
		codes []Code
		want  Code
	}{
		{nil, CodeOK},
		{[]Code{CodeOK, CodeRefused}, CodeRefused},
		{[]Code{CodeRefused, CodePartial}, CodePartial},
		{[]Code{CodePartial, CodeRefused}, CodePartial},
		{[]Code{CodePartial, CodeFatal, CodeRefused}, CodeFatal},
		{[]Code{CodeUsage, CodePartial}, CodeUsage},
	} {
		if got := Worst(tc.codes...); got != tc.want {
			t.Errorf("Worst(%v) = %d, want %d", tc.codes, got, tc.want)
		}
	}
}
