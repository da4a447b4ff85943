// Package celfilter is the filter language of alerts.filters: it declares the CEL
// environment (the variables alert, raw and source), compiles an expression and evaluates
// it within a cost limit.
//
// It is a leaf package (it imports no other mimecrawl package) so that package config can
// compile every filter when the configuration is loaded, and report a bad expression with
// its position, without importing package alerts; package alerts builds the variables and
// evaluates the compiled programs.
//
// Invariants:
//   - A compiled Program has a boolean result type: an expression whose type is not bool
//     (including dyn, such as raw.taggedMalicious on its own) is a compile error.
//   - A field of alert that does not exist (alert.verdcit) is a compile error; raw is a
//     map whose keys are not known in advance, so a missing raw key is an evaluation error.
//   - Evaluation is bounded by CostLimit and a deadline (EvalContext's context); meeting
//     either is an error wrapping ErrLimit, never a hang. CEL charges a call after it
//     returns, so every single call is bounded too: strings are cut to MaxStringBytes
//     before the expression reads them, and a matches pattern is a literal whose RE2
//     program has at most MaxRegexProgramSize instructions (checked by Compile).
package celfilter
