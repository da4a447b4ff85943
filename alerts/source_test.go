package alerts

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/index"
)

// Every spec of the table is complete and consistent, so that a new source that forgets a
// field fails here rather than in a pass: a name of the configuration's shape, an endpoint and
// a permission for check and docs/permissions.md, exactly one way of reading, the decoder its
// records need, and (events) a data stream of its own.
func TestSourceTableIsComplete(t *testing.T) {
	name := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	seen := map[Source]bool{}
	for _, sp := range Specs() {
		if !name.MatchString(string(sp.Name)) || seen[sp.Name] {
			t.Errorf("%q: a name is lower case, unique", sp.Name)
		}
		seen[sp.Name] = true
		if sp.Endpoint == "" || sp.Permission == "" {
			t.Errorf("%s: endpoint %q, permission %q; both are required", sp.Name, sp.Endpoint, sp.Permission)
		}
		readers := 0
		for _, set := range []bool{sp.pages != nil, sp.window != nil, sp.poll != nil} {
			if set {
				readers++
			}
		}
		if readers != 1 {
			t.Errorf("%s: %d ways of reading; want exactly one of pages, window, poll", sp.Name, readers)
		}
		if sp.pages == nil && (sp.needs == nil || sp.probe == nil) {
			t.Errorf("%s: a window or poll source needs needs and probe", sp.Name)
		}
		switch sp.Records {
		case RecordAlerts:
			if sp.normalize == nil || sp.decode != nil || sp.Kind != AlertsKind || sp.Dataset != Dataset {
				t.Errorf("%s: an alert source normalises and writes the alerts' data stream", sp.Name)
			}
		case RecordEvents:
			if err := eventSpecCheck(sp); err != nil {
				t.Error(err)
			}
			if sp.normalize != nil {
				t.Errorf("%s: an event source decodes, it does not normalise", sp.Name)
			}
		}
	}
	if !slices.Equal(Sources, func() []Source {
		var out []Source
		for _, sp := range Specs() {
			out = append(out, sp.Name)
		}
		return out
	}()) {
		t.Errorf("Sources %v is not the table's order", Sources)
	}
	// The configuration's default sources are names of the table.
	if err := ValidateSources(config.Default().Alerts.Sources); err != nil {
		t.Error(err)
	}
}

// Kinds ensures each written data stream once, and the groups only when an alert source is
// configured.
func TestKinds(t *testing.T) {
	got := Kinds([]Source{DLP, Threats, SIEM})
	if want := []index.Kind{AlertsKind, GroupsKind}; !slices.Equal(got, want) {
		t.Errorf("Kinds(alert sources) = %v, want %v", got, want)
	}
	for _, sp := range Specs() {
		if sp.Records != RecordEvents {
			continue
		}
		if got := Kinds([]Source{sp.Name}); !slices.Equal(got, []index.Kind{sp.Kind}) {
			t.Errorf("Kinds(%s) = %v, want its own stream only", sp.Name, got)
		}
	}
}

// docs/permissions.md lists every source of the table, alert or event, with the permission
// its spec declares (check names the same one), and docs/alerts.md's `sources` row names it.
func TestDocsListEverySource(t *testing.T) {
	perms, err := os.ReadFile("../docs/permissions.md")
	if err != nil {
		t.Fatal(err)
	}
	settings, err := os.ReadFile("../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	var sourcesRow string
	for _, l := range strings.Split(string(settings), "\n") {
		if strings.HasPrefix(l, "| `sources` |") {
			sourcesRow = l
		}
	}
	for _, sp := range Specs() {
		kind := "Alerts"
		if sp.Records == RecordEvents {
			kind = "Events"
		}
		row := ""
		for _, l := range strings.Split(string(perms), "\n") {
			if strings.HasPrefix(l, "| "+kind+": `"+string(sp.Name)+"` |") {
				row = l
			}
		}
		perm := strings.ReplaceAll(sp.Permission, "|", `\|`)
		if row == "" || !strings.HasSuffix(strings.TrimSpace(row), "| "+perm+" |") {
			t.Errorf("docs/permissions.md: want a row `| %s: `%s` | <endpoint> | %s |`, found %q", kind, sp.Name, perm, row)
		}
		if !strings.Contains(sourcesRow, "`"+string(sp.Name)+"`") {
			t.Errorf("docs/alerts.md: the sources setting does not name %s", sp.Name)
		}
	}
}
