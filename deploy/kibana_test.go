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
	Type       string      `json:"visualizationType"`
	References []reference `json:"references"`
	State      struct {
		Visualization lensVisualization `json:"visualization"`
		Datasources   struct {
			FormBased struct {
				Layers map[string]struct {
					Columns map[string]struct {
						Operation   string `json:"operationType"`
						SourceField string `json:"sourceField"`
						Params      struct {
							Size    int `json:"size"`
							OrderBy struct {
								Type     string `json:"type"`
								ColumnID string `json:"columnId"`
							} `json:"orderBy"`
						} `json:"params"`
					} `json:"columns"`
					ColumnOrder []string `json:"columnOrder"`
				} `json:"layers"`
			} `json:"formBased"`
		} `json:"datasourceStates"`
	} `json:"state"`
}

// lensVisualization holds what the visualisations the objects use (lnsXY, lnsPie,
// lnsDatatable) draw from the data source's columns.
type lensVisualization struct {
	// lnsXY and lnsPie
	Layers []struct {
		LayerID       string   `json:"layerId"`
		XAccessor     string   `json:"xAccessor"`
		Accessors     []string `json:"accessors"`
		SplitAccessor string   `json:"splitAccessor"`
		PrimaryGroups []string `json:"primaryGroups"`
		Metrics       []string `json:"metrics"`
	} `json:"layers"`
	// lnsDatatable
	LayerID string `json:"layerId"`
	Columns []struct {
		ColumnID string `json:"columnId"`
	} `json:"columns"`
}

// drawn returns the columns a visualisation draws, by layer.
func (v lensVisualization) drawn(typ string) (map[string][]string, error) {
	out := map[string][]string{}
	switch typ {
	case "lnsXY", "lnsPie":
		for _, l := range v.Layers {
			ids := append(append([]string{l.XAccessor, l.SplitAccessor}, l.Accessors...), append(l.PrimaryGroups, l.Metrics...)...)
			for _, id := range ids {
				if id != "" {
					out[l.LayerID] = append(out[l.LayerID], id)
				}
			}
		}
	case "lnsDatatable":
		for _, c := range v.Columns {
			out[v.LayerID] = append(out[v.LayerID], c.ColumnID)
		}
	default:
		return nil, fmt.Errorf("visualization type %q is not one the test reads (lnsXY, lnsPie, lnsDatatable)", typ)
	}
	return out, nil
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

// securityDashboard is the dashboard with a panel for every source of the alerts poller.
const securityDashboard = "mimecrawl-security-dashboard"

// dashboardPanel is the part of a dashboard panel the test reads: a Lens visualisation by
// value, or a saved object (a saved search) by reference.
type dashboardPanel struct {
	Type       string `json:"type"`
	PanelIndex string `json:"panelIndex"`
	Grid       struct {
		X, Y, W, H int
		I          string
	} `json:"gridData"`
	PanelRefName string `json:"panelRefName"`
	Embeddable   struct {
		Attributes lensAttributes `json:"attributes"`
	} `json:"embeddableConfig"`
}

// dashboardColumns is 48, the width of Kibana's dashboard grid.
const dashboardColumns = 48

func loadSavedObjects(t *testing.T) []savedObject {
	t.Helper()
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
	return objs
}

func dashboardPanels(t *testing.T, o savedObject) []dashboardPanel {
	t.Helper()
	var panels []dashboardPanel
	if err := json.Unmarshal([]byte(o.Attributes.PanelsJSON), &panels); err != nil {
		t.Fatalf("dashboard %s: panelsJSON: %v", o.ID, err)
	}
	return panels
}

func TestKibanaSavedObjectsMatchMappings(t *testing.T) {
	objs := loadSavedObjects(t)
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
	if types["index-pattern"] != 8 || types["search"] < 6 || types["dashboard"] < 2 {
		t.Errorf("saved objects by type %v; want 8 data views (messages, attachments, alerts, audit log, archive access, releases, indicators, CI SIEM), 6 saved searches and the archive and security dashboards", types)
	}
	if !ids["dashboard/"+securityDashboard] {
		t.Errorf("no dashboard %s", securityDashboard)
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
			panels := dashboardPanels(t, o)
			if len(panels) < 4 {
				t.Errorf("%s: %d panels, want at least 4", where, len(panels))
			}
			checkLayout(t, where, panels)
			used := map[string]bool{} // the dashboard's references that a panel names
			for _, p := range panels {
				if p.Type == "search" {
					// A saved search by reference: Kibana finds it under "<panelIndex>:<panelRefName>".
					name := p.PanelIndex + ":" + p.PanelRefName
					used[name] = true
					switch id := refID(o.References, name); {
					case p.PanelRefName != "panel_"+p.PanelIndex:
						t.Errorf("%s panel %s: panelRefName %q, want %q", where, p.PanelIndex, p.PanelRefName, "panel_"+p.PanelIndex)
					case !ids["search/"+id]:
						t.Errorf("%s panel %s: reference %q names saved search %q, which the file does not define", where, p.PanelIndex, name, id)
					}
					continue
				}
				if p.Type != "lens" {
					t.Errorf("%s panel %s: type %q, want lens or search", where, p.PanelIndex, p.Type)
					continue
				}
				a := p.Embeddable.Attributes
				pw := where + " panel " + a.Title
				if len(a.State.Datasources.FormBased.Layers) == 0 {
					t.Errorf("%s: no layers", pw)
				}
				drawn, err := a.State.Visualization.drawn(a.Type)
				if err != nil {
					t.Errorf("%s: %v", pw, err)
				}
				for layerID, ids := range drawn {
					layer, ok := a.State.Datasources.FormBased.Layers[layerID]
					if !ok {
						t.Errorf("%s: the visualization draws layer %q, which has no data source", pw, layerID)
					}
					for _, id := range ids {
						if _, ok := layer.Columns[id]; !ok {
							t.Errorf("%s: the visualization draws column %q, which layer %s does not have", pw, id, layerID)
						}
					}
				}
				for layerID, layer := range a.State.Datasources.FormBased.Layers {
					if drawn != nil && len(drawn[layerID]) != len(layer.Columns) {
						t.Errorf("%s: the visualization draws %v of the %d columns of layer %s", pw, drawn[layerID], len(layer.Columns), layerID)
					}
					for id, c := range layer.Columns {
						if o := c.Params.OrderBy; o.Type == "column" && layer.Columns[o.ColumnID].Operation == "" {
							t.Errorf("%s: column %s is ordered by column %q, which layer %s does not have", pw, id, o.ColumnID, layerID)
						}
					}
					ref := "indexpattern-datasource-layer-" + layerID
					viewID := refID(a.References, ref)
					used[p.PanelIndex+":"+ref] = true
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
			for _, r := range o.References {
				if !used[r.Name] {
					t.Errorf("%s: reference %q (%s %s) belongs to no panel", where, r.Name, r.Type, r.ID)
				}
			}
		}
	}
	if checked < 15 {
		t.Errorf("only %d field references checked; the parsing missed objects", checked)
	}
}

// checkLayout checks that the panels of a dashboard have distinct ids and lie within the
// grid without covering one another (Kibana would push the later one down, out of the place
// the file gives it).
func checkLayout(t *testing.T, where string, panels []dashboardPanel) {
	t.Helper()
	seen := map[string]bool{}
	for i, p := range panels {
		g := p.Grid
		switch {
		case p.PanelIndex == "" || seen[p.PanelIndex]:
			t.Errorf("%s: panel index %q is empty or appears twice", where, p.PanelIndex)
		case g.I != p.PanelIndex:
			t.Errorf("%s panel %s: gridData.i is %q", where, p.PanelIndex, g.I)
		case g.X < 0 || g.Y < 0 || g.W <= 0 || g.H <= 0 || g.X+g.W > dashboardColumns:
			t.Errorf("%s panel %s: gridData %+v lies outside the %d columns", where, p.PanelIndex, g, dashboardColumns)
		}
		seen[p.PanelIndex] = true
		for _, q := range panels[:i] {
			h := q.Grid
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("%s: panels %s and %s overlap", where, q.PanelIndex, p.PanelIndex)
			}
		}
	}
}

// TestKibanaSecurityDashboardShowsEverySource: every source of the alerts poller has a Lens
// panel on the security dashboard, so that a source added to the table without one fails
// here. A panel shows a source when its data view covers the source's data stream; when the
// data view covers the streams of several sources (the alert sources, the archive access logs,
// the two threat-intel feeds), the panel must break its counts down by mimecast.source, with
// room for each of them, or that source's share cannot be told apart.
func TestKibanaSecurityDashboardShowsEverySource(t *testing.T) {
	objs := loadSavedObjects(t)
	views := map[string]string{}
	var dash *savedObject
	for i, o := range objs {
		switch {
		case o.Type == "index-pattern":
			views[o.ID] = o.Attributes.Title
		case o.Type == "dashboard" && o.ID == securityDashboard:
			dash = &objs[i]
		}
	}
	if dash == nil {
		t.Fatalf("%s has no dashboard %s", kibanaFile, securityDashboard)
	}
	specs := alerts.Specs()
	// streamsOf returns the sources whose data stream (in the default namespace) a data view's
	// comma-separated patterns cover.
	streamsOf := func(title string) []alerts.Source {
		var out []alerts.Source
		for _, sp := range specs {
			for _, pat := range strings.Split(title, ",") {
				if ok, _ := path.Match(strings.TrimSpace(pat), "logs-"+sp.Dataset+"-default"); ok {
					out = append(out, sp.Name)
					break
				}
			}
		}
		return out
	}
	shown := map[alerts.Source][]string{} // source → titles of the panels that show it
	for _, p := range dashboardPanels(t, *dash) {
		if p.Type != "lens" {
			continue
		}
		a := p.Embeddable.Attributes
		for layerID, layer := range a.State.Datasources.FormBased.Layers {
			srcs := streamsOf(views[refID(a.References, "indexpattern-datasource-layer-"+layerID)])
			bySource := false
			for _, c := range layer.Columns {
				bySource = bySource || c.Operation == "terms" && c.SourceField == "mimecast.source" && c.Params.Size >= len(srcs)
			}
			if len(srcs) > 1 && !bySource {
				continue
			}
			for _, src := range srcs {
				shown[src] = append(shown[src], a.Title)
			}
		}
	}
	for _, sp := range specs {
		if len(shown[sp.Name]) == 0 {
			t.Errorf("source %s (data stream logs-%s-*) has no panel on dashboard %s: add a Lens panel over a data view of its stream, broken down by mimecast.source when that data view covers other sources too", sp.Name, sp.Dataset, securityDashboard)
		} else {
			t.Logf("%s: %s", sp.Name, strings.Join(shown[sp.Name], "; "))
		}
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
