package crawler

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/crawler/body"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// message fetches one message and sends its documents: the RFC 822 message (one get-file call)
// and, with Options.MessageDetail, its detail first. Both documents are built from the RFC 822
// message; the detail adds what only it knows (see messageDoc). It finishes the message in the
// tracker itself on a fetch error; otherwise the acknowledgement callbacks do.
func (p *viewPass) message(ctx, grace context.Context, m api.MessageSummary, seq int64, received time.Time) {
	c := p.c
	fetchFailed := func(what string, err error) {
		if ctx.Err() == nil {
			c.counts.fetchFailed.Add(1)
			p.log.Warn().Err(err).Str("message_id", m.ID).Msg(what + " failed")
		}
		p.tr.finish(seq, false)
	}
	var detail *api.MessageDetail
	listed := m.Size
	if c.opts.MessageDetail {
		var err error
		if detail, err = c.arc.MessageDetail(ctx, m.ID); err != nil {
			fetchFailed("get message detail", err)
			return
		}
		listed = max(listed, detail.Size)
	}
	text, size, oversize, err := p.bodyText(ctx, m.ID, listed)
	if err != nil {
		fetchFailed("get message body", err)
		return
	}
	// Removes the temporary file of kept attachments once their documents are built.
	defer text.Close()
	if oversize {
		// The download stopped at its limit: the message is larger than what was read.
		size = max(size, listed)
	}
	var listedAtts []api.Attachment
	if detail != nil {
		listedAtts = detail.Attachments
	}
	atts := matchAttachments(text.Parts, listedAtts)
	u := &unit{p: p, seq: seq, messageID: m.ID, retrying: p.failedID[m.ID]}
	msg := p.messageDoc(m, detail, text, atts, size, received)
	msg.Mimecast.Oversize = oversize
	// msg is sent only once every attachment is answered (u.release below and the
	// acknowledgements), so the loop may still add their text to it.
	u.msg = index.Doc{Kind: index.Messages, ID: MessageDocID(p.mb.Address, p.view, m.ID), Body: msg}
	u.pending.Store(1) // held until every attachment has been added
	if c.opts.ExtractAttachments {
		for i, a := range atts {
			// The message was cut off in its last part, unless that part was read whole and
			// kept; without kept bytes (no attachment text) the last part is taken to be it.
			cut := oversize && a.part != nil && a.position == len(text.Parts)-1 && !a.part.Kept()
			doc, ok, err := p.attachmentDoc(ctx, m, msg, a, cut, text.KeepFailed)
			if err != nil {
				// Attachments already sent are answered later; the message document is held back
				// by retryFail and the message stays unfinished until then.
				u.retryFail.Store(true)
				c.counts.fetchFailed.Add(1)
				if ctx.Err() == nil {
					p.log.Warn().Err(err).Str("message_id", m.ID).Int("attachment", i).Msg("get attachment failed")
				}
				break
			}
			if !ok {
				continue
			}
			ad := doc.Body.(*index.AttachmentDoc)
			msg.Mimecast.AttachmentText = appendText(msg.Mimecast.AttachmentText, ad.Mimecast.Content, c.opts.MaxTextBytes)
			// The message lists what its attachment's bytes established (the digest and size
			// of the bytes read, when only the detail described them).
			msg.Email.Attachments[i].File = *ad.AttachedFile()
			ad.SetPivots()
			u.pending.Add(1)
			u.docIDs = append(u.docIDs, doc.ID)
			// The callback keeps the ids only: the document's text, which its encoded bytes
			// already hold while it is queued, is not kept until its answer.
			docID, mimecastID := doc.ID, ad.Mimecast.AttachmentID
			err = c.sink.Add(grace, doc, func(r index.Result) { u.attachmentDone(docID, mimecastID, r) })
			if err != nil {
				u.attachmentDone(docID, mimecastID, index.Result{Err: err})
				break
			}
		}
	}
	// Complete now: the loop above added what the attachments' bytes established.
	msg.SetPivots()
	u.release()
}

// attachment is one attachment of a message: a part of its RFC 822 message, an entry of its
// detail, or both.
type attachment struct {
	part     *body.Part      // nil when only the detail lists it
	position int             // of part among body.Text.Parts; -1 without part
	listed   *api.Attachment // the detail's entry; nil without the detail or when it lacks the part
}

// matchAttachments pairs the attachment-like parts of the RFC 822 message with the detail's
// attachments (none without the detail): by SHA-256 first, then by file name, then those left
// in order. The result lists every part in message order, then the detail's attachments that
// match no part (inferred never to happen: the detail describes the same MIME message).
func matchAttachments(parts []body.Part, listed []api.Attachment) []attachment {
	out := make([]attachment, len(parts), len(parts)+len(listed))
	for i := range parts {
		out[i] = attachment{part: &parts[i], position: i}
	}
	done := make([]bool, len(listed))
	pair := func(j int, match func(i int) bool) {
		for i := range out {
			if out[i].listed == nil && match(i) {
				out[i].listed, done[j] = &listed[j], true
				return
			}
		}
	}
	for j, a := range listed {
		if h := strings.ToLower(strings.TrimSpace(a.SHA256)); h != "" {
			pair(j, func(i int) bool { return parts[i].SHA256 == h })
		}
	}
	for j, a := range listed {
		if name := strings.TrimSpace(a.Filename); !done[j] && name != "" {
			pair(j, func(i int) bool { return parts[i].Filename == name })
		}
	}
	// The rest in order: the k-th attachment left with the k-th part left.
	for j := range listed {
		if !done[j] {
			pair(j, func(int) bool { return true })
		}
	}
	for j := range listed {
		if !done[j] {
			out = append(out, attachment{position: -1, listed: &listed[j]})
		}
	}
	return out
}

// docID is the attachment's document id (see AttachmentDocID and DetailAttachmentDocID).
func (a attachment) docID(mailbox, view, messageID string) string {
	if a.part != nil {
		return AttachmentDocID(mailbox, view, messageID, a.position, a.part.SHA256)
	}
	return DetailAttachmentDocID(mailbox, view, messageID, a.listed.ID)
}

// mimecastID is Mimecast's id of the attachment, "" when the detail was not fetched.
func (a attachment) mimecastID() string {
	if a.listed == nil {
		return ""
	}
	return a.listed.ID
}

// bodyText downloads the RFC 822 message and extracts its text. listed is the size the archive
// gave for the message (0 if none), which bounds the download with MessageLimits. size is the
// bytes read. The caller closes the Text.
//
// A message whose MIME cannot be parsed, or breaks a limit against hostile structure, is still
// indexed, with its metadata and what text was read, and counted as malformed. So is a message
// larger than its download limit: oversize is then true, the download stops at the limit, and
// the message is not fetched again, since it would be just as large next time.
func (p *viewPass) bodyText(ctx context.Context, id string, listed int64) (text *body.Text, size int64, oversize bool, err error) {
	rc, err := p.c.arc.GetFile(ctx, id)
	if err != nil {
		return nil, 0, false, err
	}
	defer rc.Close()
	lim := p.c.opts.Limits
	limit := lim.downloadLimit(listed)
	cr := &countingReader{r: newLimitedBody(rc, limit)}
	var keep int64
	if p.c.opts.ExtractAttachments && p.c.opts.needAttachmentBytes() {
		// Every attachment within the cap is taken from the message: one call per message.
		// Kept bytes beyond Limits.KeepMemory wait in a temporary file, not in memory.
		keep = p.c.opts.MaxAttachmentBytes
	}
	text, err = body.Extract(cr, body.Options{MaxTextBytes: p.c.opts.MaxTextBytes, KeepAttachments: keep,
		KeepMemory: lim.keepMemory(), SpillDir: lim.SpillDir})
	p.c.counts.bytes.Add(cr.n)
	var tooLarge *tooLargeError
	switch {
	case err == nil:
	case errors.As(err, &tooLarge):
		oversize = true
		p.c.counts.malformed.Add(1)
		p.log.Warn().Str("message_id", id).Int64("limit", limit).Int64("listed_size", listed).
			Msg("message larger than its download limit; indexed as oversize with the text read up to it")
	case errors.Is(err, body.ErrNoContent):
		p.c.counts.malformed.Add(1)
		p.log.Warn().Str("message_id", id).Msg("message body has no readable content; indexed without text")
	default:
		text.Close()
		// A read that broke off is a download failure, not a bad message: fetch it again.
		return nil, 0, false, fmt.Errorf("read message body: %w", err)
	}
	if text.Malformed && !oversize {
		p.c.counts.malformed.Add(1)
		p.log.Warn().Str("message_id", id).Msg("message body breaks a limit against hostile mime; indexed with the text read before it")
	}
	if len(text.Defects) > 0 {
		p.log.Debug().Str("message_id", id).Strs("defects", text.Defects).Msg("message body had MIME defects")
	}
	return text, cr.n, oversize, nil
}

// messageDoc builds the message document. Its fields come from the RFC 822 message's header;
// only when none of that header could be read do they come from the detail d (nil when not
// fetched), so that a message is indexed the same with and without the detail. The detail
// adds what only it has: the envelope sender as Mimecast saw it (else the Return-Path header)
// and the smash. The subject and sender fall back to the listing's.
func (p *viewPass) messageDoc(m api.MessageSummary, d *api.MessageDetail, text *body.Text, atts []attachment, size int64, received time.Time) *index.MessageDoc {
	h := rfc822Header(text)
	if h.headers == nil && d != nil {
		h = detailHeader(d)
	}
	subject := h.subject
	if subject == "" {
		subject = m.Subject
	}
	if strings.TrimSpace(subject) == "" {
		subject = p.c.opts.BlankSubject
	}
	from := h.from
	if strings.TrimSpace(from.EmailAddress) == "" {
		from = m.From
	}
	sender := h.returnPath
	var smash string
	if d != nil {
		if strings.TrimSpace(d.EnvelopeFrom.EmailAddress) != "" {
			sender = d.EnvelopeFrom
		}
		smash = d.Smash
	}
	doc := &index.MessageDoc{
		Timestamp: received,
		ECS:       index.ECS{Version: index.ECSVersion},
		Event:     index.NewEvent(p.c.opts.Now().UTC()),
		Email: index.Email{
			MessageID: h.messageID, LocalID: m.ID, Subject: subject,
			From: addressGroup(from), Sender: addressGroup(sender),
			To: addressGroup(h.to...), Cc: addressGroup(h.cc...), ReplyTo: addressGroup(h.replyTo...),
			OriginationTimestamp: h.date,
			DeliveryTimestamp:    received,
		},
		User: index.User{Email: p.mb.Address},
		Mimecast: index.MessageMeta{
			ID: m.ID, Mailbox: p.mb.Address, Domain: p.mb.Domain, View: p.view,
			From: nameGroup(from), To: nameGroup(h.to...), Cc: nameGroup(h.cc...), ReplyTo: nameGroup(h.replyTo...),
			Headers: h.headers, Auth: index.ParseAuthResults(h.headers["Authentication-Results"]),
			Body: text.Text, BodyHTML: text.FromHTML,
			Size: size, AttachmentCount: len(atts), Smash: smash,
			Generation: p.pass.Generation,
		},
	}
	doc.Email.Direction = p.c.org.Direction(p.view, &doc.Email)
	for _, a := range atts {
		doc.Email.Attachments = append(doc.Email.Attachments, index.EmailAttachment{File: p.attachmentFile(a)})
	}
	return doc
}

// attachmentFile is what the message says of an attachment's file: its part where there is
// one, the detail's entry for what the part lacks.
func (p *viewPass) attachmentFile(a attachment) index.File {
	var f index.File
	if a.part != nil {
		f = index.File{Name: a.part.Filename, MimeType: a.part.ContentType, Size: a.part.Size,
			Hash: &index.Hash{SHA256: a.part.SHA256}}
	}
	if l := a.listed; l != nil {
		if strings.TrimSpace(f.Name) == "" {
			f.Name = l.Filename
		}
		if f.MimeType == "" {
			f.MimeType = l.ContentType
		}
		if a.part == nil {
			f.Size = l.Size
			if h := strings.ToLower(l.SHA256); h != "" {
				f.Hash = &index.Hash{SHA256: h}
			}
		}
	}
	if strings.TrimSpace(f.Name) == "" {
		f.Name = p.c.opts.BlankName
	}
	f.Extension = index.Extension(f.Name)
	return f
}

// attachmentDoc builds the document of one attachment of the message msg. Its bytes come from
// its part of the RFC 822 message; only an attachment that the detail lists and whose bytes
// the message did not keep is downloaded, by its Mimecast id. cut tells that the attachment is
// the part a message larger than its download limit was cut off in: it is then as oversize as
// the message. keepFailed tells that the temporary file of kept parts failed
// (body.Text.KeepFailed). ok=false means the attachment is excluded by name.
func (p *viewPass) attachmentDoc(ctx context.Context, m api.MessageSummary, msg *index.MessageDoc, a attachment, cut, keepFailed bool) (index.Doc, bool, error) {
	c := p.c
	file := p.attachmentFile(a)
	if firstMatch(c.opts.ExcludeNames, file.Name) >= 0 {
		c.counts.attExcluded.Add(1)
		return index.Doc{}, false, nil
	}
	// The message's email fields, with this file as its only attachment.
	email := msg.Email
	email.Attachments = []index.EmailAttachment{{File: file}}
	doc := &index.AttachmentDoc{
		Timestamp: msg.Timestamp, ECS: msg.ECS, Event: index.NewEvent(c.opts.Now().UTC()), Email: email, User: msg.User,
		Mimecast: index.AttachmentMeta{
			ID: m.ID, Mailbox: p.mb.Address, Domain: p.mb.Domain, View: p.view,
			MessageDocID: MessageDocID(p.mb.Address, p.view, m.ID), AttachmentID: a.mimecastID(),
			Generation: p.pass.Generation,
		},
	}
	out := index.Doc{Kind: index.Attachments, ID: a.docID(p.mb.Address, p.view, m.ID), Body: doc}
	if file.Size > c.opts.MaxAttachmentBytes || (cut && a.listed == nil) {
		doc.Mimecast.Oversize = true
		c.counts.oversize.Add(1)
		return out, true, nil
	}
	if a.part != nil && !c.opts.needAttachmentBytes() {
		return out, true, nil // metadata only; the part gave size and digest
	}
	var data []byte
	if a.part != nil && a.part.Kept() {
		var err error
		if data, err = a.part.Bytes(); err != nil {
			if a.mimecastID() == "" {
				return index.Doc{}, false, fmt.Errorf("read kept attachment: %w", err)
			}
			// The temporary file failed us: the attachment's own download still serves.
			p.log.Warn().Err(err).Str("message_id", m.ID).Str("attachment_id", a.mimecastID()).Msg("read kept attachment")
		}
	}
	// The part's digest, taken by body.Extract as it read the part, is that of these bytes.
	fromPart := data != nil
	switch {
	case fromPart:
		c.counts.fromMessage.Add(1)
	case a.mimecastID() != "":
		var oversize bool
		var err error
		if data, oversize, err = p.download(ctx, a.mimecastID()); err != nil {
			return index.Doc{}, false, fmt.Errorf("download attachment %s: %w", a.mimecastID(), err)
		}
		if oversize {
			// The detail understated the size; the cap is what protects memory, not the detail.
			doc.Mimecast.Oversize = true
			c.counts.oversize.Add(1)
			return out, true, nil
		}
	case keepFailed:
		// Not the message's fault: the next run reads it again.
		return index.Doc{}, false, errors.New("attachment not kept: its temporary file could not be written")
	default:
		// The part could not be read whole (broken encoding, or cut off with an oversize
		// message): its metadata is all there is.
		return out, true, nil
	}
	f := doc.AttachedFile()
	got := ""
	if fromPart {
		got = a.part.SHA256
	} else {
		sum := sha256.Sum256(data)
		got = hex.EncodeToString(sum[:])
	}
	if f.Hash != nil && f.Hash.SHA256 != got {
		p.log.Warn().Str("message_id", m.ID).Str("attachment_id", a.mimecastID()).Str("want", f.Hash.SHA256).Str("got", got).Msg("attachment sha256 differs from what the message said")
	}
	f.Hash = &index.Hash{SHA256: got}
	f.Size = int64(len(data))
	if c.opts.AttachmentPipeline {
		doc.Mimecast.Data = base64.StdEncoding.EncodeToString(data)
		out.Pipeline = true
	} else if !c.opts.NoAttachmentText {
		var err error
		if doc.Mimecast.Content, doc.Mimecast.TextError, err = p.attachmentText(ctx, m.ID, email.MessageID, a.mimecastID(), f.MimeType, f.Name, data); err != nil {
			return index.Doc{}, false, fmt.Errorf("extract text of attachment %d: %w", a.position, err)
		}
	}
	return out, true, nil
}

// attachmentText extracts the text of one attachment within its limits. A file that cannot be
// read, or holds no usable text, costs that file's text only: it is counted by format and
// reason, and its document carries the reason (textErr) and whatever text came before the
// failure. The first file of each reason in a run is named in a warning (file name, RFC
// Message-ID, mailbox); the others are logged at debug. err is non-nil only when ctx ended
// first: the file is not to blame, and the message must be fetched again rather than indexed
// without the text.
func (p *viewPass) attachmentText(ctx context.Context, messageID, rfcMessageID, attachmentID, contentType, name string, data []byte) (text, textErr string, err error) {
	c := p.c
	tctx, cancel := context.WithTimeout(ctx, c.opts.AttachmentTextTimeout)
	defer cancel()
	d, err := body.DocumentText(tctx, contentType, name, data, body.TextLimits{MaxChars: c.opts.MaxAttachmentTextChars})
	if ctx.Err() != nil {
		return "", "", ctx.Err()
	}
	var te *body.TextError
	if err == nil || !errors.As(err, &te) {
		return d.Text, "", nil
	}
	c.counts.textFailed.Add(1)
	ev := p.log.Debug()
	if c.counts.textMisses.add(te.Format, te.Kind) {
		ev = p.log.Warn().Bool("first_of_reason", true)
	}
	// The pass's logger already names the mailbox and view.
	ev = ev.Err(err).Str("file", name).Str("rfc_message_id", rfcMessageID).Str("message_id", messageID)
	if attachmentID != "" {
		ev = ev.Str("attachment_id", attachmentID)
	}
	ev.Str("format", string(te.Format)).Str("reason", string(te.Kind)).
		Msg("attachment text not extracted; indexed with its metadata, later ones of this reason at debug")
	return d.Text, string(te.Kind) + " " + string(te.Format), nil
}

// appendText adds an attachment's text to the message's, within max bytes in all.
func appendText(all, text string, max int) string {
	if text == "" || len(all) >= max {
		return all
	}
	if all != "" {
		all += "\n\n"
	}
	s := body.CutUTF8(text, max-len(all))
	return all + s
}

// download reads an attachment, at most MaxAttachmentBytes of it.
func (p *viewPass) download(ctx context.Context, id string) ([]byte, bool, error) {
	rc, err := p.c.arc.GetFile(ctx, id)
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	limit := p.c.opts.MaxAttachmentBytes
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	p.c.counts.bytes.Add(int64(len(data)))
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > limit {
		return nil, true, nil
	}
	return data, false, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
