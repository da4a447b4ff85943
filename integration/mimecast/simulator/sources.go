package simulator

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The simulator's source table. Every alert or log source the simulator serves is one
// simSource, declared in the file of its endpoint (audit.go, logs_more.go, ...) and listed once
// in simSources below. What differs between sources is a field of the spec: New registers the
// endpoints and seeds the records of every source from the table; AddAlerts, AlertTruth,
// Truth().Alerts, /_sim/alerts, the REST routing and AlertOptions' counts and validation
// iterate it, and switch on no source name.
//
// Adding a source (the simulator's half of alerts/source_<name>.go):
//  1. <name>.go: its Source constant (the alerts.sources name), its endpoint (a legacy
//     time-window log serves its pages with s.legacyPage, as audit.go does: every AlertPaging
//     variant and EmptyLastPage come with it) and its simSource: name, time field and how a
//     time is written, its endpoint path(s), and the generator of seeded record i of n (its own
//     random stream from seedRun.rand, so that its records never shift another source's).
//  2. One line in simSources.
//
// Seeded counts are AlertOptions.Counts[name] (the older sources also keep their named fields).

// simSources lists every source, in the order of the truth and of seeding. The order is part
// of the seeded data: sources drawing from one random stream (the original alert sources;
// the archive access, release, threat-intel and CI logs) draw in this order, and recording
// order (seq) follows it. Append new sources at the end. It is assigned in init only because
// some specs' functions look sources up in the table, a cycle Go refuses in a declaration.
var simSources []*simSource

// simSourceByName indexes simSources.
var simSourceByName map[string]*simSource

func init() {
	simSources = []*simSource{
		&attachmentSim,
		&urlSim,
		&impersonationSim,
		&dlpSim,
		&threatsSim,
		&siemSim,
		&auditSim,
		&archiveSearchLogsSim,
		&searchLogsSim,
		&viewLogsSim,
		&heldReleaseSim,
		&threatIntelCustomerSim,
		&threatIntelGridSim,
		&siemCISim,
	}
	simSourceByName = make(map[string]*simSource, len(simSources))
	for _, src := range simSources {
		simSourceByName[src.name] = src
	}
}

// simSource is what the simulator knows of one source.
type simSource struct {
	// name is the source's name: alerts.sources, AddAlerts, AlertTruth, /_sim/alerts and
	// AlertOptions.Counts.
	name string
	// timeField is the record field holding the event time; format writes a time as the
	// source serves it (o: the options, for layout variants).
	timeField string
	format    func(o AlertOptions, t time.Time) any
	// millis keeps milliseconds in the event times of seeded and added records; else they are
	// truncated to the second, as the source's time format is.
	millis bool
	// parseTime reads timeField of a decoded record; nil: eventTimeValue.
	parseTime func(v any) (time.Time, bool)
	// check refuses a record the source cannot hold (nil: none), e.g. a SIEM event without
	// its type.
	check func(fields map[string]any) error

	// api are the legacy endpoints (POST /api/...) the source adds, by path; rest the REST
	// ones (GET), routed by serveREST after the gateway checks.
	api  map[string]func(s *Server) endpoint
	rest map[string]restRoute

	// count is the source's named count field of AlertOptions (nil: Counts only).
	count func(a AlertOptions) int
	// gen builds seeded record i of n.
	gen seedGen
	// seedIndex is the position of seeded record i in the span (nil: i): records sharing a
	// position share their event time.
	seedIndex func(i int) int

	// store keeps built records (nil: the time-window log store, which legacyPage reads);
	// seeded keeps seeded ones (nil: store); list gives the records in recording order for
	// the truth (nil: the log store's). The store's mutex is held around list only.
	store  func(s *Server, recs []*alertRec)
	seeded func(r *seedRun, recs []*alertRec)
	list   func(s *Server) []*alertRec
	// inTruth lists the source in Truth().Alerts (AlertTruth lists every source).
	inTruth bool
}

// seedGen builds seeded record i of n, happening at at (the caller sets its time field).
type seedGen func(r *seedRun, i, n int, at time.Time) map[string]any

// restRoute is a REST endpoint of a source: its handler and its per-client call budget
// (nil: none).
type restRoute struct {
	serve  func(s *Server, w http.ResponseWriter, r *http.Request, client string)
	budget func(a AlertOptions) RateWindow
}

// simSourceNames lists the names of the table, for messages.
func simSourceNames() string {
	names := make([]string, len(simSources))
	for i, src := range simSources {
		names[i] = src.name
	}
	return strings.Join(names, ", ")
}

// countOf is the number of seeded records of src: AlertOptions.Counts if it names src, else
// its named field.
func (a AlertOptions) countOf(src *simSource) int {
	if n, ok := a.Counts[src.name]; ok {
		return n
	}
	if src.count != nil {
		return src.count(a)
	}
	return 0
}

// checkCounts validates the seeded counts.
func (a AlertOptions) checkCounts() error {
	for name := range a.Counts {
		if simSourceByName[name] == nil {
			return fmt.Errorf("options: alerts: counts: unknown source %q: want one of %s", name, simSourceNames())
		}
	}
	for _, src := range simSources {
		if n := a.countOf(src); n < 0 || n > maxSeededAlerts {
			return fmt.Errorf("options: alerts: %s: count %d: want 0..%d per source", src.name, n, maxSeededAlerts)
		}
	}
	return nil
}

// newRecord builds a stored record of src from a compact JSON object; a missing event time
// (or every event time, with force) is set to at.
func (src *simSource) newRecord(o AlertOptions, raw json.RawMessage, at time.Time, force bool) (*alertRec, error) {
	fields, err := decodeFields(raw)
	if err != nil {
		return nil, err
	}
	parse := src.parseTime
	if parse == nil {
		parse = eventTimeValue
	}
	t, ok := parse(fields[src.timeField])
	if !ok || force {
		fields[src.timeField] = src.format(o, at)
		if raw, err = marshalCompact(fields); err != nil {
			return nil, err
		}
		fields, _ = decodeFields(raw)
		t = at
	}
	if src.check != nil {
		if err := src.check(fields); err != nil {
			return nil, err
		}
	}
	return &alertRec{at: t.UnixMilli(), raw: raw, fields: fields}, nil
}

// keep stores built records of src.
func (src *simSource) keep(s *Server, recs []*alertRec) {
	if src.store != nil {
		src.store(s, recs)
		return
	}
	s.alerts.addLog(src.name, recs, nil)
}

// records lists src's records in recording order; the caller holds s.alerts.mu.
func (src *simSource) records(s *Server) []*alertRec {
	if src.list != nil {
		return src.list(s)
	}
	return s.alerts.logs[src.name]
}

// addSourceEndpoints registers every source's legacy endpoints and REST routes.
func (s *Server) addSourceEndpoints() {
	s.rest = map[string]restRoute{}
	for _, src := range simSources {
		for path, ep := range src.api {
			if _, dup := s.endpoints[path]; dup {
				panic("simulator: two sources serve " + path)
			}
			s.endpoints[path] = ep(s)
		}
		for path, rt := range src.rest {
			if _, dup := s.rest[path]; dup {
				panic("simulator: two sources serve " + path)
			}
			s.rest[path] = rt
		}
	}
}

// seedRun is one seeding of the sources: the random streams and the addresses generators
// draw from, and the generators the original sources share.
type seedRun struct {
	s        *Server
	o        AlertOptions
	internal []string // mailbox addresses of the directory
	external []string
	rands    map[uint64]*rand.Rand
	alerts   *alertGen
	logs     *moreGen
}

// rand is the random stream numbered stream, derived from Options.Seed: a source with a
// stream of its own draws the same records whatever the other sources' counts are.
func (r *seedRun) rand(stream uint64) *rand.Rand {
	if g, ok := r.rands[stream]; ok {
		return g
	}
	g := rand.New(rand.NewPCG(uint64(r.s.opts.Seed), stream))
	r.rands[stream] = g
	return g
}

// Random streams of the original generators.
const (
	streamAlerts = 0xA1E7 // attachment, URL, impersonation, DLP, threats, SIEM, audit
	streamLogs   = 0x10C5 // archive access, release, threat-intel and CI SIEM logs
)

// alertGen is the generator the original alert sources share (alerts_seed.go).
func (r *seedRun) alertGen() *alertGen {
	if r.alerts == nil {
		r.alerts = &alertGen{s: r.s, o: r.o, r: r.rand(streamAlerts), internal: r.internal, external: r.external, mails: map[uint32]alertMail{}}
	}
	return r.alerts
}

// logGen is the generator the more logs share (logs_more_seed.go).
func (r *seedRun) logGen() *moreGen {
	if r.logs == nil {
		r.logs = &moreGen{s: r.s, r: r.rand(streamLogs), internal: r.internal, external: r.external}
	}
	return r.logs
}

// timeOf spreads n records evenly over (End-Span, End], oldest first.
func (r *seedRun) timeOf(src *simSource, i, n int) time.Time {
	if src.seedIndex != nil {
		i = src.seedIndex(i)
	}
	t := r.o.End.Add(-r.o.Span).Add(time.Duration(float64(r.o.Span) * float64(i+1) / float64(n)))
	if src.millis {
		return t.Truncate(time.Millisecond)
	}
	return t.Truncate(time.Second)
}

// seedSources seeds every source with its count of records, in table order. Everything
// derives from Options.Seed and Options.Alerts: the same options give the same records, byte
// for byte.
func (s *Server) seedSources() error {
	o := s.opts.Alerts
	if err := o.Logs.validate(); err != nil {
		return err
	}
	if !o.enabled() {
		return nil
	}
	s.alerts.on.Store(true)
	run := &seedRun{s: s, o: o, rands: map[uint64]*rand.Rand{}}
	s.arch.mu.RLock()
	for _, mb := range s.arch.dir {
		if mb.typ == TypeMailbox {
			run.internal = append(run.internal, mb.address)
		}
	}
	s.arch.mu.RUnlock()
	if len(run.internal) == 0 {
		run.internal = []string{"user@example.com"}
	}
	for _, a := range s.arch.people.external {
		run.external = append(run.external, a.EmailAddress)
	}
	if len(run.external) == 0 {
		run.external = []string{"sender@partner.example"}
	}
	for _, src := range simSources {
		n := o.countOf(src)
		if n == 0 {
			continue
		}
		recs := make([]*alertRec, 0, n)
		for i := range n {
			at := run.timeOf(src, i, n)
			fields := src.gen(run, i, n, at)
			fields[src.timeField] = src.format(o, at)
			raw, err := marshalCompact(fields)
			if err != nil {
				return fmt.Errorf("seed %s: %w", src.name, err)
			}
			r, err := src.newRecord(o, raw, at, false)
			if err != nil {
				return fmt.Errorf("seed %s: %w", src.name, err)
			}
			recs = append(recs, r)
		}
		if src.seeded != nil {
			src.seeded(run, recs)
		} else {
			src.keep(s, recs)
		}
	}
	return nil
}

// enabled reports whether the alert endpoints are on from the start.
func (a AlertOptions) enabled() bool {
	return a.Enabled || slices.ContainsFunc(simSources, func(src *simSource) bool { return a.countOf(src) > 0 })
}

// truth lists the records of the sources in Truth().Alerts (only == "") or of one source, in
// table order, then recording order.
func (s *Server) truth(only string) []TruthAlert {
	st := s.alerts
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := []TruthAlert{}
	for _, src := range simSources {
		if only != "" && only != src.name || only == "" && !src.inTruth {
			continue
		}
		for _, r := range src.records(s) {
			out = append(out, TruthAlert{Source: src.name, Record: r.raw})
		}
	}
	return out
}

// AlertTruth returns the records the simulator holds, for one source or all (""), by source
// (in the table's order), then recording order. SIEM events are listed once each, although
// batch files overlap; the malformed file's tail is not an event and is not listed.
func (s *Server) AlertTruth(source string) []TruthAlert {
	if source != "" {
		return s.truth(source)
	}
	out := []TruthAlert{}
	for _, src := range simSources {
		out = append(out, s.truth(src.name)...)
	}
	return out
}

// AddAlerts adds records to a source and returns them exactly as they will be served. Each
// record must be a JSON object. With recordedAt set, every record's event time field (date,
// eventTime, timestamp, ... per source) is set to it: an event recorded late inside a window
// a client may already have read. Records without an event time get recordedAt, else now.
// Adding records turns the alert endpoints on.
func (s *Server) AddAlerts(source string, records []json.RawMessage, recordedAt time.Time) ([]json.RawMessage, error) {
	src := simSourceByName[source]
	if src == nil {
		return nil, fmt.Errorf("alerts: unknown source %q: want one of %s", source, simSourceNames())
	}
	at := recordedAt
	force := !at.IsZero()
	if !force {
		at = s.opts.Now()
	}
	at = at.UTC().Truncate(time.Millisecond)
	if !src.millis {
		at = at.Truncate(time.Second)
	}
	recs := make([]*alertRec, 0, len(records))
	out := make([]json.RawMessage, 0, len(records))
	for i, raw := range records {
		r, err := src.newRecord(s.opts.Alerts, compact(raw), at, force)
		if err != nil {
			return nil, fmt.Errorf("alerts: records[%d]: %w", i, err)
		}
		recs = append(recs, r)
		out = append(out, r.raw)
	}
	src.keep(s, recs)
	s.alerts.on.Store(true)
	return out, nil
}
