package main

import "github.com/mimecrawl/mimecrawl/internal/job"

// Exit codes of mimecrawl, documented in the README; the rule that picks one is run's
// (job.Summary.Outcome, job.Worst).
const (
	exitOK      = int(job.CodeOK)
	exitFatal   = int(job.CodeFatal)
	exitUsage   = int(job.CodeUsage)
	exitPartial = int(job.CodePartial)
	exitRefused = int(job.CodeRefused)
)

// worst returns the most severe of codes (job.Worst).
func worst(codes ...int) int {
	cs := make([]job.Code, len(codes))
	for i, c := range codes {
		cs[i] = job.Code(c)
	}
	return int(job.Worst(cs...))
}
