package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Key names the unit of progress: one view (for example INBOX or SENT) of
// one mailbox. Both fields must be non-empty and free of NUL bytes, which
// separate them in the bbolt key.
type Key struct {
	Mailbox, View string
}

func (k Key) String() string { return k.Mailbox + "/" + k.View }

func (k Key) validate() error {
	switch {
	case k.Mailbox == "":
		return errors.New("empty mailbox")
	case k.View == "":
		return fmt.Errorf("mailbox %q: empty view", k.Mailbox)
	case strings.IndexByte(k.Mailbox, 0) >= 0 || strings.IndexByte(k.View, 0) >= 0:
		return fmt.Errorf("key %q: NUL byte in mailbox or view", k.String())
	}
	return nil
}

// bytes returns the bbolt key "mailbox\x00view". Sorting by it groups the
// views of a mailbox together, so a mailbox is one prefix.
func (k Key) bytes() []byte {
	b := make([]byte, 0, len(k.Mailbox)+1+len(k.View))
	b = append(b, k.Mailbox...)
	b = append(b, 0)
	return append(b, k.View...)
}

func parseKey(b []byte) (Key, error) {
	m, v, ok := bytes.Cut(b, []byte{0})
	k := Key{Mailbox: string(m), View: string(v)}
	if !ok {
		return k, errors.New("key has no NUL separator")
	}
	return k, k.validate()
}

// mailboxPrefix is the bbolt key prefix of every view of mailbox.
func mailboxPrefix(mailbox string) []byte {
	return append([]byte(mailbox), 0)
}

// Position is the durable progress of one (mailbox, view).
type Position struct {
	// Token is the delta token: every message received at or before Token
	// is acknowledged by Elasticsearch. Zero means no pass completed yet.
	Token time.Time
	// Pass is non-nil while a pass is in progress; an interrupted run
	// resumes it.
	Pass *Pass
	// Generation is the generation written into documents by the last
	// completed pass, used to sweep documents a full re-crawl did not see.
	Generation int64
	// LastRun is the end of the last completed pass.
	LastRun time.Time
	// Indexed counts documents indexed, cumulatively.
	Indexed int64
	// Failures counts documents that failed permanently, cumulatively.
	Failures int64
	// FullDone is when the last completed full pass started; a full re-crawl that was
	// interrupted and started again skips the views it already did (see Store.FullSince).
	FullDone time.Time
}

// Pass is a pass over one (mailbox, view) that has not completed.
type Pass struct {
	// End is the upper bound of the listing window; it becomes the Token
	// when the pass completes. Required.
	End time.Time
	// Low is the resume point: everything received in [Low, End] is
	// acknowledged. Zero means nothing is acknowledged yet. Never after End.
	Low time.Time
	// Full marks a full re-crawl: it ignores Token and sweeps deletions
	// when complete.
	Full       bool
	Generation int64
	Started    time.Time
}

// positionVersion is the version of the JSON encoding of a Position.
const positionVersion = 1

// positionRecord is the stored form of a Position. Times are stored in UTC.
type positionRecord struct {
	V          int         `json:"v"`
	Token      time.Time   `json:"token,omitzero"`
	Pass       *passRecord `json:"pass,omitempty"`
	Generation int64       `json:"generation,omitzero"`
	LastRun    time.Time   `json:"lastRun,omitzero"`
	Indexed    int64       `json:"indexed,omitzero"`
	Failures   int64       `json:"failures,omitzero"`
	FullDone   time.Time   `json:"fullDone,omitzero"`
}

type passRecord struct {
	End        time.Time `json:"end"`
	Low        time.Time `json:"low,omitzero"`
	Full       bool      `json:"full,omitzero"`
	Generation int64     `json:"generation,omitzero"`
	Started    time.Time `json:"started,omitzero"`
}

// validate checks what a stored or committed Position must satisfy.
func (p Position) validate() error {
	switch {
	case p.Indexed < 0:
		return fmt.Errorf("negative indexed count %d", p.Indexed)
	case p.Failures < 0:
		return fmt.Errorf("negative failure count %d", p.Failures)
	case p.Generation < 0:
		return fmt.Errorf("negative generation %d", p.Generation)
	}
	if err := checkTimes("token", p.Token, "last run", p.LastRun, "full pass done", p.FullDone); err != nil {
		return err
	}
	if p.Pass == nil {
		return nil
	}
	ps := p.Pass
	switch {
	case ps.End.IsZero():
		return errors.New("pass without end")
	case ps.Generation < 0:
		return fmt.Errorf("negative pass generation %d", ps.Generation)
	case !ps.Low.IsZero() && ps.Low.After(ps.End):
		return fmt.Errorf("pass resume point %s after its end %s",
			ps.Low.UTC().Format(time.RFC3339Nano), ps.End.UTC().Format(time.RFC3339Nano))
	}
	return checkTimes("pass end", ps.End, "pass resume point", ps.Low, "pass start", ps.Started)
}

// checkTimes rejects times that JSON cannot carry (years outside 0-9999),
// so that whatever decodes also encodes again. Arguments are name, time pairs.
func checkTimes(pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		t := pairs[i+1].(time.Time)
		if t.IsZero() {
			continue
		}
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("%s: year %d out of range", pairs[i], y)
		}
	}
	return nil
}

func encodePosition(p Position) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	r := positionRecord{
		V:          positionVersion,
		Token:      p.Token.UTC(),
		Generation: p.Generation,
		LastRun:    p.LastRun.UTC(),
		Indexed:    p.Indexed,
		Failures:   p.Failures,
		FullDone:   p.FullDone.UTC(),
	}
	if p.Pass != nil {
		r.Pass = &passRecord{
			End:        p.Pass.End.UTC(),
			Low:        p.Pass.Low.UTC(),
			Full:       p.Pass.Full,
			Generation: p.Pass.Generation,
			Started:    p.Pass.Started.UTC(),
		}
	}
	return json.Marshal(r)
}

// decodePosition parses a stored Position. Any error means the value is
// damaged or foreign; it never panics on any input.
func decodePosition(b []byte) (Position, error) {
	var r positionRecord
	if err := strictUnmarshal(b, &r); err != nil {
		return Position{}, err
	}
	if err := checkVersion(r.V, positionVersion); err != nil {
		return Position{}, err
	}
	p := Position{
		Token:      r.Token.UTC(),
		Generation: r.Generation,
		LastRun:    r.LastRun.UTC(),
		Indexed:    r.Indexed,
		Failures:   r.Failures,
		FullDone:   r.FullDone.UTC(),
	}
	if r.Pass != nil {
		p.Pass = &Pass{
			End:        r.Pass.End.UTC(),
			Low:        r.Pass.Low.UTC(),
			Full:       r.Pass.Full,
			Generation: r.Pass.Generation,
			Started:    r.Pass.Started.UTC(),
		}
	}
	if err := p.validate(); err != nil {
		return Position{}, err
	}
	return p, nil
}

// strictUnmarshal decodes exactly one JSON object with no unknown fields: a
// value with fields this version does not know was not written by it.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) != 0 {
		return errors.New("trailing data after value")
	}
	return nil
}

func checkVersion(got, want int) error {
	switch {
	case got == 0:
		return errors.New("value has no version")
	case got != want:
		return fmt.Errorf("value version %d, supported %d", got, want)
	}
	return nil
}

// Position returns the stored position of k; ok is false when there is none.
func (s *Store) Position(k Key) (p Position, ok bool, err error) {
	if err := k.validate(); err != nil {
		return Position{}, false, fmt.Errorf("read position: %w", err)
	}
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPositions)
		if b == nil {
			return nil
		}
		raw := b.Get(k.bytes())
		if raw == nil {
			return nil
		}
		ok = true
		p, err = decodePosition(raw)
		if err != nil {
			return &decodeError{bucket: bucketPositions, key: k.bytes(), err: err}
		}
		return nil
	})
	if err != nil {
		return Position{}, false, s.readError(err)
	}
	return p, ok, nil
}

// Positions returns every stored position.
func (s *Store) Positions() (map[Key]Position, error) {
	out := make(map[Key]Position)
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPositions)
		if b == nil {
			return nil
		}
		return b.ForEach(func(kb, v []byte) error {
			k, err := parseKey(kb)
			if err != nil {
				return &decodeError{bucket: bucketPositions, key: kb, err: err}
			}
			p, err := decodePosition(v)
			if err != nil {
				return &decodeError{bucket: bucketPositions, key: kb, err: err}
			}
			out[k] = p
			return nil
		})
	})
	if err != nil {
		return nil, s.readError(err)
	}
	return out, nil
}

// Mailboxes returns, sorted, the distinct mailboxes that have a position
// or a recorded failure.
func (s *Store) Mailboxes() ([]string, error) {
	seen := make(map[string]bool)
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketPositions); b != nil {
			err := b.ForEach(func(kb, _ []byte) error {
				k, err := parseKey(kb)
				if err != nil {
					return &decodeError{bucket: bucketPositions, key: kb, err: err}
				}
				seen[k.Mailbox] = true
				return nil
			})
			if err != nil {
				return err
			}
		}
		return eachFailure(tx, func(f Failure) error {
			seen[f.Key.Mailbox] = true
			return nil
		})
	})
	if err != nil {
		return nil, s.readError(err)
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	slices.Sort(out)
	return out, nil
}

// Commit stores all updates in one transaction: after a crash either all of
// them or none are on disk. Every update is checked before anything is
// written. Keys not in updates keep their positions.
func (s *Store) Commit(updates map[Key]Position) error {
	if len(updates) == 0 {
		return nil
	}
	type kv struct{ k, v []byte }
	enc := make([]kv, 0, len(updates))
	for k, p := range updates {
		if err := k.validate(); err != nil {
			return fmt.Errorf("commit positions to state file %s: %w", s.path, err)
		}
		v, err := encodePosition(p)
		if err != nil {
			return fmt.Errorf("commit position of %s to state file %s: %w", k, s.path, err)
		}
		enc = append(enc, kv{k.bytes(), v})
	}
	// Sorted keys make bbolt's page writes sequential.
	slices.SortFunc(enc, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPositions)
		for _, e := range enc {
			if err := b.Put(e.k, e.v); err != nil {
				return fmt.Errorf("put %q: %w", e.k, err)
			}
		}
		return nil
	})
	if err != nil {
		return s.writeError(fmt.Sprintf("commit %d positions", len(enc)), err)
	}
	return nil
}

// NextGeneration increments and returns the persisted generation counter.
// The first call on a new file returns 1; values never repeat, even across
// crashes, because the increment is committed before it is returned.
func (s *Store) NextGeneration() (int64, error) {
	var next int64
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		var cur int64
		if raw := meta.Get(keyGeneration); raw != nil {
			v, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil || v < 0 {
				return &decodeError{bucket: bucketMeta, key: keyGeneration, err: fmt.Errorf("bad counter %q", raw)}
			}
			cur = v
		}
		next = cur + 1
		return meta.Put(keyGeneration, []byte(strconv.FormatInt(next, 10)))
	})
	if err != nil {
		return 0, s.writeError("advance generation", err)
	}
	return next, nil
}

// FullSince returns when the pending full re-crawl began; ok is false when none is pending.
// A full re-crawl is a campaign over every kept view: if it is interrupted, the next run goes
// on with the views whose last full pass started before this instant, instead of starting over.
func (s *Store) FullSince() (since time.Time, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketMeta).Get(keyFullSince)
		if raw == nil {
			return nil
		}
		t, perr := time.Parse(time.RFC3339Nano, string(raw))
		if perr != nil {
			return &decodeError{bucket: bucketMeta, key: keyFullSince, err: fmt.Errorf("bad time %q", raw)}
		}
		since, ok = t.UTC(), true
		return nil
	})
	if err != nil {
		return time.Time{}, false, s.readError(err)
	}
	return since, ok, nil
}

// SetFullSince records the start of a full re-crawl; the zero time clears it.
func (s *Store) SetFullSince(t time.Time) error {
	if err := checkTimes("full re-crawl start", t); err != nil {
		return fmt.Errorf("set full re-crawl start in state file %s: %w", s.path, err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if t.IsZero() {
			return meta.Delete(keyFullSince)
		}
		return meta.Put(keyFullSince, []byte(t.UTC().Format(time.RFC3339Nano)))
	})
	if err != nil {
		return s.writeError("set full re-crawl start", err)
	}
	return nil
}

// DeleteMailbox removes, in one transaction, the positions of every view of
// mailbox and its recorded failures.
func (s *Store) DeleteMailbox(mailbox string) error {
	if mailbox == "" || strings.IndexByte(mailbox, 0) >= 0 {
		return fmt.Errorf("delete mailbox %q from state file %s: invalid mailbox", mailbox, s.path)
	}
	err := s.update(func(tx *bolt.Tx) error {
		prefix := mailboxPrefix(mailbox)
		var doomed [][]byte
		c := tx.Bucket(bucketPositions).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			doomed = append(doomed, bytes.Clone(k))
		}
		// Deleting while a cursor walks a bucket can skip keys, so
		// delete after the walk.
		pb := tx.Bucket(bucketPositions)
		for _, k := range doomed {
			if err := pb.Delete(k); err != nil {
				return fmt.Errorf("delete position %q: %w", k, err)
			}
		}
		doomed = doomed[:0]
		err := eachFailure(tx, func(f Failure) error {
			if f.Key.Mailbox == mailbox {
				doomed = append(doomed, []byte(f.DocID))
			}
			return nil
		})
		if err != nil {
			return err
		}
		fb := tx.Bucket(bucketFailures)
		for _, k := range doomed {
			if err := fb.Delete(k); err != nil {
				return fmt.Errorf("delete failure %q: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return s.writeError(fmt.Sprintf("delete mailbox %s", mailbox), err)
	}
	return nil
}
