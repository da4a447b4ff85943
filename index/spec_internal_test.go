package index

import (
	"errors"
	"strings"
	"testing"
)

// The checks a cluster makes of the kinds it is given: a valid spec, and a name and a dataset
// of one kind only. A refused call adds none of its kinds.
func TestKindSetRefusesBadAndDuplicateKinds(t *testing.T) {
	mapping := func() map[string]any { return map[string]any{} }
	events := NewKind(Spec{Name: "events", DataStream: "mimecrawl.events", Mapping: mapping})
	var m kindSet
	if err := m.add(Messages, Attachments, events, events); err != nil {
		t.Fatalf("add: %v", err)
	}
	if err := m.add(events, Messages); err != nil {
		t.Fatalf("adding the same kinds again: %v", err)
	}
	for name, c := range map[string]struct {
		kinds []Kind
		want  string
	}{
		"zero kind":     {[]Kind{{}}, "zero Kind"},
		"bad name":      {[]Kind{NewKind(Spec{Name: "Bad_Name", Mapping: mapping})}, "invalid name"},
		"long name":     {[]Kind{NewKind(Spec{Name: strings.Repeat("a", 65), Mapping: mapping})}, "invalid name"},
		"bad dataset":   {[]Kind{NewKind(Spec{Name: "fine", DataStream: "Mimecrawl-X", Mapping: mapping})}, "invalid dataset"},
		"no mapping":    {[]Kind{NewKind(Spec{Name: "fine"})}, "no mapping"},
		"archive name":  {[]Kind{NewKind(Spec{Name: "messages", Mapping: mapping})}, `"messages"`},
		"managed name":  {[]Kind{NewKind(Spec{Name: "events", Mapping: mapping})}, `"events"`},
		"dataset taken": {[]Kind{NewKind(Spec{Name: "other", DataStream: "mimecrawl.events", Mapping: mapping})}, "mimecrawl.events"},
		"twins in one call": {[]Kind{
			NewKind(Spec{Name: "fresh", Mapping: mapping}), NewKind(Spec{Name: "fresh", Mapping: mapping}),
		}, `"fresh"`},
		"good then bad": {[]Kind{NewKind(Spec{Name: "good", Mapping: mapping}), {}}, "zero Kind"},
	} {
		err := m.add(c.kinds...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: add = %v; want an error containing %s", name, err, c.want)
		}
	}
	if _, ok := m.byName["good"]; ok {
		t.Error("a refused add kept one of its kinds")
	}
	if err := m.add(Kind{}); !errors.Is(err, errNoKind) {
		t.Errorf("add(zero) = %v, want errNoKind", err)
	}
}
