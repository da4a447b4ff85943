package alerts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/mimecrawl/mimecrawl/alerts/celfilter"
	"github.com/mimecrawl/mimecrawl/config"
)

// Rules are the compiled selections, filters and priority mapping of alerts.*.
// A Rules is safe for concurrent use: Decide only reads it.
type Rules struct {
	types, statuses, routes selection
	filters                 []compiledFilter
	priority                priorityMap
	keepLow                 bool
	// limited counts filter evaluations stopped at a bound, since NewRules.
	limited atomic.Int64
}

type compiledFilter struct {
	index   int // in alerts.filters
	exclude bool
	prg     *celfilter.Program
}

// selection is one of alerts.types/statuses/routes. It drops an alert only when the
// alert's value belongs to the selection's vocabulary and is not selected: an alert
// that carries no value, or a value outside the vocabulary (a URL category as type, the
// route "external"), is kept. A security tool fails open: it never drops what it cannot
// classify.
type selection struct {
	selected map[string]bool // nil: everything selected
	vocab    map[string]bool
}

func newSelection(key string, values, vocab []string) (selection, error) {
	s := selection{vocab: map[string]bool{}}
	for _, v := range vocab {
		s.vocab[v] = true
	}
	if len(values) == 0 {
		return s, nil
	}
	s.selected = map[string]bool{}
	for i, v := range values {
		if !s.vocab[v] {
			return selection{}, fmt.Errorf("%s[%d]: %q is not allowed; allowed values: %s", key, i, v, strings.Join(vocab, ", "))
		}
		s.selected[v] = true
	}
	return s, nil
}

func (s selection) keeps(v string) bool {
	v = strings.ToLower(v)
	return s.selected == nil || !s.vocab[v] || s.selected[v]
}

// NewRules compiles cfg. The filters of a validated configuration were compiled by its
// validation (config.AlertFilter.Program) and are not compiled again; those of a configuration
// built by hand are compiled and checked here.
func NewRules(cfg config.Alerts) (*Rules, error) {
	r := &Rules{keepLow: cfg.KeepLow}
	var errs []error
	var err error
	if r.types, err = newSelection("alerts.types", cfg.Types, config.AlertTypes()); err != nil {
		errs = append(errs, err)
	}
	if r.statuses, err = newSelection("alerts.statuses", cfg.Statuses, config.AlertStatuses()); err != nil {
		errs = append(errs, err)
	}
	if r.routes, err = newSelection("alerts.routes", cfg.Routes, config.AlertRoutes()); err != nil {
		errs = append(errs, err)
	}
	for i, f := range cfg.Filters {
		prg := f.Program()
		if prg == nil {
			var err error
			if prg, err = celfilter.Compile(f.Expression); err != nil {
				errs = append(errs, fmt.Errorf("alerts.filters[%d].expression: %w", i, err))
				continue
			}
		}
		switch f.Action {
		case config.FilterInclude, config.FilterExclude:
		default:
			errs = append(errs, fmt.Errorf("alerts.filters[%d].action: %q is not allowed; allowed values: include, exclude", i, f.Action))
			continue
		}
		r.filters = append(r.filters, compiledFilter{index: i, exclude: f.Action == config.FilterExclude, prg: prg})
	}
	r.priority = newPriorityMap(cfg.Priority)
	if len(errs) > 0 {
		return nil, fmt.Errorf("alerts rules: %w", errors.Join(errs...))
	}
	return r, nil
}

// Decision is the outcome of Decide.
type Decision struct {
	// Keep says whether the alert is indexed.
	Keep bool
	// Reason says why an alert is not kept: "type", "status", "route", "filter N" (N the
	// index in alerts.filters of the exclude filter that matched, or of the first include
	// filter when none matched) or "low". Empty when Keep.
	Reason string
	// EvalErrors counts filters whose evaluation failed; each failure counts as a match
	// of an include filter and as no match of an exclude filter, so it keeps the alert.
	EvalErrors int
	// Limited counts those of EvalErrors that stopped at a bound (celfilter.ErrLimit: the cost
	// limit, or the alert's evaluation deadline).
	Limited int
}

// Decide sets a.Priority, a.PriorityRule and a.GroupKey and says whether to index a.
// In order: the selections (alerts.types, statuses, routes), the CEL filters, then the
// priority (a low alert is dropped unless alerts.keep_low). Priority and group are set
// whatever the decision, so that a caller can report what it dropped.
//
// Filter semantics: an alert is excluded if any exclude filter matches; otherwise it is
// included if there are no include filters or any include filter matches. A filter whose
// evaluation fails never drops the alert (a security tool fails open) and is counted.
func (r *Rules) Decide(a *Alert) Decision {
	a.Priority, a.PriorityRule = r.priority.of(a)
	a.GroupKey = GroupKey(a)

	switch {
	case !r.types.keeps(a.Type):
		return Decision{Reason: "type"}
	case !r.statuses.keeps(a.Status):
		return Decision{Reason: "status"}
	case !r.routes.keeps(a.Route):
		return Decision{Reason: "route"}
	}

	var d Decision
	if len(r.filters) > 0 {
		// One deadline for all the filters of one alert: a filter that meets it, and those
		// after it, fail open.
		ctx, cancel := context.WithTimeout(context.Background(), celfilter.DefaultTimeout)
		defer cancel()
		vars := CELAlert(a)
		includes, included, firstInclude := 0, false, -1
		for _, f := range r.filters {
			if !f.exclude {
				includes++
				if firstInclude < 0 {
					firstInclude = f.index
				}
				if included {
					continue // one include match is enough; excludes still run
				}
			}
			match, err := f.prg.EvalContext(ctx, vars, a.Raw, string(a.Source))
			if err != nil {
				d.EvalErrors++
				if errors.Is(err, celfilter.ErrLimit) {
					d.Limited++
					r.limited.Add(1)
				}
				match = !f.exclude
			}
			if f.exclude && match {
				d.Reason = fmt.Sprintf("filter %d", f.index)
				return d
			}
			if !f.exclude && match {
				included = true
			}
		}
		if includes > 0 && !included {
			d.Reason = fmt.Sprintf("filter %d", firstInclude)
			return d
		}
	}

	if a.Priority == Low && !r.keepLow {
		d.Reason = "low"
		return d
	}
	d.Keep = true
	return d
}

// FilterLimited returns how many filter evaluations stopped at a bound (and kept their
// alert) since NewRules. It only grows.
func (r *Rules) FilterLimited() int64 { return r.limited.Load() }

// CELAlert returns the alert variable of the filter language: a map with the fields
// celfilter.AlertFields names (docs/alerts.md describes each one).
func CELAlert(a *Alert) map[string]any {
	files := make([]any, 0, len(a.Files))
	for _, f := range a.Files {
		files = append(files, map[string]any{
			"name": f.Name, "mime_type": f.MimeType, "extension": f.Extension,
			"sha256": f.SHA256, "size": f.Size,
		})
	}
	recipients := make([]any, 0, len(a.Recipients))
	for _, r := range a.Recipients {
		recipients = append(recipients, r)
	}
	return map[string]any{
		"source":     string(a.Source),
		"time":       a.Time,
		"verdict":    a.Verdict,
		"type":       a.Type,
		"status":     a.Status,
		"route":      a.Route,
		"action":     a.Action,
		"sender":     a.Sender,
		"recipients": recipients,
		"subject":    a.Subject,
		"message_id": a.MessageID,
		"files":      files,
		"url":        a.URL,
		"source_ip":  a.SourceIP,
		"rule":       a.Rule,
		"details":    a.Details,
	}
}
