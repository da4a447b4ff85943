package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/internal/job"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// The docs are a contract. These tests hold the claims a program can check: every command
// line in README and docs parses with the flag sets of the commands, every metric name is one
// the program exports, every field name of a field table (and every dotted name in an index's
// namespace) is in a mapping, and every configuration key in a key table exists with the
// default the table states.

// docFiles are the documents held to the contract, relative to this package.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, "../../README.md", "../../deploy/kibana/README.md")
	out := map[string]string{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(p, "../../")] = string(data)
	}
	return out
}

var (
	codeSpan = regexp.MustCompile("`([^`\n]+)`")
	// A command line: mimecrawl and one of its commands, up to where a shell would end it.
	commandLine = regexp.MustCompile(`(?:^|[\s$'"(])mimecrawl (check|crawl|status|plan|alerts|help|version)((?: +[^\s|;&>)'"]+)*)`)
	optional    = regexp.MustCompile(`\[(--[a-z-]+(?: [^\]|\[]+)?)\]`)
	metricName  = regexp.MustCompile(`\bmimecrawl_[a-z0-9_]*[a-z0-9]\b`)
)

// commandLines returns the mimecrawl command lines of a document: in fenced code blocks (a
// line ending in \ goes on) and in code spans. Synopses with [optional] parts are not lines.
func commandLines(doc string) []string {
	var texts []string
	inBlock := false
	var cont string
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			if s, ok := strings.CutSuffix(strings.TrimRight(l, " "), `\`); ok {
				cont += s + " "
				continue
			}
			texts = append(texts, cont+l)
			cont = ""
			continue
		}
		for _, m := range codeSpan.FindAllStringSubmatch(l, -1) {
			texts = append(texts, m[1])
		}
	}
	var out []string
	for _, text := range texts {
		if i := strings.Index(text, " #"); i >= 0 {
			text = text[:i]
		}
		// An optional part ("[--json]") is checked as if given; alternatives ("[a | b]") are
		// a synopsis, not a line.
		text = optional.ReplaceAllString(text, "$1")
		for _, m := range commandLine.FindAllStringSubmatch(text, -1) {
			if strings.ContainsAny(m[2], "[]{}…<") {
				continue
			}
			out = append(out, strings.Join(strings.Fields("mimecrawl "+m[1]+m[2]), " "))
		}
	}
	return out
}

// parseCommandLine parses a documented command line as run would, without running it.
func parseCommandLine(line string) string {
	args := strings.Fields(line)[1:]
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version":
		if len(rest) > 0 {
			return "version takes no arguments"
		}
		return ""
	case "help":
		if len(rest) > 1 {
			return "help takes one command"
		}
		if len(rest) == 1 {
			if _, ok := lookupCommand(rest[0]); !ok && builtinShort[rest[0]] == "" {
				return "help of an unknown command"
			}
		}
		return ""
	}
	fs, _ := newFlags(cmd, io.Discard)
	if err := fs.Parse(rest); err != nil {
		return err.Error()
	}
	if fs.NArg() > 0 {
		return "unexpected arguments " + strings.Join(fs.Args(), " ")
	}
	return ""
}

func TestDocsCommandLinesParse(t *testing.T) {
	n := 0
	for name, doc := range docFiles(t) {
		for _, l := range commandLines(doc) {
			n++
			if problem := parseCommandLine(l); problem != "" {
				t.Errorf("%s: %q does not parse: %s", name, l, problem)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d command lines found in the docs", n)
	}
	t.Logf("%d command lines", n)
}

// fakeAPI and fakeWriter give the metrics a client and a writer with a bound on archive
// requests, so that every series a crawl exports is gathered.
type fakeAPI struct{}

func (fakeAPI) Stats() mimecast.Stats {
	return mimecast.Stats{ByEndpoint: map[mimecast.EndpointStatus]int64{{Endpoint: "POST /api/x", Status: 200}: 1},
		Concurrency: mimecast.ConcurrencyStats{Limit: 4, Adaptive: true},
		Groups:      map[string]mimecast.GroupStats{"account": {Calls: 1}}}
}

type fakeWriter struct{}

func (fakeWriter) Stats() index.WriterStats { return index.WriterStats{Requests: 1} }

type fakeFilters struct{}

func (fakeFilters) FilterLimited() int64 { return 1 }

// exportedMetrics returns the names of every series a crawl and a poller export.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	now := time.Now()
	m := metrics.New(metrics.Options{WorstN: 3})
	m.WatchAPI(fakeAPI{})
	m.WatchWriter(fakeWriter{})
	m.WatchFilters(fakeFilters{})
	m.SetRun(metrics.RunResult{Started: now.Add(-time.Minute), Finished: now,
		TextMisses: []metrics.TextMiss{{Format: "pdf", Reason: "no_text_layer", Count: 1}}})
	m.SetMailboxLag([]metrics.MailboxToken{{Mailbox: "a@example.com", Token: now.Add(-time.Hour)}})
	m.SetAlertSources([]metrics.SourceStatus{{Source: "dlp", LatestEvent: now, LastPoll: now}})
	countAllKinds(t, m)
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}

func TestDocsMetricNamesAreExported(t *testing.T) {
	names := exportedMetrics(t)
	docs := docFiles(t)
	rules, err := os.ReadFile("../../deploy/prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	docs["deploy/prometheus/rules.yml"] = string(rules)
	n := 0
	for name, doc := range docs {
		for _, mn := range metricName.FindAllString(doc, -1) {
			n++
			base := mn
			for _, suffix := range []string{"_sum", "_count", "_bucket"} {
				if b, ok := strings.CutSuffix(mn, suffix); ok && names[b] {
					base = b
				}
			}
			if !names[base] {
				t.Errorf("%s names the metric %s, which is not exported", name, mn)
			}
		}
	}
	t.Logf("%d metric names checked against %d exported", n, len(names))
}

// mappingFields returns every field path of the mappings of the messages, attachments,
// alerts and alert-groups indices, objects included.
func mappingFields() map[string]bool {
	out := map[string]bool{}
	var walk func(prefix string, props map[string]any)
	walk = func(prefix string, props map[string]any) {
		for name, v := range props {
			path := prefix + name
			out[path] = true
			f, _ := v.(map[string]any)
			if p, ok := f["properties"].(map[string]any); ok {
				walk(path+".", p)
			}
			if p, ok := f["fields"].(map[string]any); ok {
				walk(path+".", p)
			}
		}
	}
	// The archive's kinds, and every data stream of the alerts' source table (the alerts',
	// each event source's) with the alert groups.
	for _, k := range append([]index.Kind{index.Messages, index.Attachments}, alerts.Kinds(alerts.Sources)...) {
		m := index.Mapping(k)
		if p, ok := m["properties"].(map[string]any); ok {
			walk("", p)
		}
	}
	return out
}

var braces = regexp.MustCompile(`\{([^{}]*)\}`)

// expandField turns a documented field into the names it stands for: a.{b, c} is a.b and
// a.c; .b after a.x is a.b.
func expandField(tok, parent string) []string {
	if strings.HasPrefix(tok, ".") && parent != "" {
		tok = parent + tok
	}
	m := braces.FindStringSubmatchIndex(tok)
	if m == nil {
		return []string{tok}
	}
	var out []string
	for _, alt := range strings.Split(tok[m[2]:m[3]], ",") {
		out = append(out, expandField(tok[:m[0]]+strings.TrimSpace(alt)+tok[m[1]:], "")...)
	}
	return out
}

// tables returns the rows of the Markdown tables of doc, each with its header's cells and
// the heading it stands under.
type tableRow struct {
	heading string
	header  []string
	cells   []string
}

func tables(doc string) []tableRow {
	var rows []tableRow
	var header []string
	heading := ""
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "#") {
			heading = l
		}
		if !strings.HasPrefix(l, "|") {
			header = nil
			continue
		}
		// A \| inside a cell is not a separator.
		cells := strings.Split(strings.ReplaceAll(strings.Trim(l, "|"), `\|`, "\x00"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "\x00", "|"))
		}
		switch {
		case header == nil:
			header = cells
		case strings.HasPrefix(cells[0], "---") || strings.HasPrefix(cells[0], ":--"):
		default:
			rows = append(rows, tableRow{heading: heading, header: header, cells: cells})
		}
	}
	return rows
}

var fieldLike = regexp.MustCompile(`^[a-z@_][a-z0-9_.]*[a-z0-9]$`)

func TestDocsFieldNamesAreMapped(t *testing.T) {
	fields, keys := mappingFields(), configKeys()
	// The top-level objects of the mappings: a dotted name in a code span that starts with one
	// of them is a field name wherever it stands.
	namespaces := map[string]bool{}
	for f := range fields {
		if i := strings.Index(f, "."); i > 0 {
			namespaces[f[:i]] = true
		}
	}
	n := 0
	for name, doc := range docFiles(t) {
		check := func(tok, where string) {
			n++
			if !fields[tok] {
				t.Errorf("%s: %s names the field %q, which no mapping has", name, where, tok)
			}
		}
		for _, r := range tables(doc) {
			// Tables of the fields of log lines and of the variables of CEL filters name no
			// index field.
			if r.header[0] != "Field" || strings.Contains(r.heading, "Logs") || strings.Contains(r.heading, "CEL") {
				continue
			}
			parent := ""
			for _, m := range codeSpan.FindAllStringSubmatch(r.cells[0], -1) {
				for _, f := range expandField(m[1], parent) {
					check(f, "a field table")
				}
				if !strings.HasPrefix(m[1], ".") {
					parent = m[1][:max(strings.LastIndex(m[1], "."), 0)]
				}
			}
		}
		for _, m := range codeSpan.FindAllStringSubmatch(doc, -1) {
			tok := m[1]
			i := strings.Index(tok, ".")
			if i <= 0 || !namespaces[tok[:i]] || !fieldLike.MatchString(tok) {
				continue
			}
			if _, isKey := keys[tok]; isKey {
				continue // a configuration key (mimecast.base_url), not a field
			}
			for _, f := range expandField(tok, "") {
				check(f, "the text")
			}
		}
	}
	t.Logf("%d field names checked against %d mapped", n, len(fields))
}

// configKeys returns every key path of the configuration (yaml tags), sections included.
func configKeys() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "-" || !f.IsExported() {
				continue
			}
			ft := f.Type
			if tag == "" && f.Anonymous && ft.Kind() == reflect.Struct {
				walk(prefix, ft)
				continue
			}
			path := prefix + tag
			out[path] = ft
			if !isLeaf(ft) {
				walk(path+".", ft)
			}
		}
	}
	walk("", reflect.TypeFor[config.Config]())
	return out
}

// minimalConfig is the least a configuration must say.
const minimalConfig = "mimecast:\n  client_id: x\n  client_secret: y\n"

// withKey returns minimalConfig with key (a dotted path) set to the YAML value v.
func withKey(key, v string) string {
	parts := strings.Split(key, ".")
	base, depth := minimalConfig, 0
	if parts[0] == "mimecast" {
		// Keep the one mimecast section: the key goes into it.
		base = "mimecast:\n  client_id: x\n"
		if key != "mimecast.client_secret" {
			base += "  client_secret: y\n"
		}
		parts, depth = parts[1:], 1
	}
	var b strings.Builder
	b.WriteString(base)
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", depth+i) + p + ":")
		if i == len(parts)-1 {
			b.WriteString(" " + v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func marshalConfig(t *testing.T, yamlText string) (string, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlText), nil)
	if err != nil {
		return "", err
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), nil
}

var configSection = regexp.MustCompile("^##+ `([a-z_.]+)`")

// TestDocsConfigKeysAndDefaults holds the key tables of docs/configuration.md and
// docs/alerts.md and the configuration together, both ways: every documented key exists and
// every key is documented; a default written as a value is the default (setting the key to it
// changes nothing); a default written in words ("none", "cluster default") is an empty or zero
// value in the code; a default written as {key} is that key's value. A default changed in the
// code alone or in the docs alone fails here.
func TestDocsConfigKeysAndDefaults(t *testing.T) {
	keys := configKeys()
	base, err := marshalConfig(t, minimalConfig)
	if err != nil {
		t.Fatal(err)
	}
	loaded := yamlTree(t, base)
	defaults := yamlTree(t, mustYAML(t, config.Default()))
	documented := map[string]bool{}
	docs := docFiles(t)
	n := 0
	for _, name := range []string{"docs/configuration.md", "docs/alerts.md"} {
		for _, r := range tables(docs[name]) {
			if r.header[0] != "Key" {
				continue
			}
			section := "alerts"
			if m := configSection.FindStringSubmatch(r.heading); m != nil {
				section = m[1]
			}
			key := section + "." + strings.Trim(r.cells[0], "`")
			n++
			documented[key] = true
			if _, ok := keys[key]; !ok {
				t.Errorf("%s documents the key %s, which the configuration does not have", name, key)
				continue
			}
			col := -1
			for i, h := range r.header {
				if h == "Default" {
					col = i
				}
			}
			if col < 0 {
				continue
			}
			if strings.Contains(r.cells[col], "see below") {
				continue // a structured default the text describes
			}
			if !strings.HasPrefix(r.cells[col], "`") {
				// "none", "cluster default", "system temporary directory": no value in the code.
				if v := lookup(defaults, key); !isEmpty(v) {
					t.Errorf("%s: %s: the stated default %q is no value, but the default is %v", name, key, r.cells[col], v)
				}
				continue
			}
			def := codeSpan.FindStringSubmatch(r.cells[col])[1]
			if ref, ok := strings.CutPrefix(def, "{"); ok && strings.HasSuffix(def, "}") {
				// The value of another key, as loaded.
				ref = strings.TrimSuffix(ref, "}")
				if !strings.Contains(ref, ".") {
					ref = section + "." + ref
				}
				if got, want := lookup(loaded, key), lookup(loaded, ref); !reflect.DeepEqual(got, want) || want == nil {
					t.Errorf("%s: %s: the stated default is %s (%v), but it loads as %v", name, key, def, want, got)
				}
				continue
			}
			if strings.Contains(def, "{") {
				continue // derived from another key in a way the table spells out
			}
			got, err := marshalConfig(t, withKey(key, def))
			if err != nil {
				t.Errorf("%s: %s: the stated default %s does not load: %v", name, key, def, err)
				continue
			}
			if got != base {
				t.Errorf("%s: %s: the stated default %s is not the default", name, key, def)
			}
		}
	}
	for key, typ := range keys {
		if !documented[key] && isLeaf(typ) && !documentedAbove(key, documented) {
			t.Errorf("the configuration has the key %s, which no key table documents", key)
		}
	}
	if n < 40 {
		t.Errorf("only %d keys found in the docs' key tables", n)
	}
	t.Logf("%d keys checked", n)
}

// isLeaf tells whether a key of type t holds a value rather than keys of its own.
func isLeaf(t reflect.Type) bool {
	unmarshaler := reflect.TypeFor[yaml.Unmarshaler]()
	return t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshaler) || t.Implements(unmarshaler)
}

// documentedAbove tells whether a section holding key is documented as a whole (a list of
// objects, such as alerts.filters, whose items a table of its own describes).
func documentedAbove(key string, documented map[string]bool) bool {
	for i := strings.LastIndex(key, "."); i > 0; i = strings.LastIndex(key, ".") {
		key = key[:i]
		if documented[key] {
			return true
		}
	}
	return false
}

// yamlTree decodes YAML text into nested maps.
func yamlTree(t *testing.T, text string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// lookup returns the value at a dotted key path of a tree from yamlTree, nil if there is none.
func lookup(tree map[string]any, key string) any {
	var v any = tree
	for _, p := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// isEmpty tells whether a rendered value is no value: null, "", 0, false or an empty list or map.
func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	return reflect.ValueOf(v).IsZero() || (reflect.ValueOf(v).Kind() == reflect.Slice || reflect.ValueOf(v).Kind() == reflect.Map) && reflect.ValueOf(v).Len() == 0
}

// countAllKinds counts one document of every kind, as the crawl and the poller do.
func countAllKinds(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	for _, r := range []index.Result{{}, {Existed: true}, {Err: errors.New("refused")}} {
		c := m.CountDocuments(nopSink{r})
		for _, k := range []index.Kind{index.Messages, index.Attachments, alerts.AlertsKind} {
			if err := c.Add(t.Context(), index.Doc{Kind: k}, func(index.Result) {}); err != nil {
				t.Fatal(err)
			}
		}
	}
	g := job.CountedGroups(nopGroups{}, m)
	if _, err := g.PutGroups(t.Context(), []alerts.GroupWrite{{ID: "g"}}); err != nil {
		t.Fatal(err)
	}
}

// nopSink gives every document the same outcome.
type nopSink struct{ r index.Result }

func (s nopSink) Add(_ context.Context, _ index.Doc, done func(index.Result)) error {
	done(s.r)
	return nil
}

// nopGroups acknowledges every group write.
type nopGroups struct{}

func (nopGroups) GetGroups(context.Context, []string) (map[string]alerts.StoredGroup, error) {
	return nil, nil
}

func (nopGroups) PutGroups(_ context.Context, ws []alerts.GroupWrite) ([]error, error) {
	return make([]error, len(ws)), nil
}

// TestDocsCheckersCatchMistakes: the checks above would notice what they are for.
func TestDocsCheckersCatchMistakes(t *testing.T) {
	doc := "Run `mimecrawl crawl --config c.yaml --jsn`, then\n\n```sh\nmimecrawl status --config c.yaml \\\n  --json | jq .\nmimecrawl help version\n```\n" +
		"and `mimecrawl plan --config c.yaml [--json]`.\n"
	got := commandLines(doc)
	want := []string{"mimecrawl crawl --config c.yaml --jsn", "mimecrawl status --config c.yaml --json", "mimecrawl help version", "mimecrawl plan --config c.yaml --json"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commandLines = %q, want %q", got, want)
	}
	for _, l := range want {
		if bad := parseCommandLine(l) != ""; bad != strings.Contains(l, "--jsn") {
			t.Errorf("parseCommandLine(%q) = %q", l, parseCommandLine(l))
		}
	}
	if got := expandField("email.attachments.file.{name, hash.sha256}", ""); !reflect.DeepEqual(got, []string{"email.attachments.file.name", "email.attachments.file.hash.sha256"}) {
		t.Errorf("expandField = %q", got)
	}
	if fields := mappingFields(); !fields["email.message_id"] || fields["mime_message_id"] {
		t.Error("mappingFields does not read the mappings")
	}
	if _, ok := configKeys()["elasticsearch.bulk.flush_bytes"]; !ok {
		t.Error("configKeys does not reach nested keys")
	}
	if got, err := marshalConfig(t, withKey("performance.page_size", "100")); err != nil || got == "" {
		t.Errorf("withKey: %v", err)
	}
	if base, _ := marshalConfig(t, minimalConfig); base == mustMarshal(t, withKey("performance.page_size", "99")) {
		t.Error("a default that is not the default compares equal")
	}
}

func mustMarshal(t *testing.T, text string) string {
	t.Helper()
	s, err := marshalConfig(t, text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestArchitectureNamesEveryPackage holds docs/architecture.md's package table to the module:
// every package (a directory with non-test Go files, outside the deploy module and testdata)
// has its row, and every row names a package that exists.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	raw, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9/_-]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		rows[m[1]] = true
	}
	pkgs := map[string]bool{}
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", path)
		if d.IsDir() {
			switch {
			case rel == ".":
				return nil
			case strings.HasPrefix(d.Name(), "."), d.Name() == "testdata", rel == "deploy", rel == "bench", rel == "scripts", rel == "docs", rel == "examples":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			pkgs[filepath.ToSlash(filepath.Dir(rel))] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages; the walk is wrong: %v", len(pkgs), pkgs)
	}
	for p := range pkgs {
		if !rows[p] {
			t.Errorf("package %s has no row in docs/architecture.md's package table", p)
		}
	}
	for r := range rows {
		if !pkgs[r] {
			t.Errorf("docs/architecture.md names package %s, which does not exist", r)
		}
	}
}
