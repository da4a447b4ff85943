// Package body turns a raw RFC 822 message, and text-like attachments, into
// searchable UTF-8 text.
//
// It knows MIME and HTML and nothing about where a message comes from or
// where the text goes.
//
// Invariants:
//   - Every string it returns is valid UTF-8, whatever charset (declared,
//     missing, wrong or unknown) the input used, and is capped at a byte
//     limit without splitting a character.
//   - Malformed input is read on a best-effort basis and never panics; what
//     was wrong is listed in Text.Defects, which never quotes message
//     content, so it can be logged.
//   - Memory is bounded by the caps, not by the size of the message:
//     attachments are streamed and only counted.
package body
