package main

import "testing"

func TestRunExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		sum  Summary
		want int
	}{
		{"ok", Summary{ViewsComplete: 3}, exitOK},
		{"failed view", Summary{ViewsComplete: 2, ViewsFailed: 1}, exitPartial},
		{"interrupted view", Summary{ViewsInterrupted: 1}, exitPartial},
		{"signal before any view", Summary{Interrupted: true}, exitPartial},
		{"removal refused", Summary{ViewsComplete: 3, RemovalRefused: []string{"a"}}, exitRefused},
		{"refused and interrupted is partial, never only refused", Summary{RemovalRefused: []string{"a"}, Interrupted: true, ViewsInterrupted: 2}, exitPartial},
		{"refused and a failed view", Summary{RemovalRefused: []string{"a"}, ViewsFailed: 1}, exitPartial},
		{"removal incomplete", Summary{ViewsComplete: 1, RemovalIncomplete: true}, exitPartial},
		{"fatal wins over everything", Summary{Fatal: true, Interrupted: true, ViewsFailed: 1, RemovalRefused: []string{"a"}}, exitFatal},
		{"breaker", Summary{Fatal: true, ViewsComplete: 5}, exitFatal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runExitCode(&tc.sum); got != tc.want {
				t.Errorf("exit code %d, want %d", got, tc.want)
			}
		})
	}
}

func TestWorst(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  int
	}{
		{nil, exitOK},
		{[]int{exitOK, exitRefused}, exitRefused},
		{[]int{exitRefused, exitPartial}, exitPartial},
		{[]int{exitPartial, exitRefused}, exitPartial},
		{[]int{exitPartial, exitFatal, exitRefused}, exitFatal},
		{[]int{exitUsage, exitPartial}, exitUsage},
	} {
		if got := worst(tc.codes...); got != tc.want {
			t.Errorf("worst(%v) = %d, want %d", tc.codes, got, tc.want)
		}
	}
}
