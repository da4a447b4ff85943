package simulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"html"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// RFC 822 rendering. Messages are written by hand with the standard library's MIME helpers
// (RFC 2047 words, RFC 2231 parameters, quoted-printable) so every byte is under our control
// and identical across runs. Boundaries start with "=_", which can occur neither in base64
// nor in quoted-printable output, so no body can contain one.

// headerField is one top-level header in order of appearance; value is unfolded.
type headerField struct{ name, value string }

// attachmentData is one generated attachment with its digest.
type attachmentData struct {
	spec   attSpec
	data   []byte
	sha256 string
}

// attachmentBytes generates the bytes of one attachment from (seed, seq, index).
func attachmentBytes(seed int64, seq uint32, a attSpec) []byte {
	r := msgRand(seed, seq, 100+uint64(a.index))
	switch a.kind {
	case attText:
		return wordBytes(r, a.target)
	case attCSV:
		b := make([]byte, 0, a.target+64)
		b = append(b, "date,customer,item,amount,currency\r\n"...)
		for len(b) < a.target {
			b = append(b, "2025-"...)
			b = append2(b, 1+r.IntN(12))
			b = append(b, '-')
			b = append2(b, 1+r.IntN(28))
			b = append(b, ',')
			b = append(b, lastNames[r.IntN(len(lastNames))]...)
			b = append(b, ',')
			b = append(b, bodyWords[r.IntN(len(bodyWords))]...)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(r.IntN(10000)), 10)
			b = append(b, '.')
			b = append2(b, r.IntN(100))
			b = append(b, ",EUR\r\n"...)
		}
		return b
	case attPDF, attDOCX, attXLSX, attPPTX, attODT, attODS, attODP, attRTF, attHTML,
		attTokenCSV, attTokenTXT, attEML, attBrokenDOCX, attBrokenPDF:
		return documentBytes(seed, seq, a, r)
	case attPNG:
		return pngBytes(seed, seq, a)
	default:
		return randomBytes(seed, seq, a.index, a.target)
	}
}

// append2 appends n (0..99) as two digits.
func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// wordBytes is about size bytes of ASCII words, twelve to a CRLF-terminated line.
func wordBytes(r *rand.Rand, size int) []byte {
	b := make([]byte, 0, size+16)
	for i := 0; len(b) < size; i++ {
		b = append(b, bodyWords[r.IntN(len(bodyWords))]...)
		if i%12 == 11 {
			b = append(b, '\r', '\n')
		} else {
			b = append(b, ' ')
		}
	}
	return b
}

// randomBytes is n pseudo-random bytes from a ChaCha8 stream keyed by (seed, seq, index);
// ChaCha8 is fast enough to make megabytes on demand.
func randomBytes(seed int64, seq uint32, index, n int) []byte {
	var key [32]byte
	base := mix64(uint64(seed) ^ mix64(uint64(seq)<<8|uint64(index)))
	for i := range 4 {
		binary.LittleEndian.PutUint64(key[i*8:], mix64(base+uint64(i)))
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

// documentBytes writes a real office file whose text is a few words and the attachment's
// text token; a large PDF reaches its target size with an image.
func documentBytes(seed int64, seq uint32, a attSpec, r *rand.Rand) []byte {
	words := make([]string, 10+r.IntN(30))
	for i := range words {
		words[i] = bodyWords[r.IntN(len(bodyWords))]
	}
	token := textToken(seed, seq, a.index)
	switch a.kind {
	case attPDF:
		var pad []byte
		if a.target > 4096 {
			pad = randomBytes(seed, seq, a.index, a.target-1024)
		}
		return pdfDocument(strings.Join(append(words, token), " "), pad)
	case attDOCX:
		return SampleDocument(DocDOCX, token, words...)
	case attXLSX:
		return SampleDocument(DocXLSX, token, words...)
	case attPPTX:
		return SampleDocument(DocPPTX, token, words...)
	case attODT:
		return SampleDocument(DocODT, token, words...)
	case attODS:
		return SampleDocument(DocODS, token, words...)
	case attODP:
		return SampleDocument(DocODP, token, words...)
	case attRTF:
		return SampleDocument(DocRTF, token, words...)
	case attHTML:
		return SampleDocument(DocHTML, token, words...)
	case attTokenCSV:
		return SampleDocument(DocCSV, token, words...)
	case attTokenTXT:
		return SampleDocument(DocTXT, token, words...)
	case attEML:
		return SampleDocument(DocEML, token, words...)
	case attBrokenDOCX:
		full := SampleDocument(DocDOCX, token, words...)
		return full[:len(full)/2]
	default:
		return brokenPDF(strings.Join(words, " "))
	}
}

// pngBytes writes a valid RGB PNG of random pixels whose size is close to the target. The
// image data uses stored (uncompressed) deflate blocks: cheap to produce, still a real PNG.
func pngBytes(seed int64, seq uint32, a attSpec) []byte {
	const width = 32
	rowLen := 1 + width*3
	height := max(1, (a.target-100)/rowLen)
	raw := randomBytes(seed, seq, a.index, rowLen*height)
	for y := range height {
		raw[y*rowLen] = 0 // filter type None
	}
	var b bytes.Buffer
	b.Grow(len(raw) + 128)
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], width)
	binary.BigEndian.PutUint32(ihdr[4:], uint32(height))
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	pngChunk(&b, "IHDR", ihdr)
	pngChunk(&b, "IDAT", storedZlib(raw))
	pngChunk(&b, "IEND", nil)
	return b.Bytes()
}

func pngChunk(b *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	b.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	b.Write(n[:])
}

// attachments generates every attachment of c with its digest.
func (c *content) attachments(seed int64) []attachmentData {
	out := make([]attachmentData, len(c.atts))
	for i, a := range c.atts {
		data := attachmentBytes(seed, c.ref.seq, a)
		sum := sha256.Sum256(data)
		out[i] = attachmentData{spec: a, data: data, sha256: hex.EncodeToString(sum[:])}
	}
	return out
}

// plainText is the text/plain rendition (CRLF line ends, as MIME canonical form wants).
func (c *content) plainText() string { return strings.Join(c.lines, "\r\n") + "\r\n" }

// htmlText is the text/html rendition.
func (c *content) htmlText() string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>")
	b.WriteString(html.EscapeString(c.subject))
	b.WriteString("</title></head>\r\n<body>\r\n")
	for _, l := range c.lines {
		if l == "" {
			continue
		}
		b.WriteString("<p>")
		b.WriteString(html.EscapeString(l))
		b.WriteString("</p>\r\n")
	}
	b.WriteString("</body></html>\r\n")
	return b.String()
}

// preview is messageBodyPreview: the start of the text, capped at 100 characters.
func (c *content) preview() string {
	s := strings.Join(strings.Fields(strings.Join(c.lines, " ")), " ")
	if utf8.RuneCountInString(s) <= 100 {
		return s
	}
	return string([]rune(s)[:100])
}

func formatAddress(a api.Address) string {
	return (&mail.Address{Name: a.DisplayableName, Address: a.EmailAddress}).String()
}

func formatAddressList(list []api.Address) string {
	parts := make([]string, len(list))
	for i, a := range list {
		parts[i] = formatAddress(a)
	}
	return strings.Join(parts, ", ")
}

// encodeSubject renders a subject as RFC 2047 encoded words when it is not plain ASCII;
// B encoding for text that is mostly non-Latin, Q otherwise.
func encodeSubject(s string) string {
	ascii := true
	nonLatin := 0
	for _, r := range s {
		if r >= utf8.RuneSelf {
			ascii = false
		}
		if r > 0x24F {
			nonLatin++
		}
	}
	if ascii {
		return s
	}
	if nonLatin*2 > utf8.RuneCountInString(s) {
		return mime.BEncoding.Encode("utf-8", s)
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// headers returns the top-level header fields (without the MIME structure fields).
func (c *content) headers() []headerField {
	recv := c.ref.received.UTC()
	hops := []headerField{
		// The envelope sender, stamped by the delivering server (RFC 5321 4.4); the detail
		// reports the same address as envelopeFrom.
		{"Return-Path", "<" + c.from.EmailAddress + ">"},
		{"Received", fmt.Sprintf("from relay.mimecast.example (relay.mimecast.example [203.0.113.7]) by archive.mimecast.example with ESMTPS id %s; %s",
			c.smash[:12], recv.Format(rfc5322Date))},
		{"Received", fmt.Sprintf("from mail.%s (mail.%s [%s]) by relay.mimecast.example with ESMTP id %s; %s",
			hostOf(c.from.EmailAddress), hostOf(c.from.EmailAddress), c.relayIP, c.smash[12:24], recv.Add(-time.Second).Format(rfc5322Date))},
		{"Authentication-Results", fmt.Sprintf("relay.mimecast.example; spf=pass smtp.mailfrom=%s; dkim=pass header.d=%s; dmarc=pass",
			c.from.EmailAddress, hostOf(c.from.EmailAddress))},
	}
	h := append(hops,
		headerField{"Date", c.date.Format(rfc5322Date)},
		headerField{"From", formatAddress(c.from)},
		headerField{"To", formatAddressList(c.to)},
	)
	if len(c.cc) > 0 {
		h = append(h, headerField{"Cc", formatAddressList(c.cc)})
	}
	h = append(h,
		headerField{"Subject", encodeSubject(c.subject)},
		headerField{"Message-ID", c.messageID},
		headerField{"X-Mailer", c.mailer},
		headerField{"MIME-Version", "1.0"},
	)
	return h
}

const rfc5322Date = "Mon, 02 Jan 2006 15:04:05 -0700"

// writeHeader writes one header field, folding RFC 2047 words onto continuation lines.
func writeHeader(w *bytes.Buffer, name, value string) {
	w.WriteString(name)
	w.WriteByte(':')
	if value != "" {
		w.WriteByte(' ')
		w.WriteString(strings.ReplaceAll(value, "?= =?", "?=\r\n =?"))
	}
	w.WriteString("\r\n")
}

func boundary(c *content, level string) string {
	return "=_" + level + "_" + c.smash[:16]
}

// render writes the whole RFC 822 message; atts are the generated attachments of c. With
// measure set it skips encoding attachment bodies and returns how many bytes they would
// have taken, so sizes can be computed without base64-encoding megabytes.
func (c *content) render(w *bytes.Buffer, atts []attachmentData, measure bool) (skipped int) {
	for _, h := range c.headers() {
		writeHeader(w, h.name, h.value)
	}
	if len(atts) == 0 {
		c.writeBody(w)
		return 0
	}
	mixed := boundary(c, "mixed")
	writeHeader(w, "Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mixed}))
	w.WriteString("\r\nThis is a multi-part message in MIME format.\r\n")
	w.WriteString("\r\n--" + mixed + "\r\n")
	c.writeBody(w)
	for _, a := range atts {
		w.WriteString("\r\n--" + mixed + "\r\n")
		ctParams, dispParams := map[string]string{}, map[string]string{}
		if a.spec.filename != "" {
			ctParams["name"] = a.spec.filename
			dispParams["filename"] = a.spec.filename
		}
		writeHeader(w, "Content-Type", mime.FormatMediaType(a.spec.contentType(), ctParams))
		writeHeader(w, "Content-Disposition", mime.FormatMediaType("attachment", dispParams))
		if a.spec.kind == attEML {
			// RFC 2046 allows no base64 for message/rfc822; the generated message is 7-bit
			// text with CRLF line ends.
			writeHeader(w, "Content-Transfer-Encoding", "7bit")
			w.WriteString("\r\n")
			if measure {
				skipped += len(a.data)
			} else {
				w.Write(a.data)
			}
			continue
		}
		writeHeader(w, "Content-Transfer-Encoding", "base64")
		w.WriteString("\r\n")
		if measure {
			skipped += base64Len(len(a.data))
		} else {
			writeBase64(w, a.data)
		}
	}
	w.WriteString("\r\n--" + mixed + "--\r\n")
	return skipped
}

// writeBody writes the Content-Type of the body entity, a blank line and the body.
func (c *content) writeBody(w *bytes.Buffer) {
	switch c.layout {
	case layoutAltQP, layoutAltBase64:
		enc := "quoted-printable"
		if c.layout == layoutAltBase64 {
			enc = "base64"
		}
		alt := boundary(c, "alt")
		writeHeader(w, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": alt}))
		w.WriteString("\r\n--" + alt + "\r\n")
		writeTextPart(w, "text/plain", "utf-8", enc, []byte(c.plainText()))
		w.WriteString("\r\n--" + alt + "\r\n")
		writeTextPart(w, "text/html", "utf-8", enc, []byte(c.htmlText()))
		w.WriteString("\r\n--" + alt + "--\r\n")
	case layoutHTMLOnly:
		writeTextPart(w, "text/html", "utf-8", "quoted-printable", []byte(c.htmlText()))
	case layoutPlainB64:
		writeTextPart(w, "text/plain", "utf-8", "base64", []byte(c.plainText()))
	case layoutLatin1:
		writeTextPart(w, "text/plain", "iso-8859-1", "quoted-printable", toLatin1(c.plainText()))
	}
}

func writeTextPart(w *bytes.Buffer, ctype, charset, enc string, body []byte) {
	writeHeader(w, "Content-Type", mime.FormatMediaType(ctype, map[string]string{"charset": charset}))
	writeHeader(w, "Content-Transfer-Encoding", enc)
	w.WriteString("\r\n")
	if enc == "base64" {
		writeBase64(w, body)
		return
	}
	qp := quotedprintable.NewWriter(w)
	qp.Write(body)
	qp.Close()
}

// writeBase64 writes data base64-encoded in lines of 76 characters.
func writeBase64(w *bytes.Buffer, data []byte) {
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(data)))
	base64.StdEncoding.Encode(enc, data)
	w.Grow(len(enc) + len(enc)/38 + 2)
	for len(enc) > 0 {
		n := min(len(enc), 76)
		w.Write(enc[:n])
		w.WriteString("\r\n")
		enc = enc[n:]
	}
}

// base64Len is the length writeBase64 produces for n bytes.
func base64Len(n int) int {
	enc := base64.StdEncoding.EncodedLen(n)
	return enc + 2*((enc+75)/76)
}

// toLatin1 converts text whose runes are all below U+0100 to ISO-8859-1 bytes ('?' otherwise).
func toLatin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x100 {
			out = append(out, byte(r))
		} else {
			out = append(out, '?')
		}
	}
	return out
}

// part renders one rendition for get-message-part, in UTF-8. A missing rendition is derived
// from the other one (inferred: the real API converts rather than failing).
func (c *content) part(typ string) ([]byte, string) {
	switch typ {
	case api.PartHTML:
		if c.layout.hasHTML() {
			return []byte(c.htmlText()), "text/html; charset=utf-8"
		}
		return []byte("<html><body><pre>" + html.EscapeString(c.plainText()) + "</pre></body></html>\r\n"), "text/html; charset=utf-8"
	default:
		return []byte(c.plainText()), "text/plain; charset=utf-8"
	}
}

// rfc822 renders the whole message into a new slice.
func (c *content) rfc822(seed int64) ([]byte, []attachmentData) {
	atts := c.attachments(seed)
	var b bytes.Buffer
	size := 4096
	for _, a := range atts {
		size += base64Len(len(a.data)) + 256
	}
	b.Grow(size)
	c.render(&b, atts, false)
	return b.Bytes(), atts
}

// measure returns the RFC 822 size of the message given its generated attachments.
func (c *content) measure(atts []attachmentData) int64 {
	var b bytes.Buffer
	b.Grow(8192)
	skipped := c.render(&b, atts, true)
	return int64(b.Len() + skipped)
}
