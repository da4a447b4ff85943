package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout version this package reads and writes. It is
// stored in the meta bucket; a file with a higher number is refused.
//
// Version 2 added the cursors bucket; opening a version 1 file read-write
// creates the bucket and records version 2, keeping everything else.
const SchemaVersion = 2

// DefaultLockTimeout is how long Open waits for another process (or another
// Store in this process) to release the file when Options.LockTimeout is zero.
const DefaultLockTimeout = 5 * time.Second

// fileMode is the permission of the state file: it reveals mailbox addresses
// and failure reasons, so only the owner may read it.
const fileMode os.FileMode = 0o600

var (
	// ErrLocked means another Store, usually another run, holds the state file.
	ErrLocked = errors.New("state file is locked")
	// ErrCorrupt means the file is not a readable state file.
	ErrCorrupt = errors.New("state file is corrupt")
	// ErrNewerSchema means the file was written by a newer version of the program.
	ErrNewerSchema = errors.New("state file has a newer schema")
	// ErrReadOnly means a write was attempted on a Store opened with ReadOnly.
	ErrReadOnly = errors.New("state file is open read-only")
	// ErrEmpty means a read-only Open found an empty file: one that was created but never
	// initialised (a mimecrawl that created files in place and ran out of disk doing it left
	// such files). It holds nothing yet; the next Open that may write initialises it.
	ErrEmpty = errors.New("state file is empty")
)

// Bucket names and meta keys. They are part of the on-disk format.
var (
	bucketMeta      = []byte("meta")
	bucketPositions = []byte("positions")
	bucketFailures  = []byte("failures")
	bucketRuns      = []byte("runs")
	bucketCursors   = []byte("cursors")

	keySchema     = []byte("schema")
	keyGeneration = []byte("generation")
	keyFullSince  = []byte("fullSince")

	allBuckets = [][]byte{bucketMeta, bucketPositions, bucketFailures, bucketRuns, bucketCursors}
)

// Options tunes Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock; zero means
	// DefaultLockTimeout. A bounded wait makes a second concurrent run fail
	// fast with a clear message instead of hanging.
	LockTimeout time.Duration
	// ReadOnly opens the file with a shared lock and refuses writes. The file
	// must exist. A read-only Store still waits for a read-write one to close.
	ReadOnly bool
}

// Store is an open state file. Its methods are safe for concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool
}

// fileError is an error about the state file as a whole. Its message names
// the path; errors.Is matches its kind (one of the Err* values) and its cause.
type fileError struct {
	kind  error
	msg   string
	cause error
}

func (e *fileError) Error() string { return e.msg }

func (e *fileError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func corruptError(path string, cause error) error {
	return &fileError{
		kind:  ErrCorrupt,
		msg:   fmt.Sprintf("state file %s is corrupt: %v; move it away to start over", path, cause),
		cause: cause,
	}
}

// Open opens the state file at path, creating it (and its directory, mode
// 0700) when it does not exist and opts.ReadOnly is false.
//
// Errors wrap ErrLocked when another Store holds the file for longer than
// the lock timeout, ErrCorrupt when the file is not a readable state file,
// and ErrNewerSchema when it was written by a newer program. In those cases
// the file is left exactly as it was.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open state file: empty path")
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}

	info, err := os.Stat(path)
	existed := err == nil
	switch {
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	case !existed && opts.ReadOnly:
		return nil, fmt.Errorf("open state file %s read-only: %w", path, err)
	case existed && info.IsDir():
		return nil, fmt.Errorf("open state file %s: is a directory", path)
	case existed && info.Size() == 0 && opts.ReadOnly:
		// Only a writer can initialise an empty file, and the next run will. Not damage: the
		// caller says "nothing yet" rather than failing.
		return nil, &fileError{kind: ErrEmpty,
			msg: fmt.Sprintf("open state file %s read-only: the file is empty (no run has committed anything yet)", path)}
	case !existed:
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create directory of state file %s: %w", path, err)
		}
		if err := create(path, timeout); err != nil {
			return nil, err
		}
	}

	db, err := openBolt(path, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		return nil, openError(path, timeout, err)
	}
	s := &Store{db: db, path: path, readOnly: opts.ReadOnly}

	if err := s.prepare(); err != nil {
		_ = db.Close()
		return nil, err
	}

	if !existed {
		// bbolt syncs the file but not the directory entry that names it;
		// without this a crash right after the first commit could lose the
		// whole file. Best effort: losing a new file only makes the next run
		// start over, and document ids make that replay harmless.
		syncDir(filepath.Dir(path))
	} else if !opts.ReadOnly && info.Mode().Perm()&0o077 != 0 {
		// Tighten only after the file proved to be ours, so that a
		// file refused above keeps even its metadata.
		if err := os.Chmod(path, fileMode); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("restrict permissions of state file %s to %o: %w", path, fileMode, err)
		}
	}
	return s, nil
}

// create makes a new state file at path that is whole from the moment it has that name: bbolt
// initialises it and the buckets are written under a temporary name beside it, and only then
// is it linked into place. bolt.Open on a missing path creates the file first and writes its
// meta pages after, so a write failing in between (a full disk) used to leave an empty file
// that every later reader refused. On any failure the temporary file is removed.
//
// The link does not replace a file another process made meanwhile: that one is used.
func create(path string, timeout time.Duration) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".new-*") // mode 0600, the file's mode
	if err != nil {
		return fmt.Errorf("create state file %s: %w", path, err)
	}
	tmp := f.Name()
	// Removing the temporary name after the link drops the second name only.
	defer os.Remove(tmp)
	if err := f.Close(); err != nil {
		return fmt.Errorf("create state file %s: %w", path, err)
	}
	db, err := openBolt(tmp, &bolt.Options{Timeout: timeout})
	if err != nil {
		return fmt.Errorf("create state file %s: %w", path, err)
	}
	err = (&Store{db: db, path: path}).prepare()
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("create state file %s: %w", path, cerr)
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		// A filesystem without hard links: rename, unless the file appeared meanwhile (a
		// rename would replace it).
		if _, serr := os.Stat(path); serr == nil {
			return nil
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("create state file %s: %w", path, err)
		}
	}
	return nil
}

// openBolt opens the bbolt file. bbolt panics, or faults on a mapped page
// past the end of a truncated file, while loading some damaged files; both
// become a panicError. After such a panic this process keeps the file mapped,
// and so locked, until it exits: bbolt gives no handle to unmap it. Callers
// treat a corrupt file as fatal, so that costs nothing in practice.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	var f *os.File
	o.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		var err error
		f, err = os.OpenFile(name, flag, perm)
		return f, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if f != nil {
				_ = f.Close()
			}
			db, err = nil, &panicError{v: r}
		}
	}()
	return bolt.Open(path, fileMode, o)
}

// openError classifies an error of bolt.Open.
func openError(path string, waited time.Duration, err error) error {
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return &fileError{
			kind: ErrLocked,
			msg:  fmt.Sprintf("state file %s is locked by another mimecrawl run (waited %s)", path, waited),
		}
	case errors.Is(err, bolt.ErrInvalid),
		errors.Is(err, bolt.ErrChecksum),
		errors.Is(err, bolt.ErrVersionMismatch),
		errors.Is(err, bolt.ErrInvalidMapping):
		return corruptError(path, fmt.Errorf("not a valid bbolt file: %w", err))
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		// The path error already names the file; keep one copy.
		return fmt.Errorf("open state file: %w", err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("open state file %s: %w", path, err)
	}
	// What is left comes from reading the file's content (bbolt reports a
	// too-short file with a plain error, for one), or is a panicError.
	return corruptError(path, err)
}

// prepare checks the schema version and, on a new file, creates the
// buckets. It writes only when something is missing, so opening an intact
// file does not touch it.
func (s *Store) prepare() error {
	var version int
	var foreign []byte
	missing := false
	err := s.view(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				missing = true
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			// Either a new file or a bbolt file of another program.
			return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				foreign = append([]byte(nil), name...)
				return errStop
			})
		}
		raw := meta.Get(keySchema)
		if raw == nil {
			return &decodeError{bucket: bucketMeta, key: keySchema, err: errors.New("missing schema version")}
		}
		v, err := strconv.Atoi(string(raw))
		if err != nil || v < 1 {
			return &decodeError{bucket: bucketMeta, key: keySchema, err: fmt.Errorf("bad schema version %q", raw)}
		}
		version = v
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return s.readError(err)
	}
	if foreign != nil {
		return corruptError(s.path, fmt.Errorf("not a mimecrawl state file (bucket %q, no schema version)", foreign))
	}
	if version > SchemaVersion {
		return &fileError{
			kind: ErrNewerSchema,
			msg: fmt.Sprintf("state file %s has schema version %d, this mimecrawl supports up to %d: use a newer mimecrawl",
				s.path, version, SchemaVersion),
		}
	}
	if s.readOnly {
		// Missing buckets read as empty; nothing to create. A file without any bucket was
		// created by a run stopped before it wrote its first transaction: it holds nothing
		// yet, and the next run that may write initialises it.
		return nil
	}

	if !missing && version == SchemaVersion {
		return nil
	}
	err = s.update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %q: %w", b, err)
			}
		}
		// A new file gets the current version; an older one is migrated by the buckets
		// created above (every migration so far only adds buckets) and then says so.
		meta := tx.Bucket(bucketMeta)
		if version < SchemaVersion {
			return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("initialise state file %s: %w", s.path, err)
	}
	return nil
}

// errStop ends a bbolt ForEach early.
var errStop = errors.New("stop")

// Close releases the file and its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state file %s: %w", s.path, err)
	}
	return nil
}

// Path returns the path the Store was opened with.
func (s *Store) Path() string { return s.path }

// decodeError reports a value that does not decode; it always means the
// file is damaged or was written by something else.
type decodeError struct {
	bucket, key []byte
	err         error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("bucket %q key %q: %v", e.bucket, e.key, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }

// readError turns an error of a read into one that names the file; decode
// errors and bbolt panics become ErrCorrupt.
func (s *Store) readError(err error) error {
	var de *decodeError
	var pe *panicError
	if errors.As(err, &de) || errors.As(err, &pe) {
		return corruptError(s.path, err)
	}
	return fmt.Errorf("read state file %s: %w", s.path, err)
}

// panicError carries a panic raised by bbolt on a damaged page.
type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("bbolt panicked: %v", e.v) }

// view runs fn in a read transaction. bbolt panics on some damaged pages,
// and reading a mapped page that a truncation removed faults; bbolt rolls the
// transaction back on the way out, and the panic becomes an error so that a
// damaged file is reported with its path. SetPanicOnFault is per goroutine
// and restored on return.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{v: r}
		}
	}()
	return s.db.View(fn)
}

// update runs fn in one read-write transaction that is synced to disk
// before it returns.
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	if s.readOnly {
		return &fileError{kind: ErrReadOnly, msg: fmt.Sprintf("state file %s is open read-only", s.path)}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{v: r}
		}
	}()
	return s.db.Update(fn)
}

// writeError names the file in an error of a write, keeping the kinds
// recognisable.
func (s *Store) writeError(what string, err error) error {
	var fe *fileError
	if errors.As(err, &fe) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var de *decodeError
	var pe *panicError
	if errors.As(err, &de) || errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", what, corruptError(s.path, err))
	}
	return fmt.Errorf("%s in state file %s: %w", what, s.path, err)
}

// syncDir flushes a directory entry to disk, ignoring errors (some systems
// cannot sync directories).
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
