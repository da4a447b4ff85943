package body

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// blockBreaks tells how many line breaks an element's start and end stand
// for: paragraphs and headings leave a blank line, other blocks end a line,
// inline elements none.
func blockBreaks(tag atom.Atom) int {
	switch tag {
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote:
		return 2
	case atom.Address, atom.Article, atom.Aside, atom.Caption, atom.Center, atom.Dd,
		atom.Details, atom.Dialog, atom.Dir, atom.Div, atom.Dl, atom.Dt, atom.Fieldset,
		atom.Figcaption, atom.Figure, atom.Footer, atom.Form, atom.Header, atom.Hr, atom.Li,
		atom.Main, atom.Menu, atom.Nav, atom.Ol, atom.Pre, atom.Section, atom.Summary,
		atom.Table, atom.Tbody, atom.Tfoot, atom.Thead, atom.Tr, atom.Ul:
		return 1
	}
	return 0
}

// skipped reports elements that hold no readable text: code, styling, the
// document title (mail clients do not show it), and raw-text fallbacks that
// the tokenizer hands over with their markup unparsed.
func skipped(tag atom.Atom) bool {
	switch tag {
	case atom.Script, atom.Style, atom.Template, atom.Title, atom.Noscript, atom.Iframe,
		atom.Noembed, atom.Noframes:
		return true
	}
	return false
}

// HTMLToText converts HTML to readable text: script, style and similar
// elements are dropped, block elements become line breaks, table cells are
// separated by spaces, entities are decoded and runs of white space collapse
// to one space (except inside <pre>). At most one blank line separates
// paragraphs. Invalid UTF-8 becomes U+FFFD. The error is that of reading r;
// the text read until then is returned with it.
func HTMLToText(r io.Reader) (string, error) {
	z := html.NewTokenizer(r)
	var w textWriter
	skip, pre := 0, 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return w.String(), fmt.Errorf("read HTML: %w", err)
			}
			return w.String(), nil
		case html.TextToken:
			if skip == 0 {
				w.text(z.Text(), pre > 0)
			}
			continue
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
		default:
			continue // comments and doctypes
		}
		name, _ := z.TagName()
		// Lookup maps a name to a constant without allocating.
		tag := atom.Lookup(name)
		switch {
		case tag == atom.Br:
			// Browsers treat a stray </br> as <br> too.
			w.lineBreak()
		case skipped(tag):
			switch tt {
			case html.StartTagToken:
				skip++
			case html.EndTagToken:
				skip = max(skip-1, 0)
			}
		case (tag == atom.Td || tag == atom.Th) && tt != html.EndTagToken:
			w.cell()
		default:
			if tag == atom.Pre {
				switch tt {
				case html.StartTagToken:
					pre++
				case html.EndTagToken:
					pre = max(pre-1, 0)
				}
			}
			w.block(blockBreaks(tag))
		}
	}
}

// textWriter accumulates text, owing separators until the next visible
// character so that none is ever written at the start or the end.
type textWriter struct {
	b     strings.Builder
	nl    int  // line breaks owed, at most 2
	space bool // a space owed
}

func (w *textWriter) String() string { return w.b.String() }

// block owes n line breaks (0 for inline elements).
func (w *textWriter) block(n int) {
	if n > w.nl {
		w.nl = n
	}
}

func (w *textWriter) lineBreak() {
	if w.nl < 2 {
		w.nl++
	}
}

func (w *textWriter) cell() {
	if w.nl == 0 {
		w.space = true
	}
}

// flush writes what is owed before a visible character.
func (w *textWriter) flush() {
	started := w.b.Len() > 0
	switch {
	case w.nl > 0:
		if started {
			w.b.WriteString("\n\n"[:w.nl])
		}
	case w.space:
		if started {
			w.b.WriteByte(' ')
		}
	}
	w.nl, w.space = 0, false
}

func (w *textWriter) text(s []byte, pre bool) {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		switch {
		case invisible(r):
		case pre && r == '\n':
			w.lineBreak()
		case pre && r == '\r':
		case pre && (r == ' ' || r == '\t'):
			w.flush()
			w.b.WriteRune(r)
		case unicode.IsSpace(r):
			w.space = true
		default:
			w.flush()
			w.b.WriteRune(r)
		}
	}
}

// invisible reports characters that render as nothing. Bulk mail pads its
// preview text with long runs of them.
func invisible(r rune) bool {
	switch r {
	case '\u00ad', '\u034f', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff':
		return true
	}
	return false
}
