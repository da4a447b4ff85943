package crawler

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/mimecrawl/mimecrawl/internal/rule"
)

// Rules decide which domains and mailboxes are crawled. An empty include list keeps everything.
type Rules struct {
	IncludeDomains   []rule.Regexp
	IncludeLocal     bool
	IncludeMailboxes []rule.Regexp
	ExcludeMailboxes []rule.Regexp
	// Shard keeps, of the mailboxes the rules keep, those this shard owns; the zero value
	// keeps all of them.
	Shard Shard
}

// Mailbox is one crawled mailbox. Address is lower-cased: Mimecast matches addresses without
// regard to case, and document ids must not change with the spelling of a listing.
type Mailbox struct {
	Address string `json:"address"`
	Domain  string `json:"domain"`
	Local   bool   `json:"local"`
}

// Decision says why a domain or mailbox was kept or left out, for `plan` and the run log.
type Decision struct {
	Name   string `json:"name"`
	Kept   bool   `json:"kept"`
	Reason string `json:"reason"`
}

// Enumeration is the outcome of walking domains and users.
type Enumeration struct {
	Domains   []Decision `json:"domains"`
	Mailboxes []Decision `json:"mailboxes"`
	Kept      []Mailbox  `json:"-"`
	// InternalDomains are every internal domain of the account, lower case, kept or not: the
	// organisation's domains (Options.InternalDomains).
	InternalDomains []string `json:"-"`
}

// Counts summarises decisions by reason.
func (e *Enumeration) Counts() (keptDomains, keptMailboxes int, excluded map[string]int) {
	excluded = map[string]int{}
	for _, d := range e.Domains {
		if d.Kept {
			keptDomains++
		} else {
			excluded["domain "+d.Reason]++
		}
	}
	for _, m := range e.Mailboxes {
		if !m.Kept {
			excluded["mailbox "+m.Reason]++
		}
	}
	return keptDomains, len(e.Kept), excluded
}

// firstMatch is rule.MatchAny, the one rule of matching, as an index (-1: none).
func firstMatch(rs []rule.Regexp, s string) int {
	i, _ := rule.MatchAny(rs, s)
	return i
}

// DomainDecision applies the domain rules.
func (r Rules) DomainDecision(name string, local bool) Decision {
	d := Decision{Name: name}
	switch {
	case local && !r.IncludeLocal:
		d.Reason = "local domain (domains.include_local is false)"
	case len(r.IncludeDomains) == 0:
		d.Kept, d.Reason = true, "domains.include is empty (all)"
	default:
		if i := firstMatch(r.IncludeDomains, name); i >= 0 {
			d.Kept, d.Reason = true, fmt.Sprintf("matches domains.include[%d] %q", i, r.IncludeDomains[i])
		} else {
			d.Reason = "matches no domains.include rule"
		}
	}
	return d
}

// MailboxDecision applies the mailbox rules: exclude wins over include, and a mailbox the rules
// keep is kept only by the shard that owns it.
func (r Rules) MailboxDecision(addr string) Decision {
	d := r.ruleDecision(addr)
	if d.Kept && !r.Shard.Owns(addr) {
		d.Kept, d.Reason = false, fmt.Sprintf("belongs to another shard (this is shard %s)", r.Shard)
	}
	return d
}

func (r Rules) ruleDecision(addr string) Decision {
	d := Decision{Name: addr}
	if i := firstMatch(r.ExcludeMailboxes, addr); i >= 0 {
		d.Reason = fmt.Sprintf("matches mailboxes.exclude[%d] %q", i, r.ExcludeMailboxes[i])
		return d
	}
	if len(r.IncludeMailboxes) == 0 {
		d.Kept, d.Reason = true, "mailboxes.include is empty (all)"
		return d
	}
	if i := firstMatch(r.IncludeMailboxes, addr); i >= 0 {
		d.Kept, d.Reason = true, fmt.Sprintf("matches mailboxes.include[%d] %q", i, r.IncludeMailboxes[i])
		return d
	}
	d.Reason = "matches no mailboxes.include rule"
	return d
}

// Enumerate walks internal domains and their users and applies the rules. Users of kept domains
// are listed up to `parallel` domains at a time. Any listing error fails the whole enumeration:
// a partial list must never be mistaken for "these mailboxes are gone".
func Enumerate(ctx context.Context, dir Directory, rules Rules, pageSize, parallel int) (*Enumeration, error) {
	domains, err := dir.InternalDomains(ctx)
	if err != nil {
		return nil, fmt.Errorf("enumerate internal domains: %w", err)
	}
	e := &Enumeration{}
	var kept []string
	local := map[string]bool{}
	for _, d := range domains {
		name := strings.ToLower(d.Domain)
		e.InternalDomains = append(e.InternalDomains, name)
		dec := rules.DomainDecision(name, d.Local)
		e.Domains = append(e.Domains, dec)
		if dec.Kept {
			kept = append(kept, name)
			local[name] = d.Local
		}
	}
	users := make([][]string, len(kept))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for i, domain := range kept {
		g.Go(func() error {
			us, err := dir.InternalUsers(gctx, domain, pageSize)
			if err != nil {
				return fmt.Errorf("enumerate users of domain %s: %w", domain, err)
			}
			for _, u := range us {
				users[i] = append(users[i], strings.ToLower(u.EmailAddress))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, domain := range kept {
		for _, addr := range users[i] {
			if addr == "" || seen[addr] {
				continue
			}
			seen[addr] = true
			dec := rules.MailboxDecision(addr)
			e.Mailboxes = append(e.Mailboxes, dec)
			if dec.Kept {
				e.Kept = append(e.Kept, Mailbox{Address: addr, Domain: domain, Local: local[domain]})
			}
		}
	}
	sort.Slice(e.Kept, func(i, j int) bool { return e.Kept[i].Address < e.Kept[j].Address })
	return e, nil
}
