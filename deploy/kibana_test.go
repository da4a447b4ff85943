package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/index"
)

const kibanaFile = "kibana/mimecrawl.ndjson"

// savedObject is the part of a Kibana saved object the test reads.
type savedObject struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attributes struct {
		Title         string     `json:"title"`
		TimeFieldName string     `json:"timeFieldName"`
		Columns       []string   `json:"columns"`
		Sort          [][]string `json:"sort"`
		PanelsJSON    string     `json:"panelsJSON"`
		Meta          struct {
			SearchSourceJSON string `json:"searchSourceJSON"`
		} `json:"kibanaSavedObjectMeta"`
	} `json:"attributes"`
	References []reference `json:"references"`
}

type reference struct {
	ID, Name, Type string
}

// lensAttributes is a Lens visualisation embedded by value in a dashboard panel.
type lensAttributes struct {
	Title      string      `json:"title"`
	References []reference `json:"references"`
	State      struct {
		Datasources struct {
			FormBased struct {
				Layers map[string]struct {
					Columns map[string]struct {
						Operation   string `json:"operationType"`
						SourceField string `json:"sourceField"`
					} `json:"columns"`
					ColumnOrder []string `json:"columnOrder"`
				} `json:"layers"`
			} `json:"formBased"`
		} `json:"datasourceStates"`
	} `json:"state"`
}

// mappingFor returns the mapping of the index a data view title names, with the default
// prefix the saved objects use.
func mappingFor(t *testing.T, title string) map[string]any {
	t.Helper()
	for _, k := range []index.Kind{index.Messages, index.Attachments, alerts.AlertsKind} {
		if title == "mimecast-"+k.String() {
			return index.Mapping(k)
		}
	}
	// The alerts' data stream in every namespace, and the index of the release before it.
	if title == "logs-"+alerts.Dataset+"-*,mimecast-alerts" {
		return index.Mapping(alerts.AlertsKind)
	}
	// An event source's data stream in every namespace, or the streams of several sources
	// (logs-mimecrawl.archive_*): a field must then be in every one of their mappings.
	var merged map[string]any
	for _, sp := range alerts.Specs() {
		if sp.Records != alerts.RecordEvents {
			continue
		}
		if ok, _ := path.Match(title, "logs-"+sp.Dataset+"-default"); !ok {
			continue
		}
		m := index.Mapping(sp.Kind)
		if merged == nil {
			merged = m
		} else if !reflect.DeepEqual(merged, m) {
			t.Fatalf("data view %q spans data streams whose mappings differ", title)
		}
	}
	if merged != nil {
		return merged
	}
	t.Fatalf("data view %q names no index of mimecrawl", title)
	return nil
}

// fieldType returns the type of a dotted field and whether a nested object lies on its path
// (Lens and sorting cannot reach into those); "" when the field is not mapped.
func fieldType(m map[string]any, name string) (typ string, underNested bool) {
	props, _ := m["properties"].(map[string]any)
	var f map[string]any
	parts := strings.Split(name, ".")
	for i, part := range parts {
		f, _ = props[part].(map[string]any)
		if f == nil {
			// A multi-field: the last part names a sub-field of the field so far.
			return "", false
		}
		if f["type"] == "nested" && i < len(parts)-1 {
			underNested = true
		}
		if sub, ok := f["fields"].(map[string]any); ok && i == len(parts)-2 {
			if s, ok := sub[parts[i+1]].(map[string]any); ok {
				t, _ := s["type"].(string)
				return t, underNested
			}
		}
		props, _ = f["properties"].(map[string]any)
	}
	t, _ := f["type"].(string)
	return t, underNested
}

// compatible says which field types each use accepts.
var compatible = map[string]map[string]bool{
	"date_histogram": {"date": true},
	"terms":          {"keyword": true, "boolean": true, "long": true, "integer": true, "ip": true},
	"unique_count":   {"keyword": true, "long": true, "integer": true, "ip": true, "date": true},
	"sum":            {"long": true, "integer": true, "float": true},
	"average":        {"long": true, "integer": true, "float": true},
	"sort":           {"date": true, "keyword": true, "long": true, "integer": true, "boolean": true},
	"column":         {"date": true, "keyword": true, "long": true, "integer": true, "boolean": true, "text": true, "ip": true},
	"time":           {"date": true},
}

func TestKibanaSavedObjectsMatchMappings(t *testing.T) {
	f, err := os.Open(kibanaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var objs []savedObject
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var o savedObject
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("%s line %d: %v", kibanaFile, len(objs)+1, err)
		}
		objs = append(objs, o)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	views := map[string]string{} // id → title
	ids := map[string]bool{}
	types := map[string]int{}
	for _, o := range objs {
		if ids[o.Type+"/"+o.ID] {
			t.Errorf("saved object %s/%s appears twice", o.Type, o.ID)
		}
		ids[o.Type+"/"+o.ID] = true
		types[o.Type]++
		if o.Type == "index-pattern" {
			views[o.ID] = o.Attributes.Title
		}
	}
	if types["index-pattern"] != 8 || types["search"] < 6 || types["dashboard"] < 1 {
		t.Errorf("saved objects by type %v; want 8 data views (messages, attachments, alerts, audit log, archive access, releases, indicators, CI SIEM), 6 saved searches and a dashboard", types)
	}

	// use checks one field reference of an object.
	checked := 0
	use := func(where, viewID, field, use string) {
		t.Helper()
		title, ok := views[viewID]
		if !ok {
			t.Errorf("%s refers to data view %q, which the file does not define", where, viewID)
			return
		}
		typ, nested := fieldType(mappingFor(t, title), field)
		switch {
		case typ == "":
			t.Errorf("%s: field %s is not in the mapping of %s", where, field, title)
		case !compatible[use][typ]:
			t.Errorf("%s: field %s of %s is a %s, which %s cannot use", where, field, title, typ, use)
		case nested && use != "column":
			t.Errorf("%s: field %s of %s lies in a nested object, which %s cannot reach", where, field, title, use)
		}
		checked++
	}

	for _, o := range objs {
		where := o.Type + " " + o.ID
		switch o.Type {
		case "index-pattern":
			use(where, o.ID, o.Attributes.TimeFieldName, "time")
		case "search":
			viewID := refID(o.References, "kibanaSavedObjectMeta.searchSourceJSON.index")
			var src struct {
				IndexRefName string `json:"indexRefName"`
			}
			if err := json.Unmarshal([]byte(o.Attributes.Meta.SearchSourceJSON), &src); err != nil || src.IndexRefName == "" {
				t.Errorf("%s: searchSourceJSON %q does not name its data view reference", where, o.Attributes.Meta.SearchSourceJSON)
			}
			for _, c := range o.Attributes.Columns {
				use(where+" column", viewID, c, "column")
			}
			for _, s := range o.Attributes.Sort {
				use(where+" sort", viewID, s[0], "sort")
			}
		case "dashboard":
			var panels []struct {
				Type       string `json:"type"`
				PanelIndex string `json:"panelIndex"`
				Embeddable struct {
					Attributes lensAttributes `json:"attributes"`
				} `json:"embeddableConfig"`
			}
			if err := json.Unmarshal([]byte(o.Attributes.PanelsJSON), &panels); err != nil {
				t.Fatalf("%s: panelsJSON: %v", where, err)
			}
			if len(panels) < 4 {
				t.Errorf("%s: %d panels, want volume, senders, attachment types and hashes", where, len(panels))
			}
			for _, p := range panels {
				if p.Type != "lens" {
					t.Errorf("%s panel %s: type %q, want lens", where, p.PanelIndex, p.Type)
					continue
				}
				a := p.Embeddable.Attributes
				pw := where + " panel " + a.Title
				for layerID, layer := range a.State.Datasources.FormBased.Layers {
					ref := "indexpattern-datasource-layer-" + layerID
					viewID := refID(a.References, ref)
					if outer := refID(o.References, p.PanelIndex+":"+ref); outer != viewID {
						t.Errorf("%s: the dashboard's reference for layer %s is %q, the panel's %q", pw, layerID, outer, viewID)
					}
					if len(layer.ColumnOrder) != len(layer.Columns) {
						t.Errorf("%s: columnOrder %v does not list the %d columns", pw, layer.ColumnOrder, len(layer.Columns))
					}
					for _, c := range layer.Columns {
						if c.Operation == "count" && c.SourceField == "___records___" {
							continue
						}
						use(pw, viewID, c.SourceField, c.Operation)
					}
				}
			}
		}
	}
	if checked < 15 {
		t.Errorf("only %d field references checked; the parsing missed objects", checked)
	}
}

func refID(refs []reference, name string) string {
	for _, r := range refs {
		if r.Name == name {
			return r.ID
		}
	}
	return ""
}

func TestKibanaReadmeNamesTheFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("kibana", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), filepath.Base(kibanaFile)) || !strings.Contains(string(b), "_import") {
		t.Error("kibana/README.md does not say how to import " + filepath.Base(kibanaFile))
	}
}

// TestKibanaVersionInTheReadme: the README names the oldest Kibana that imports the objects,
// which is the newest saved-object version among them.
func TestKibanaVersionInTheReadme(t *testing.T) {
	data, err := os.ReadFile(kibanaFile)
	if err != nil {
		t.Fatal(err)
	}
	newest := [2]int{}
	for _, m := range regexp.MustCompile(`"(?:typeMigrationVersion|coreMigrationVersion|migrationVersion)":"(\d+)\.(\d+)\.\d+"`).FindAllStringSubmatch(string(data), -1) {
		v := [2]int{atoi(m[1]), atoi(m[2])}
		if v[0] > newest[0] || v[0] == newest[0] && v[1] > newest[1] {
			newest = v
		}
	}
	readme, err := os.ReadFile("kibana/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Kibana %d.%d or later", newest[0], newest[1]); newest[0] == 0 || !strings.Contains(string(readme), want) {
		t.Errorf("kibana/README.md does not say %q (the newest saved-object version is %d.%d)", want, newest[0], newest[1])
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
