// Package body turns a raw RFC 822 message, and its attachments (PDF, OOXML, ODF,
// RTF, HTML, text, attached messages, ZIP member names: DocumentText), into
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
//     attachments are streamed and only counted, header blocks (of the
//     message and of every part) are cut at 1 MiB before they are held
//     whole, and attachment bytes kept for the caller stay in memory up to
//     Options.KeepMemory and go to one temporary file (0600, unlinked at
//     once where the system allows, removed by Text.Close) beyond it.
//   - DocumentText reads an attachment already in memory and costs at most
//     TextLimits: characters kept, bytes decompressed (ZIP members are
//     streamed; one PDF stream of at most 8 MiB is held), ZIP members, nesting
//     of attached messages, and the context's deadline, which every reading
//     loop checks, so no work outlives the call. Hostile input yields a
//     *TextError of a typed FailureKind, never a panic or a stuck goroutine.
//   - PDFs are read by PDFium compiled to WebAssembly (pdfium.go): one file
//     at a time per instance, without a file system, with memory capped at 128
//     MiB, the context checked before every page (a call into the engine is
//     not interrupted: see pdfium.go), discarded after any failure, growth or
//     deadline; at most GOMAXPROCS instances run at once.
//   - Text that is empty or mostly unmapped glyph codes is never returned as
//     text: the file fails as FailNoText or FailUnmapped instead.
package body
