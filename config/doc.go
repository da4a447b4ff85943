// Package config loads, defaults and validates the mimecrawl configuration file.
//
// Loading happens in a fixed order, and each step only ever sees the result of the
// previous one:
//
//  1. Default() gives every setting its default value.
//  2. The YAML file is decoded strictly over those defaults: an unknown or repeated key,
//     a value of the wrong type, an unparsable duration, size, date or regular
//     expression is an error naming the key path and the line. A key given as null (or
//     with no value) keeps its default.
//  3. Environment variables (MIMECRAWL_*) override the file.
//  4. Secrets named by *_file settings are read from their files.
//  5. Validate checks every value and the rules between values.
//
// Every problem found in steps 2 to 5 is reported at once (errors.Join), each naming the
// key path, the offending value and what is allowed.
//
// Invariants:
//   - A Config returned without error by Load or Parse has passed Validate, has every
//     regular expression compiled and has Mimecast.AuthURL filled in.
//   - Secret values never appear in errors, in fmt output, in JSON or YAML output or in
//     Redacted(); only Secret.Reveal returns them.
//   - Regular expressions match the whole value (they are anchored at both ends).
//
// Where a default lives: a setting read by a component takes its default from that
// component (crawler.DefaultOptions, index.DefaultConfig, mimecast.DefaultConfig), which is
// why config imports them and they never import config (the rules they match with are
// internal/rule's). Default writes only the defaults of settings no component reads, and
// those of the alerts section, which package alerts (importing config for its vocabulary)
// takes from here (alerts.DefaultOptions).
// docs/configuration.md states every default; a test in cmd/mimecrawl holds the two together.
// config also imports alerts/celfilter, the filter language of alerts.filters, so that filters
// are compiled (and their errors reported with a position) when the configuration is loaded.
package config
