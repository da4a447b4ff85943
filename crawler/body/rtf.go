package body

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/charmap"
)

// maxRTFGroups caps the nesting of RTF groups: Word writes a few dozen.
const maxRTFGroups = 1000

var errTooDeep = errors.New("nested too deep")

// rtfDestinations are groups whose content is not document text.
var rtfDestinations = map[string]bool{
	"fonttbl": true, "colortbl": true, "stylesheet": true, "info": true, "pict": true,
	"object": true, "themedata": true, "colorschememapping": true, "datastore": true,
	"latentstyles": true, "listtable": true, "listoverridetable": true, "rsidtbl": true,
	"generator": true, "xmlnstbl": true, "filetbl": true, "revtbl": true, "pgdsctbl": true,
	"fldinst": true, "bkmkstart": true, "bkmkend": true, "datafield": true,
}

// rtfText reads the text of an RTF document: plain characters, \'hh (windows-1252) and \uN
// escapes, paragraph and tab controls, skipping destinations that are not text (font and
// colour tables, pictures, "\*" groups).
func rtfText(w *textBuf, data []byte) error {
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \r\n\t"), []byte(`{\rtf`)) {
		return errors.New("no RTF header")
	}
	type group struct {
		skip bool
		star bool // this group began "{\*": skipped unless its destination is text (footnote)
		note bool // this group is a footnote: a space separates it from the text around it
		uc   int  // characters to skip after \uN
	}
	stack := []group{{uc: 1}}
	skipChars := 0 // fallback characters left to skip after \uN
	var run strings.Builder
	flush := func() error {
		if run.Len() == 0 {
			return nil
		}
		err := w.write(run.String())
		run.Reset()
		return err
	}
	for i := 0; i < len(data); {
		if i&0xffff == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		top := &stack[len(stack)-1]
		ch := data[i]
		switch ch {
		case '{':
			if len(stack) >= maxRTFGroups {
				return fmt.Errorf("rtf groups: %w", errTooDeep)
			}
			stack = append(stack, group{skip: top.skip, uc: top.uc})
			i++
			continue
		case '}':
			if len(stack) > 1 {
				if top.note && !top.skip {
					run.WriteByte(' ')
				}
				stack = stack[:len(stack)-1]
			}
			i++
			continue
		case '\r', '\n':
			i++
			continue
		case '\\':
		default:
			if !top.skip {
				if skipChars > 0 {
					skipChars--
				} else {
					writeCP1252(&run, ch)
				}
			}
			i++
			continue
		}
		// A control word or symbol.
		i++
		if i >= len(data) {
			break
		}
		c := data[i]
		switch {
		case c == '\'':
			if i+2 < len(data) {
				if v, err := strconv.ParseUint(string(data[i+1:i+3]), 16, 8); err == nil && !top.skip {
					if skipChars > 0 {
						skipChars--
					} else {
						writeCP1252(&run, byte(v))
					}
				}
			}
			i += 3
			continue
		case c == '*':
			top.star = !top.skip
			top.skip = true
			i++
			continue
		case c == '{' || c == '}' || c == '\\':
			if !top.skip {
				run.WriteByte(c)
			}
			i++
			continue
		case c == '~':
			if !top.skip {
				run.WriteByte(' ')
			}
			i++
			continue
		case !isASCIILetter(c):
			i++
			continue
		}
		j := i
		for j < len(data) && isASCIILetter(data[j]) && j-i < 32 {
			j++
		}
		word := string(data[i:j])
		k := j
		if k < len(data) && data[k] == '-' {
			k++
		}
		for k < len(data) && data[k] >= '0' && data[k] <= '9' && k-j < 11 {
			k++
		}
		param, hasParam := 0, k > j
		if hasParam {
			param, _ = strconv.Atoi(string(data[j:k]))
		}
		if k < len(data) && data[k] == ' ' {
			k++ // the delimiting space belongs to the control word
		}
		i = k
		switch {
		case word == "footnote" && (top.star || !top.skip):
			// A footnote is text, also when written as an ignorable destination ({\*\footnote},
			// as some writers do): read it, apart from the words around it.
			top.skip, top.star, top.note = false, false, true
			run.WriteByte(' ')
		case rtfDestinations[word]:
			top.skip = true
		case top.skip:
		case word == "par" || word == "line" || word == "row" || word == "page" || word == "sect":
			if err := flush(); err != nil {
				return err
			}
			w.newline()
		case word == "tab" || word == "cell":
			run.WriteByte(' ')
		case word == "uc" && hasParam:
			top.uc = max(0, param)
		case word == "u" && hasParam:
			if param < 0 {
				param += 65536
			}
			run.WriteRune(rune(param))
			skipChars = top.uc
		}
		top.star = false // "\*" speaks of the control word right after it only
		if run.Len() > 4096 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// writeCP1252 writes one windows-1252 byte as UTF-8.
func writeCP1252(b *strings.Builder, c byte) {
	if c < 0x80 {
		b.WriteByte(c)
		return
	}
	b.WriteRune(charmap.Windows1252.DecodeByte(c))
}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// messageText reads an attached message: its subject, body and the text of its attachments,
// those nested no deeper than lim.MaxNesting.
func messageText(ctx context.Context, w *textBuf, data []byte, lim TextLimits, depth int) error {
	if depth >= lim.MaxNesting {
		return fmt.Errorf("attached message: %w (more than %d levels)", errTooDeep, lim.MaxNesting)
	}
	// The message is in memory already and parts are at most as large as it: keeping them
	// in memory at most doubles it, and nothing spills to disk.
	t, err := Extract(bytes.NewReader(data), Options{MaxTextBytes: 4 * lim.MaxChars,
		KeepAttachments: int64(len(data)), KeepMemory: int64(len(data)) + 1})
	defer t.Close()
	if err != nil && !errors.Is(err, ErrNoContent) {
		return fmt.Errorf("read attached message: %w", err)
	}
	if errors.Is(err, ErrNoContent) {
		return fmt.Errorf("attached message: %w", err)
	}
	if err := w.write(t.Subject); err != nil {
		return err
	}
	w.newline()
	if err := w.write(t.Text); err != nil {
		return err
	}
	for i := range t.Parts {
		p := &t.Parts[i]
		w.newline()
		if err := w.write(p.Filename); err != nil {
			return err
		}
		data, _ := p.Bytes()
		if data == nil {
			continue
		}
		if depth+1 >= lim.MaxNesting && p.ContentType == "message/rfc822" {
			continue // deeper messages give their name only: nesting is bounded, not a failure
		}
		sub := lim
		sub.MaxChars = w.max - w.chars
		if sub.MaxChars <= 0 {
			return errTextFull
		}
		d, err := documentText(ctx, p.ContentType, p.Filename, data, sub, depth+1)
		if err != nil {
			var te *TextError
			if errors.As(err, &te) && te.Kind == FailTimeout {
				return err
			}
			// A broken attachment of an attached message costs its own text only.
		}
		w.newline()
		if err := w.write(d.Text); err != nil {
			return err
		}
	}
	return nil
}
