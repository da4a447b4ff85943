package main

// Exit codes of mimecrawl, documented in the README. Every command returns one of these.
const (
	exitOK      = 0 // every kept mailbox view completed
	exitFatal   = 1 // the run could not start or was stopped by a fatal error
	exitUsage   = 2 // bad command line
	exitPartial = 3 // some mailbox views failed or were interrupted; their checkpoints did not pass the failure
	exitRefused = 4 // the mailbox removal guard refused a removal; nothing was removed, the kept mailboxes were crawled
)

// severity orders exit codes for "the most severe wins": a fatal error hides everything else;
// a partial or interrupted run is worse than a refused removal (mail is missing from the index,
// where a refusal only leaves extra mail in it), so a run that was both is reported as partial.
func severity(code int) int {
	switch code {
	case exitOK:
		return 0
	case exitRefused:
		return 1
	case exitPartial:
		return 2
	case exitUsage:
		return 3
	default: // exitFatal and anything unknown
		return 4
	}
}

// worst returns the most severe of codes (exitOK for none).
func worst(codes ...int) int {
	w := exitOK
	for _, c := range codes {
		if severity(c) > severity(w) {
			w = c
		}
	}
	return w
}

// runExitCode is the one rule that turns what a run did into its exit code.
func runExitCode(s *Summary) int {
	code := exitOK
	if s.Fatal {
		code = worst(code, exitFatal)
	}
	if s.Interrupted || s.ViewsFailed > 0 || s.ViewsInterrupted > 0 || s.RemovalIncomplete {
		code = worst(code, exitPartial)
	}
	if len(s.RemovalRefused) > 0 {
		code = worst(code, exitRefused)
	}
	return code
}
