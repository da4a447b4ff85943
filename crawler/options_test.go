package crawler

import (
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// New gives the counts and durations left at zero their defaults from DefaultOptions, the one
// place they are written, and keeps the zero values that are a choice: a blank label "" leaves
// the field empty (as messages.blank_subject: "" promises), a zero grace does not wait. Before,
// New wrote its own defaults (4 × 2 listing slots × workers where the configuration said 8 × 8)
// and replaced an empty blank subject with "(no subject)".
func TestNewTakesDefaultsFromDefaultOptions(t *testing.T) {
	d := DefaultOptions()
	c := New(newFakeArchive(), newFakeIndex(), &ctxSink{}, newFakeStore(), Options{Logger: zerolog.Nop()})
	o := c.opts
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"PageSize", o.PageSize, d.PageSize},
		{"ListingSlots", o.ListingSlots, d.ListingSlots},
		{"MessageWorkers", o.MessageWorkers, d.MessageWorkers},
		{"IndexQueries", o.IndexQueries, d.IndexQueries},
		{"MessagesInFlight", o.MessagesInFlight, d.MessagesInFlight},
		{"MaxTextBytes", o.MaxTextBytes, d.MaxTextBytes},
		{"MaxAttachmentTextChars", o.MaxAttachmentTextChars, d.MaxAttachmentTextChars},
		{"CheckpointInterval", o.CheckpointInterval, d.CheckpointInterval},
		{"AttachmentTextTimeout", o.AttachmentTextTimeout, d.AttachmentTextTimeout},
		{"Views", o.Views, d.Views},
		{"BlankSubject", o.BlankSubject, ""},
		{"BlankName", o.BlankName, ""},
		{"ShutdownGrace", o.ShutdownGrace, time.Duration(0)},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if d.ListingSlots != 8 || d.MessageWorkers != 8 || d.Fetchers() != 64 {
		t.Errorf("default parallelism %d × %d = %d, want the configuration's 8 × 8", d.ListingSlots, d.MessageWorkers, d.Fetchers())
	}
	set := New(newFakeArchive(), newFakeIndex(), &ctxSink{}, newFakeStore(), Options{ListingSlots: 3, MessageWorkers: 5, Logger: zerolog.Nop()})
	if set.opts.ListingSlots != 3 || set.opts.Fetchers() != 15 {
		t.Errorf("given 3 × 5, the crawler has %d slots and %d fetchers", set.opts.ListingSlots, set.opts.Fetchers())
	}
}
