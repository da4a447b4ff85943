package crawler

import (
	"time"

	"github.com/mimecrawl/mimecrawl/state"
)

// MaxClockSkew is how far in the future a stored position may lie before it is taken as
// damaged: a checkpoint is written from this host's clock, so a time beyond "now" by more than
// a small skew cannot have been written by a healthy run. Trusting it would skip every message
// received up to that time, for good.
const MaxClockSkew = 5 * time.Minute

// WindowOptions are the settings the window rule depends on.
type WindowOptions struct {
	StartDate        time.Time
	DeltaTokenOffset time.Duration
	// Full and FullSince as in Options.
	Full      bool
	FullSince time.Time
}

// PassPlan is the window rule's decision for one mailbox view: which pass runs and which
// window of the archive it lists.
type PassPlan struct {
	// Pass is the pass to run. A new pass that needs a generation of its own has
	// NewGeneration set; the caller allocates it (Store.NextGeneration).
	Pass          state.Pass
	NewGeneration bool
	// Resumed: the pass goes on with an interrupted pass's window, kind and generation.
	Resumed bool
	// Blocked: an earlier pass was held back by failed messages; a new pass starts from the
	// delta token so that it retries them and also takes in what arrived since.
	Blocked bool
	// From and To bound the listing, both inclusive. From after To: nothing to list.
	From, To time.Time
	// Damaged names each stored time that was ignored because it lay in the future.
	Damaged []string
	// Position is the stored position with every damaged time replaced by its safe fallback;
	// the crawler commits from it, so the damage is not met again.
	Position state.Position
}

// PlanPass is the delta-window rule, the one place that decides what a pass of a view lists:
//
//   - from = delta token + DeltaTokenOffset, but never before StartDate; a full pass ignores
//     the token and lists from StartDate;
//   - an interrupted pass is resumed: its window is [from, resume point], its kind and
//     generation stay (a full pass is only resumed as a full pass);
//   - an unfinished full re-crawl (Full with FullSince) re-crawls only the views whose last full
//     pass started before FullSince;
//   - a position in the future (beyond now + MaxClockSkew) is damaged: a damaged token falls
//     back to the last run's start if that is sane, else to StartDate; a damaged pass is
//     dropped and started afresh. Nothing is skipped; the price is re-listing.
//
// failed reports whether the view has recorded message failures.
func PlanPass(pos state.Position, failed bool, o WindowOptions, now time.Time) PassPlan {
	now = now.UTC().Truncate(time.Second)
	limit := now.Add(MaxClockSkew)
	var plan PassPlan
	owedFull := false
	future := func(t time.Time) bool { return t.After(limit) }

	if future(pos.Token) {
		plan.Damaged = append(plan.Damaged, "delta token "+pos.Token.UTC().Format(time.RFC3339))
		pos.Token = time.Time{}
		if !pos.LastRun.IsZero() && !future(pos.LastRun) {
			pos.Token = pos.LastRun
		}
	}
	if future(pos.FullDone) {
		// Would make an unfinished full re-crawl believe this view is done.
		plan.Damaged = append(plan.Damaged, "full pass time "+pos.FullDone.UTC().Format(time.RFC3339))
		pos.FullDone = time.Time{}
	}
	if ps := pos.Pass; ps != nil && (future(ps.End) || future(ps.Low)) {
		plan.Damaged = append(plan.Damaged, "interrupted pass ending "+ps.End.UTC().Format(time.RFC3339))
		// Keep the kind: a damaged full pass is still owed a full pass.
		owedFull = ps.Full
		pos.Pass = nil
	}

	full := owedFull || o.Full && (o.FullSince.IsZero() || pos.FullDone.Before(o.FullSince.UTC().Truncate(time.Second)))
	switch {
	case pos.Pass != nil && (!full || pos.Pass.Full) && !failed:
		plan.Pass = *pos.Pass
		plan.Resumed = true
	case pos.Pass != nil && (!full || pos.Pass.Full):
		plan.Pass = state.Pass{End: now, Full: pos.Pass.Full, Started: now, Generation: pos.Pass.Generation}
		plan.Blocked = true
	default:
		plan.Pass = state.Pass{End: now, Full: full, Started: now, Generation: pos.Generation}
		plan.NewGeneration = full || pos.Generation == 0
	}

	plan.From = o.StartDate.UTC()
	if !plan.Pass.Full && !pos.Token.IsZero() {
		if t := pos.Token.Add(o.DeltaTokenOffset); t.After(plan.From) {
			plan.From = t
		}
	}
	plan.To = plan.Pass.End
	if !plan.Pass.Low.IsZero() {
		plan.To = plan.Pass.Low
	}
	plan.Position = pos
	return plan
}
