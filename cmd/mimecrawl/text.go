package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler/body"
)

// textCommand is the help of `mimecrawl text`: the tool an operator reaches for when a user
// asks why an attachment cannot be found.
var textCommand = command{
	name: "text", synopsis: "[--max-chars N] [--timeout D] [--verdict-only] FILE...",
	short: "print the text a crawl would index from files, and why none when none",
	long: `Reads each file as the crawl reads an attachment (same readers, limits and quality gate; the
format comes from the file name, then the bytes) and prints its text on stdout, then a verdict
line on stderr: the format, the file's bytes, the characters of text, and the reason when there
is none (corrupt, limit, timeout, encrypted, no_text_layer, unmapped_font: the value the crawl
puts in mimecast.attachment_error). It needs no configuration, credentials or network.`,
	examples: []string{
		"mimecrawl text report.pdf",
		"mimecrawl text --verdict-only *.pdf *.docx",
	},
	exits: []int{exitOK, exitFatal, exitUsage, exitPartial},
}

// textFlags are the flags of `mimecrawl text`; its defaults are the crawl's.
func textFlags(stderr io.Writer) (fs *flag.FlagSet, maxChars *int, timeout *time.Duration, verdictOnly *bool) {
	def := config.Default().Attachments
	fs = flag.NewFlagSet("mimecrawl text", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), "run `mimecrawl help text` for its flags and examples") }
	maxChars = fs.Int("max-chars", def.MaxTextChars, "characters of text kept per file (attachments.max_text_chars)")
	timeout = fs.Duration("timeout", def.TextTimeout.D(), "time allowed per file (attachments.text_timeout)")
	verdictOnly = fs.Bool("verdict-only", false, "print the verdict lines only, not the text")
	return fs, maxChars, timeout, verdictOnly
}

// runText extracts the text of each file. Exit 0 when every file gave text, 3 when some gave
// none (each verdict says why), 1 when a file could not be read at all.
func runText(args []string, stdout, stderr io.Writer) int {
	fs, maxChars, timeout, verdictOnly := textFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(stdout, textCommand, fs)
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "mimecrawl text: name at least one FILE")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := exitOK
	for _, name := range fs.Args() {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "mimecrawl text: %v\n", err)
			code = worst(code, exitFatal)
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, *timeout)
		d, err := body.DocumentText(tctx, "", filepath.Base(name), data, body.TextLimits{MaxChars: *maxChars})
		cancel()
		if ctx.Err() != nil {
			return exitFatal
		}
		if !*verdictOnly && d.Text != "" {
			fmt.Fprintln(stdout, d.Text)
		}
		line, ok := textVerdict(name, len(data), d, err)
		fmt.Fprintln(stderr, line)
		if !ok {
			code = worst(code, exitPartial)
		}
	}
	return code
}

// textVerdict is the one-line verdict on one file; ok is false when it gave no usable text.
func textVerdict(name string, size int, d body.DocText, err error) (line string, ok bool) {
	format := string(d.Format)
	if d.Format == body.FormatNone {
		format = "no text format"
	}
	line = fmt.Sprintf("== %s: %s, %d bytes, %d characters", name, format, size, utf8.RuneCountInString(d.Text))
	if d.Truncated {
		line += " (cut at the limit)"
	}
	var te *body.TextError
	switch {
	case errors.As(err, &te):
		return line + ", no text: " + string(te.Kind) + " (" + te.Err.Error() + ")", false
	case err != nil:
		return line + ", no text: " + err.Error(), false
	case d.Format == body.FormatNone:
		return line + ", no text: not a format with text", false
	}
	return line, true
}
