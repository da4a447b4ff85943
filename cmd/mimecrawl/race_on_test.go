//go:build race

package main

// raceEnabled: the test binary runs under the race detector, so the mimecrawl binary the
// process tests start is built with it too.
const raceEnabled = true
