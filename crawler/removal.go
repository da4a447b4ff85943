package crawler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/mimecrawl/mimecrawl/index"
)

// ErrRemovalRefused is returned when the removal guard holds back a removal that looks like a
// disaster rather than a change: enumeration found nothing, or too many mailboxes would go.
var ErrRemovalRefused = errors.New("mailbox removal refused")

// MailboxStore is the part of the state store that mailbox removal needs.
type MailboxStore interface {
	// Mailboxes lists every mailbox the state file knows.
	Mailboxes() ([]string, error)
	// DeleteMailbox forgets a mailbox: its checkpoints and recorded failures.
	DeleteMailbox(mailbox string) error
}

// Removal is what a run would remove: mailboxes with state that enumeration no longer keeps.
type Removal struct {
	// Known are the mailboxes of the state file that this shard owns.
	Known []string `json:"known"`
	Gone  []string `json:"gone"`
	// OtherShards are mailboxes of the state file that another shard now owns (the shard count
	// changed): never removed here, since their owner crawls them into the same index.
	OtherShards []string `json:"other_shards,omitempty"`
}

// PlanRemoval compares the mailboxes the state file knows and shard owns with those enumeration
// kept, and applies the guard: an enumeration that kept nothing, or a removal of more than maxRatio of
// the known mailboxes, is refused (ErrRemovalRefused) unless allowMass is set. A refused plan
// still lists what would have gone, so that the message can say it.
//
// A shard considers only the mailboxes it owns, known and gone alike, so that it never removes
// another shard's mailboxes from the index they share, and the guard's ratio is per shard.
func PlanRemoval(store MailboxStore, kept []Mailbox, shard Shard, maxRatio float64, allowMass bool) (Removal, error) {
	all, err := store.Mailboxes()
	if err != nil {
		return Removal{}, fmt.Errorf("list mailboxes in the state file: %w", err)
	}
	var known, others []string
	for _, m := range all {
		if shard.Owns(m) {
			known = append(known, m)
		} else {
			others = append(others, m)
		}
	}
	keep := make(map[string]bool, len(kept))
	for _, m := range kept {
		keep[m.Address] = true
	}
	r := Removal{Known: known, OtherShards: others}
	for _, m := range known {
		if !keep[m] {
			r.Gone = append(r.Gone, m)
		}
	}
	sort.Strings(r.Gone)
	if len(r.Gone) == 0 || allowMass {
		return r, nil
	}
	if len(kept) == 0 {
		return r, fmt.Errorf("%w: enumeration kept no mailbox at all, which would remove all %d known mailboxes; "+
			"if that is intended, run again with --allow-mass-removal", ErrRemovalRefused, len(known))
	}
	if ratio := float64(len(r.Gone)) / float64(len(known)); ratio > maxRatio {
		return r, fmt.Errorf("%w: %d of %d known mailboxes (%.0f%%) would be removed, more than safety.max_mailbox_removal_ratio %.0f%%; "+
			"check the mailbox rules and the directory, or run again with --allow-mass-removal", ErrRemovalRefused,
			len(r.Gone), len(known), ratio*100, maxRatio*100)
	}
	return r, nil
}

// RemovalIndex is what mailbox removal needs from the index. Implemented by *index.Cluster.
type RemovalIndex interface {
	// Refresh makes every acknowledged write visible to searches. Removal searches for the
	// documents it deletes; a document written just before (by the previous run) and not yet
	// refreshed would be missed, and once the mailbox's state is gone nothing would remove it.
	Refresh(ctx context.Context) error
	DeleteWhere(ctx context.Context, k index.Kind, f index.Filter) (int64, error)
	// Count returns how many documents of kind k match f.
	Count(ctx context.Context, k index.Kind, f index.Filter) (int64, error)
}

var _ RemovalIndex = (*index.Cluster)(nil)

// RemoveMailboxes deletes every document of each mailbox and then its state, `parallel`
// mailboxes at a time. The index goes first, and a mailbox's state is dropped only once its
// documents are verifiably gone (a count after a refresh finds none): if anything fails, the
// state stays and the next run tries again; the reverse order could forget a mailbox whose
// documents remain. It returns the mailboxes removed and the documents deleted.
//
// Two refreshes serve every mailbox: one before the searches that find what to delete, one
// before the counts that prove it gone.
func RemoveMailboxes(ctx context.Context, idx RemovalIndex, store MailboxStore, mailboxes []string, parallel int) (int, int64, error) {
	if len(mailboxes) == 0 {
		return 0, 0, nil
	}
	// Everything acknowledged before the removal started becomes visible to its searches.
	if err := idx.Refresh(ctx); err != nil {
		return 0, 0, fmt.Errorf("refresh before removing mailboxes: %w", err)
	}
	deleted := make([]int64, len(mailboxes))
	errs := make([]error, len(mailboxes))
	// each runs fn for every mailbox that has not failed yet, `parallel` at a time; a failure
	// of one mailbox does not stop the others, so each mailbox's error is kept apart. A mailbox
	// not started when ctx ends fails with ctx's error.
	each := func(fn func(i int, m string, f index.Filter) error) {
		var wg sync.WaitGroup
		slots := semaphore.NewWeighted(int64(max(parallel, 1)))
		for i, m := range mailboxes {
			if errs[i] != nil {
				continue
			}
			if err := slots.Acquire(ctx, 1); err != nil {
				errs[i] = fmt.Errorf("remove mailbox %s: %w", m, err)
				continue
			}
			wg.Go(func() {
				defer slots.Release(1)
				errs[i] = fn(i, m, index.Filter{Terms: map[string]string{index.FieldMailbox: m}})
			})
		}
		wg.Wait()
	}
	each(func(i int, m string, f index.Filter) error {
		for _, k := range []index.Kind{index.Attachments, index.Messages} {
			n, err := idx.DeleteWhere(ctx, k, f)
			deleted[i] += n
			if err != nil {
				return fmt.Errorf("remove documents of mailbox %s: %w", m, err)
			}
		}
		return nil
	})
	var total int64
	for _, n := range deleted {
		total += n
	}
	if err := idx.Refresh(ctx); err != nil {
		return 0, total, fmt.Errorf("refresh after removing documents: %w", errors.Join(append(errs, err)...))
	}
	removed := make([]bool, len(mailboxes))
	each(func(i int, m string, f index.Filter) error {
		for _, k := range []index.Kind{index.Attachments, index.Messages} {
			n, err := idx.Count(ctx, k, f)
			if err != nil {
				return fmt.Errorf("count what is left of mailbox %s: %w", m, err)
			}
			if n > 0 {
				return fmt.Errorf("remove documents of mailbox %s: %d %s documents remain after the removal; its state is kept and the next run tries again", m, n, k)
			}
		}
		if err := store.DeleteMailbox(m); err != nil {
			return fmt.Errorf("remove state of mailbox %s: %w", m, err)
		}
		removed[i] = true
		return nil
	})
	n := 0
	for _, r := range removed {
		if r {
			n++
		}
	}
	return n, total, errors.Join(errs...)
}
