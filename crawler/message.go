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

// message fetches one message (detail, RFC 822 body, attachments) and sends its documents. It
// finishes the message in the tracker itself on a fetch error; otherwise the acknowledgement
// callbacks do.
func (p *viewPass) message(ctx context.Context, m api.MessageSummary, seq int64, received time.Time) {
	c := p.c
	fetchFailed := func(what string, err error) {
		if ctx.Err() == nil {
			c.counts.fetchFailed.Add(1)
			p.log.Warn().Err(err).Str("message_id", m.ID).Msg(what + " failed")
		}
		p.tr.finish(seq, false)
	}
	detail, err := c.arc.MessageDetail(ctx, m.ID)
	if err != nil {
		fetchFailed("get message detail", err)
		return
	}
	text, oversize, err := p.bodyText(ctx, m.ID, max(m.Size, detail.Size))
	if err != nil {
		fetchFailed("get message body", err)
		return
	}
	// Removes the temporary file of kept attachments once their documents are built.
	defer text.Close()
	// Attachments travel inside the RFC 822 message already downloaded; those whose digest
	// matches the detail's need no download of their own.
	inMessage := map[string]*body.Part{}
	for i := range text.Parts {
		if part := &text.Parts[i]; part.Kept() {
			inMessage[part.SHA256] = part
		}
	}
	u := &unit{p: p, seq: seq, messageID: m.ID, retrying: p.failedID[m.ID]}
	msg := p.messageDoc(m, detail, text, received)
	msg.Mimecast.Oversize = oversize
	// msg is sent only once every attachment is answered (u.release below and the
	// acknowledgements), so the loop may still add their text to it.
	u.msg = index.Doc{Kind: index.Messages, ID: MessageDocID(p.mb.Address, p.view, m.ID), Body: msg}
	u.pending.Store(1) // held until every attachment has been added
	if c.opts.ExtractAttachments {
		for i, a := range detail.Attachments {
			doc, ok, err := p.attachmentDoc(ctx, m, msg, a, inMessage[strings.ToLower(a.SHA256)])
			if err != nil {
				// Attachments already sent are answered later; the message document is held back
				// by retryFail and the message stays unfinished until then.
				u.retryFail.Store(true)
				c.counts.fetchFailed.Add(1)
				if ctx.Err() == nil {
					p.log.Warn().Err(err).Str("message_id", m.ID).Str("attachment_id", a.ID).Msg("get attachment failed")
				}
				break
			}
			if !ok {
				continue
			}
			ad := doc.Body.(*index.AttachmentDoc)
			msg.Mimecast.AttachmentText = appendText(msg.Mimecast.AttachmentText, ad.Mimecast.Content, c.opts.MaxTextBytes)
			// The message lists what its attachment's download established (the digest and
			// size of the bytes read, when the detail lacked or misstated them).
			msg.Email.Attachments[i].File = *ad.File()
			u.pending.Add(1)
			u.docIDs = append(u.docIDs, doc.ID)
			err = c.sink.Add(context.WithoutCancel(ctx), doc, func(r index.Result) { u.attachmentDone(doc, a.ID, r) })
			if err != nil {
				u.attachmentDone(doc, a.ID, index.Result{Err: err})
				break
			}
		}
	}
	u.release()
}

// maxKeptAttachment caps the attachments taken from the RFC 822 message instead of downloaded
// on their own: a message's attachments are held at once, so large ones are streamed one at a
// time by their own download instead.
const maxKeptAttachment = 2 << 20

// bodyText downloads the RFC 822 message and extracts its text. listed is the size the archive
// gave for the message (0 if none), which bounds the download with MessageLimits. The caller
// closes the Text.
//
// A message whose MIME cannot be parsed, or breaks a limit against hostile structure, is still
// indexed, with its metadata and what text was read, and counted as malformed. So is a message
// larger than its download limit: oversize is then true, the download stops at the limit, and
// the message is not fetched again, since it would be just as large next time.
func (p *viewPass) bodyText(ctx context.Context, id string, listed int64) (text *body.Text, oversize bool, err error) {
	rc, err := p.c.arc.GetFile(ctx, id)
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	lim := p.c.opts.Limits
	limit := lim.downloadLimit(listed)
	cr := &countingReader{r: newLimitedBody(rc, limit)}
	var keep int64
	if p.c.opts.ExtractAttachments {
		keep = min(p.c.opts.MaxAttachmentBytes, maxKeptAttachment)
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
		return nil, false, fmt.Errorf("read message body: %w", err)
	}
	if text.Malformed && !oversize {
		p.c.counts.malformed.Add(1)
		p.log.Warn().Str("message_id", id).Msg("message body breaks a limit against hostile mime; indexed with the text read before it")
	}
	if len(text.Defects) > 0 {
		p.log.Debug().Str("message_id", id).Strs("defects", text.Defects).Msg("message body had MIME defects")
	}
	return text, oversize, nil
}

func (p *viewPass) messageDoc(m api.MessageSummary, d *api.MessageDetail, text *body.Text, received time.Time) *index.MessageDoc {
	subject := d.Subject
	if subject == "" {
		subject = m.Subject
	}
	if strings.TrimSpace(subject) == "" {
		subject = p.c.opts.BlankSubject
	}
	from := d.From
	if strings.TrimSpace(from.EmailAddress) == "" {
		from = m.From
	}
	headers := headerMap(d.Headers)
	doc := &index.MessageDoc{
		Timestamp: received,
		ECS:       index.ECS{Version: index.ECSVersion},
		Event:     index.NewEvent(p.c.opts.Now().UTC()),
		Email: index.Email{
			MessageID: d.MimeMessageID, LocalID: m.ID, Subject: subject,
			From: addressGroup(from), Sender: addressGroup(d.EnvelopeFrom),
			To: addressGroup(d.To...), Cc: addressGroup(d.Cc...), ReplyTo: addressGroup(d.ReplyTo),
			Direction: index.Direction(p.view), OriginationTimestamp: index.OriginationTime(headers["Date"]),
			DeliveryTimestamp: received,
		},
		User: index.User{Email: p.mb.Address},
		Mimecast: index.MessageMeta{
			ID: m.ID, Mailbox: p.mb.Address, Domain: p.mb.Domain, View: p.view,
			From: nameGroup(from), To: nameGroup(d.To...), Cc: nameGroup(d.Cc...), ReplyTo: nameGroup(d.ReplyTo),
			Headers: headers, Auth: index.ParseAuthResults(headers["Authentication-Results"]),
			Body: text.Text, BodyHTML: text.FromHTML,
			Size: d.Size, AttachmentCount: len(d.Attachments), Smash: d.Smash,
			Generation: p.pass.Generation,
		},
	}
	if doc.Email.OriginationTimestamp == nil && d.HeaderDate != "" {
		if t, ok := receivedTime(d.HeaderDate); ok {
			doc.Email.OriginationTimestamp = &t
		}
	}
	for _, a := range d.Attachments {
		doc.Email.Attachments = append(doc.Email.Attachments, index.EmailAttachment{File: p.attachmentFile(a)})
	}
	return doc
}

func (p *viewPass) attachmentName(a api.Attachment) string {
	if strings.TrimSpace(a.Filename) == "" {
		return p.c.opts.BlankName
	}
	return a.Filename
}

// attachmentFile is what the message detail says of an attachment's file.
func (p *viewPass) attachmentFile(a api.Attachment) index.File {
	name := p.attachmentName(a)
	f := index.File{Name: name, MimeType: a.ContentType, Extension: index.Extension(name), Size: a.Size}
	if h := strings.ToLower(a.SHA256); h != "" {
		f.Hash = &index.Hash{SHA256: h}
	}
	return f
}

// attachmentDoc builds the document of one attachment of the message msg, taking its bytes
// from kept (its part of the RFC 822 message, when those were kept; else nil) or downloading
// it unless it is larger than the cap. ok=false means the attachment is excluded by name.
func (p *viewPass) attachmentDoc(ctx context.Context, m api.MessageSummary, msg *index.MessageDoc, a api.Attachment, kept *body.Part) (index.Doc, bool, error) {
	c := p.c
	name := p.attachmentName(a)
	if firstMatch(c.opts.ExcludeNames, name) >= 0 {
		c.counts.attExcluded.Add(1)
		return index.Doc{}, false, nil
	}
	// The message's email fields, with this file as its only attachment.
	email := msg.Email
	email.Attachments = []index.EmailAttachment{{File: p.attachmentFile(a)}}
	doc := &index.AttachmentDoc{
		Timestamp: msg.Timestamp, ECS: msg.ECS, Event: index.NewEvent(c.opts.Now().UTC()), Email: email, User: msg.User,
		Mimecast: index.AttachmentMeta{
			ID: m.ID, Mailbox: p.mb.Address, Domain: p.mb.Domain, View: p.view,
			MessageDocID: MessageDocID(p.mb.Address, p.view, m.ID), AttachmentID: a.ID,
			Generation: p.pass.Generation,
		},
	}
	file := doc.File()
	out := index.Doc{Kind: index.Attachments, ID: AttachmentDocID(p.mb.Address, p.view, m.ID, a.ID), Body: doc}
	if a.Size > c.opts.MaxAttachmentBytes {
		doc.Mimecast.Oversize = true
		c.counts.oversize.Add(1)
		return out, true, nil
	}
	var data []byte
	if kept != nil {
		var err error
		if data, err = kept.Bytes(); err != nil {
			// The temporary file failed us: the attachment's own download still serves.
			p.log.Warn().Err(err).Str("message_id", m.ID).Str("attachment_id", a.ID).Msg("read kept attachment")
		}
	}
	oversize := false
	if data == nil {
		var err error
		if data, oversize, err = p.download(ctx, a.ID); err != nil {
			return index.Doc{}, false, fmt.Errorf("download attachment %s: %w", a.ID, err)
		}
	} else {
		p.c.counts.fromMessage.Add(1)
	}
	if oversize {
		// The detail understated the size; the cap is what protects memory, not the detail.
		doc.Mimecast.Oversize = true
		c.counts.oversize.Add(1)
		return out, true, nil
	}
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if file.Hash != nil && file.Hash.SHA256 != got {
		p.log.Warn().Str("message_id", m.ID).Str("attachment_id", a.ID).Str("want", file.Hash.SHA256).Str("got", got).Msg("attachment sha256 differs from the message detail")
	}
	file.Hash = &index.Hash{SHA256: got}
	file.Size = int64(len(data))
	if c.opts.AttachmentPipeline {
		doc.Mimecast.Data = base64.StdEncoding.EncodeToString(data)
		out.Pipeline = true
	} else if !c.opts.NoAttachmentText {
		var err error
		if doc.Mimecast.Content, doc.Mimecast.TextError, err = p.attachmentText(ctx, m.ID, a, name, data); err != nil {
			return index.Doc{}, false, fmt.Errorf("extract text of attachment %s: %w", a.ID, err)
		}
	}
	return out, true, nil
}

// attachmentText extracts the text of one attachment within its limits. A file that cannot be
// read costs that file's text only: it is counted, logged with the reason, and its document
// carries the reason (textErr) and whatever text came before the failure. err is non-nil
// only when ctx ended first: the file is not to blame, and the message must be fetched again
// rather than indexed without the text.
func (p *viewPass) attachmentText(ctx context.Context, messageID string, a api.Attachment, name string, data []byte) (text, textErr string, err error) {
	c := p.c
	tctx, cancel := context.WithTimeout(ctx, c.opts.AttachmentTextTimeout)
	defer cancel()
	d, err := body.DocumentText(tctx, a.ContentType, name, data, body.TextLimits{MaxChars: c.opts.MaxAttachmentTextChars})
	if ctx.Err() != nil {
		return "", "", ctx.Err()
	}
	var te *body.TextError
	if err == nil || !errors.As(err, &te) {
		return d.Text, "", nil
	}
	c.counts.textFailed.Add(1)
	p.log.Warn().Err(err).Str("message_id", messageID).Str("attachment_id", a.ID).
		Str("format", string(te.Format)).Str("reason", string(te.Kind)).
		Msg("attachment text not extracted; indexed with its metadata")
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
