package crawler

import (
	"context"

	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/state"
)

// release drops one pending count; the last one hands the message document on.
func (u *unit) release() {
	if u.pending.Add(-1) == 0 {
		u.p.c.ready.push(u)
	}
}

func (u *unit) attachmentDone(docID, attachmentID string, r index.Result) {
	p := u.p
	if r.Err != nil || r.Permanent {
		p.docFailed(docID, u.messageID, attachmentID, r)
		if r.Permanent {
			u.permFail.Store(true)
		} else {
			u.retryFail.Store(true)
		}
	} else {
		p.c.counts.attachments.Add(1)
		p.indexed.Add(1)
	}
	u.release()
}

// addMessageDoc runs on the handoff goroutine once every attachment of u is answered; grace is
// the run's grace context, which the document is sent on.
func (c *Crawler) addMessageDoc(grace context.Context, u *unit) {
	p := u.p
	if u.retryFail.Load() {
		// Not writing the message document keeps it "not indexed", so the next run fetches
		// the message again.
		p.tr.finish(u.seq, false)
		return
	}
	// The unit lets go of the document as it is added: its encoded bytes are what is queued,
	// and the callback needs the id only.
	doc, id := u.msg, u.msg.ID
	u.msg.Body = nil
	err := c.sink.Add(grace, doc, func(r index.Result) {
		if r.Err != nil || r.Permanent {
			p.docFailed(id, u.messageID, "", r)
			p.tr.finish(u.seq, false)
			return
		}
		c.counts.messages.Add(1)
		p.indexed.Add(1)
		ok := !u.permFail.Load()
		if ok && u.retrying {
			p.clearFailures(u)
		}
		p.tr.finish(u.seq, ok)
	})
	if err != nil {
		p.docFailed(id, u.messageID, "", index.Result{Err: err})
		p.tr.finish(u.seq, false)
	}
}

// docFailed records a document that did not make it. Only a document Elasticsearch refused
// counts as failed; one that did not reach it is "not indexed" and sent again by the next run.
// Permanent rejections go to the failed bucket where `status` and the run summary show them;
// other failures are retried by the next run because the checkpoint does not pass them.
func (p *viewPass) docFailed(docID, messageID, attachmentID string, r index.Result) {
	if r.Permanent || r.Status != 0 {
		p.c.counts.docsFailed.Add(1)
	} else {
		// Not refused: Elasticsearch was not reached, or the run stopped first.
		p.c.counts.notIndexed.Add(1)
	}
	err := docError(r)
	ev := p.log.Warn().Err(err).Str("doc_id", docID).Str("message_id", messageID)
	if attachmentID != "" {
		ev = ev.Str("attachment_id", attachmentID)
	}
	ev.Bool("permanent", r.Permanent).Msg("document not indexed")
	if !r.Permanent {
		return
	}
	f := state.Failure{Key: p.key, DocID: docID, MessageID: messageID, AttachmentID: attachmentID,
		Reason: r.Reason, Status: r.Status, At: p.c.opts.Now().UTC()}
	if err := p.c.store.RecordFailure(f); err != nil {
		p.log.Error().Err(err).Str("doc_id", docID).Msg("record failed document")
	}
}

func (p *viewPass) clearFailures(u *unit) {
	for _, id := range append([]string{u.msg.ID}, u.docIDs...) {
		if err := p.c.store.ClearFailure(id); err != nil {
			p.log.Error().Err(err).Str("doc_id", id).Msg("clear recorded failure")
		}
	}
}
