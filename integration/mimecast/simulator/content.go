package simulator

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// A message's content is a pure function of (seed, seq, view, received, owner mailbox): the
// simulator keeps only those few fields per message and derives subject, people, body and
// attachments again whenever they are needed. Features that tests must find in a small
// archive (empty subjects, HTML-only bodies, ISO-8859-1 bodies, non-ASCII file names, large
// attachments, ...) are tied to seq residues so that every default-sized archive has them.

// bodyLayout is the MIME shape of the message body.
type bodyLayout int

const (
	layoutAltQP     bodyLayout = iota // multipart/alternative, plain + html, quoted-printable UTF-8
	layoutAltBase64                   // multipart/alternative, plain + html, base64 UTF-8
	layoutHTMLOnly                    // text/html only, quoted-printable UTF-8
	layoutPlainB64                    // text/plain only, base64 UTF-8
	layoutLatin1                      // text/plain only, ISO-8859-1, quoted-printable
)

var layoutBySeq = []bodyLayout{layoutAltQP, layoutAltBase64, layoutHTMLOnly, layoutAltQP, layoutPlainB64, layoutLatin1}

func (l bodyLayout) hasHTML() bool {
	return l == layoutAltQP || l == layoutAltBase64 || l == layoutHTMLOnly
}
func (l bodyLayout) hasText() bool { return l != layoutHTMLOnly }

// attKind is the kind of generated attachment bytes.
type attKind int

const (
	attText attKind = iota
	attCSV
	attPDF
	attPNG
	attBinary
	attDOCX // this kind and those below are tied to seq residues (docKinds), never drawn
	attXLSX
	attPPTX
	attODT
	attODS
	attODP
	attRTF
	attHTML
	attTokenCSV   // a CSV with a text token, unlike the random attCSV
	attTokenTXT   // a plain text with a text token, unlike the random attText
	attEML        // an attached message (message/rfc822) whose body holds the token
	attBrokenDOCX // a DOCX cut in half: the zip has no central directory
	attBrokenPDF  // a PDF whose content stream is not valid deflate data
	attKinds
)

// attRandomKinds bounds the kinds drawn at random: attText up to attBinary.
const attRandomKinds = attBinary + 1

// docKinds are the documents one message in docEvery carries as its first attachment, in
// turn: every format whose text is searched, and the broken ones, appear in any archive of
// two hundred messages (docEvery*len(docKinds), plus the turn a large message takes).
var docKinds = []attKind{attPDF, attDOCX, attXLSX, attPPTX, attODT, attODS, attODP, attRTF,
	attHTML, attTokenCSV, attTokenTXT, attEML, attBrokenDOCX, attBrokenPDF}

const docEvery = 8

var attTypes = [attKinds]struct{ contentType, ext string }{
	attText:       {"text/plain", "txt"},
	attCSV:        {"text/csv", "csv"},
	attPDF:        {"application/pdf", "pdf"},
	attPNG:        {"image/png", "png"},
	attBinary:     {"application/octet-stream", "bin"},
	attDOCX:       {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
	attXLSX:       {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
	attPPTX:       {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"},
	attODT:        {"application/vnd.oasis.opendocument.text", "odt"},
	attODS:        {"application/vnd.oasis.opendocument.spreadsheet", "ods"},
	attODP:        {"application/vnd.oasis.opendocument.presentation", "odp"},
	attRTF:        {"application/rtf", "rtf"},
	attHTML:       {"text/html", "html"},
	attTokenCSV:   {"text/csv", "csv"},
	attTokenTXT:   {"text/plain", "txt"},
	attEML:        {"message/rfc822", "eml"},
	attBrokenDOCX: {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
	attBrokenPDF:  {"application/pdf", "pdf"},
}

// hasTextToken tells the kinds whose file carries searchable text with a token of its own.
func (k attKind) hasTextToken() bool {
	switch k {
	case attPDF, attDOCX, attXLSX, attPPTX, attODT, attODS, attODP, attRTF, attHTML,
		attTokenCSV, attTokenTXT, attEML:
		return true
	}
	return false
}

// broken tells the kinds whose file no reader can open.
func (k attKind) broken() bool { return k == attBrokenDOCX || k == attBrokenPDF }

// attSpec describes one attachment; its bytes come from attachmentBytes.
type attSpec struct {
	index    int
	kind     attKind
	filename string // "" = unnamed attachment
	target   int    // approximate size in bytes
}

func (a attSpec) contentType() string { return attTypes[a.kind].contentType }
func (a attSpec) ext() string         { return attTypes[a.kind].ext }

// msgRef is what the simulator stores about a message plus its owner's address: everything
// content generation needs.
type msgRef struct {
	seq      uint32
	view     string
	received time.Time
	owner    api.Address
}

// content is the derived description of one message.
type content struct {
	ref       msgRef
	subject   string
	from      api.Address
	to        []api.Address
	cc        []api.Address
	date      time.Time // header Date, in the sender's zone
	messageID string    // with angle brackets
	smash     string
	layout    bodyLayout
	lines     []string // body text lines, UTF-8
	token     string   // unique word present in the body
	atts      []attSpec
	mailer    string
	read      bool
	relayIP   string
}

// mix64 is splitmix64's finaliser: spreads (seed, seq) into independent-looking streams.
func mix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// msgRand returns the random stream of one aspect (stream) of one message.
func msgRand(seed int64, seq uint32, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(mix64(uint64(seed)^mix64(uint64(seq))), mix64(stream)))
}

// receivedOffset is how far before the epoch a seeded message was received, in [0, span).
func receivedOffset(seed int64, seq uint32, spanSeconds int64) int64 {
	return int64(mix64(uint64(seed)^mix64(uint64(seq)^0xA5A5)) % uint64(spanSeconds))
}

// bodyToken is a unique, searchable word: letters and digits only, so analyzers keep it whole.
func bodyToken(seed int64, seq uint32) string {
	h := mix64(uint64(seed) ^ mix64(uint64(seq)^0x70CE))
	return "zq" + strconv.FormatUint(uint64(seq), 36) + "k" + strconv.FormatUint(h%46656+46656, 36)[1:]
}

// textToken is the unique word in the text of one attachment's file (see attKind.hasTextToken).
func textToken(seed int64, seq uint32, index int) string {
	h := mix64(uint64(seed) ^ mix64(uint64(seq)<<4|uint64(index)) ^ 0x7E47)
	return "zt" + strconv.FormatUint(uint64(seq), 36) + "x" + strconv.Itoa(index) + "k" + strconv.FormatUint(h%46656+46656, 36)[1:]
}

// contacts is the fixed cast of people a generator draws correspondents from.
type contacts struct {
	external   []api.Address
	colleagues []api.Address // seeded mailboxes; never changes after New
}

func newExternalContacts(r *rand.Rand) []api.Address {
	out := make([]api.Address, 0, 24)
	seen := map[string]bool{}
	for len(out) < 24 {
		f, l := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		addr := f + "." + l + "@" + partnerDomains[r.IntN(len(partnerDomains))]
		if seen[addr] {
			continue
		}
		seen[addr] = true
		out = append(out, api.Address{EmailAddress: addr, DisplayableName: displayName(f, l)})
	}
	return out
}

func displayName(first, last string) string {
	return strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:]
}

var headerZones = []*time.Location{
	time.FixedZone("", 0), time.FixedZone("", 3600), time.FixedZone("", 2*3600),
	time.FixedZone("", -5*3600), time.FixedZone("", 9*3600), time.FixedZone("", 5*3600+1800),
}

// buildContent derives the content of one message.
func buildContent(seed int64, keys keyring, people *contacts, ref msgRef) *content {
	r := msgRand(seed, ref.seq, 1)
	seq := ref.seq
	c := &content{
		ref:    ref,
		layout: layoutBySeq[seq%uint32(len(layoutBySeq))],
		token:  bodyToken(seed, seq),
		mailer: mailers[r.IntN(len(mailers))],
		read:   seq%3 == 0,
		smash:  hex.EncodeToString(keys.mac("smash", strconv.FormatUint(uint64(seq), 10))[:20]),
	}
	c.relayIP = fmt.Sprintf("192.0.2.%d", 1+r.IntN(254))

	pick := func() api.Address {
		if len(people.colleagues) > 1 && r.IntN(3) == 0 {
			for {
				p := people.colleagues[r.IntN(len(people.colleagues))]
				if p.EmailAddress != ref.owner.EmailAddress {
					return p
				}
			}
		}
		return people.external[r.IntN(len(people.external))]
	}
	if ref.view == api.ViewSent {
		c.from = ref.owner
		c.to = []api.Address{pick()}
		if r.IntN(3) == 0 {
			c.to = append(c.to, pick())
		}
	} else {
		c.from = pick()
		c.to = []api.Address{ref.owner}
		if r.IntN(4) == 0 {
			c.to = append(c.to, pick())
		}
	}
	if r.IntN(4) == 0 {
		c.cc = []api.Address{pick()}
	}

	switch {
	case seq%23 == 7:
		c.subject = ""
	case seq%5 == 1:
		c.subject = nonASCIISubjects[r.IntN(len(nonASCIISubjects))]
	default:
		c.subject = subjectTopics[r.IntN(len(subjectTopics))] + ": " + bodyWords[r.IntN(len(bodyWords))] + " " + strconv.Itoa(100+r.IntN(900))
		if r.IntN(4) == 0 {
			c.subject = "Re: " + c.subject
		}
	}

	zone := headerZones[r.IntN(len(headerZones))]
	c.date = ref.received.Add(-time.Duration(1+r.IntN(120)) * time.Second).In(zone)
	c.messageID = fmt.Sprintf("<%x.%d@%s>", mix64(uint64(seed)^uint64(seq)<<1)&0xFFFFFFFFFFFF, seq, hostOf(c.from.EmailAddress))

	// Body lines: ordinary words, the unique token in the first line, a greeting and a
	// sign-off; some UTF-8 bodies get a non-ASCII line, ISO-8859-1 bodies always do.
	greetName := "all"
	if len(c.to) > 0 {
		greetName = strings.SplitN(c.to[0].DisplayableName, " ", 2)[0]
	}
	c.lines = append(c.lines, "Hello "+greetName+",", "")
	n := 2 + r.IntN(4)
	for i := range n {
		words := make([]string, 8+r.IntN(13))
		for j := range words {
			words[j] = bodyWords[r.IntN(len(bodyWords))]
		}
		words[0] = strings.ToUpper(words[0][:1]) + words[0][1:]
		if i == 0 {
			words[1+r.IntN(len(words)-1)] = c.token // never first: that word is capitalised
		}
		c.lines = append(c.lines, strings.Join(words, " ")+".")
	}
	switch {
	case c.layout == layoutLatin1:
		c.lines = append(c.lines, "", latin1Lines[r.IntN(len(latin1Lines))])
	case r.IntN(3) == 0:
		c.lines = append(c.lines, "", nonASCIILines[r.IntN(len(nonASCIILines))])
	}
	c.lines = append(c.lines, "", "Best regards,", c.from.DisplayableName)

	// Attachments.
	count := 0
	switch p := r.Float64(); {
	case p < 0.45:
	case p < 0.80:
		count = 1
	case p < 0.95:
		count = 2
	default:
		count = 3
	}
	large := seq%50 == 17
	doc := seq%docEvery == 3 && !large
	if (large || doc) && count == 0 {
		count = 1
	}
	for i := range count {
		a := attSpec{index: i, kind: attKind(r.IntN(int(attRandomKinds)))}
		a.target = int(200 * math.Exp(r.Float64()*math.Log(250))) // log-uniform 200 B .. 50 KB
		if large && i == 0 {
			a.kind = []attKind{attBinary, attPDF}[r.IntN(2)]
			a.target = 280_000 + r.IntN(40_000)
		}
		if doc && i == 0 {
			a.kind = docKinds[(seq/docEvery)%uint32(len(docKinds))]
		}
		base := asciiFilenames[r.IntN(len(asciiFilenames))] + "_" + strconv.Itoa(r.IntN(1000))
		if seq%7 == 3 && i == 0 {
			base = nonASCIIFilenames[r.IntN(len(nonASCIIFilenames))]
		}
		a.filename = base + "." + a.ext()
		if seq%11 == 5 && i == count-1 {
			a.filename = ""
		}
		c.atts = append(c.atts, a)
	}
	return c
}

func hostOf(addr string) string {
	if _, d, ok := strings.Cut(addr, "@"); ok {
		return d
	}
	return "localhost"
}
