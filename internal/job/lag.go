package job

import (
	"time"

	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/metrics"
	"github.com/mimecrawl/mimecrawl/state"
)

// positionReader is the part of the state store the lag is read from.
type positionReader interface {
	Positions() (map[state.Key]state.Position, error)
}

// MailboxTokens returns, for every kept mailbox, the oldest delta token of its configured
// views: zero when one of them never completed a pass.
func MailboxTokens(store positionReader, kept []crawler.Mailbox, views []string) ([]metrics.MailboxToken, error) {
	ps, err := store.Positions()
	if err != nil {
		return nil, err
	}
	out := make([]metrics.MailboxToken, 0, len(kept))
	for _, mb := range kept {
		var oldest time.Time
		for i, v := range views {
			tok := ps[state.Key{Mailbox: mb.Address, View: v}].Token
			if tok.IsZero() {
				oldest = time.Time{}
				break
			}
			if i == 0 || tok.Before(oldest) {
				oldest = tok
			}
		}
		out = append(out, metrics.MailboxToken{Mailbox: mb.Address, Token: oldest})
	}
	return out, nil
}
