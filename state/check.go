package state

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxCheckProblems bounds the problems Check lists; a badly damaged file has one per page.
const maxCheckProblems = 20

// Check reads the whole file and reports damage that ordinary reads may never meet: bbolt's
// consistency check of its pages (unreachable or doubly freed pages, bad page types, keys out
// of order) and every record decoded as the crawler would decode it. It returns nil for a
// sound file, or an error wrapping ErrCorrupt that names the path and lists up to 20 problems.
// Check is slow on a large file; `status` runs it, the crawl does not.
func (s *Store) Check() error {
	var problems []string
	more := 0
	note := func(format string, args ...any) {
		if len(problems) < maxCheckProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	err := s.view(func(tx *bolt.Tx) error {
		// Pages past the end of a truncated file are mapped but not backed: reading one faults,
		// and bbolt's check runs on a goroutine of its own, where the fault cannot be turned into
		// an error. Such a file is damaged anyway; say so without reading the pages.
		if fi, err := os.Stat(s.path); err == nil && fi.Size() < tx.Size() {
			note("the file is %d bytes, its pages need %d: it was truncated", fi.Size(), tx.Size())
			return nil
		}
		for err := range tx.Check() {
			note("%v", err)
		}
		checkRecords(tx, note)
		return nil
	})
	if err != nil {
		return s.readError(err)
	}
	if len(problems) == 0 {
		return nil
	}
	if more > 0 {
		problems = append(problems, fmt.Sprintf("and %d more", more))
	}
	return &fileError{
		kind: ErrCorrupt,
		msg: fmt.Sprintf("state file %s is damaged: %s; move it away to start over (the next crawl then re-indexes everything)",
			s.path, strings.Join(problems, "; ")),
	}
}

// checkRecords decodes every record of the known buckets.
func checkRecords(tx *bolt.Tx, note func(string, ...any)) {
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			note("bucket %q is missing", name)
		}
	}
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if raw := meta.Get(keyGeneration); raw != nil {
			if v, err := strconv.ParseInt(string(raw), 10, 64); err != nil || v < 0 {
				note("%v", &decodeError{bucket: bucketMeta, key: keyGeneration, err: fmt.Errorf("bad counter %q", raw)})
			}
		}
		if raw := meta.Get(keyFullSince); raw != nil {
			if _, err := time.Parse(time.RFC3339Nano, string(raw)); err != nil {
				note("%v", &decodeError{bucket: bucketMeta, key: keyFullSince, err: fmt.Errorf("bad time %q", raw)})
			}
		}
	}
	each := func(bucket []byte, fn func(k, v []byte) error) {
		b := tx.Bucket(bucket)
		if b == nil {
			return
		}
		// bbolt panics on a damaged page; note it and go on with the next bucket.
		defer func() {
			if r := recover(); r != nil {
				note("bucket %q: %v", bucket, &panicError{v: r})
			}
		}()
		_ = b.ForEach(func(k, v []byte) error {
			if err := fn(k, v); err != nil {
				note("%v", &decodeError{bucket: bucket, key: k, err: err})
			}
			return nil
		})
	}
	each(bucketPositions, func(k, v []byte) error {
		if _, err := parseKey(k); err != nil {
			return err
		}
		_, err := decodePosition(v)
		return err
	})
	each(bucketFailures, func(k, v []byte) error {
		_, err := decodeFailure(k, v)
		return err
	})
	each(bucketRuns, checkHistory)
}
