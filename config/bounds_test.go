package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalYAML = "mimecast: {client_id: a, client_secret: b}\n"

// yamlList renders a list under key (a path of nested mappings, e.g. "mailboxes.include").
func yamlList(key string, items []string) string {
	parts := strings.Split(key, ".")
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":\n")
	}
	indent := strings.Repeat("  ", len(parts))
	for _, it := range items {
		fmt.Fprintf(&b, "%s- %q\n", indent, it)
	}
	return b.String()
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestManyProblemsAreEachReportedOnce: tens of thousands of bad entries give one line each,
// none repeated by validation. Checking them used to compare every problem with every other.
func TestManyProblemsAreEachReportedOnce(t *testing.T) {
	lists := []string{"domains.include", "mailboxes.include", "mailboxes.exclude", "messages.exclude_subjects", "attachments.exclude_names"}
	var doc strings.Builder
	doc.WriteString(minimalYAML)
	for _, l := range lists {
		doc.WriteString(yamlList(l, repeat("", MaxListEntries)))
	}
	// Every section is written once, so nested keys of one section must share it.
	src := strings.Replace(doc.String(), "mailboxes:\n  exclude:", "  exclude:", 1)
	_, err := Parse([]byte(src), nil)
	if err == nil {
		t.Fatal("Parse accepted empty rules")
	}
	lines := strings.Split(err.Error(), "\n")
	if want := len(lists) * MaxListEntries; len(lines) != want {
		t.Fatalf("%d problem lines, want %d (one per empty rule); first: %q", len(lines), want, lines[0])
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Fatalf("problem reported twice: %q", l)
		}
		seen[l] = true
		if !strings.Contains(l, "empty regular expression") {
			t.Fatalf("unexpected problem %q", l)
		}
	}
	if !seen[`line 7: domains.include[3]: "" is an empty regular expression; write a pattern such as ".*@example\.com"`] {
		t.Errorf("the problem of domains.include[3] does not name its line and path; first lines: %q", lines[:3])
	}
}

func TestListBounds(t *testing.T) {
	tests := []struct {
		name, key string
		items     []string
	}{
		{"rules", "mailboxes.exclude", repeat("x", MaxListEntries+1)},
		{"views", "messages.views", repeat("INBOX", MaxListEntries+1)},
		{"addresses", "elasticsearch.addresses", repeat("http://127.0.0.1:9200", MaxListEntries+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimalYAML+yamlList(tt.key, tt.items)), nil)
			want := fmt.Sprintf("%s: has %d entries; the limit is %d", tt.key, MaxListEntries+1, MaxListEntries)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Parse = %v, want %q", err, want)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Errorf("%d problems, want only the bound:\n%v", n, err)
			}
		})
	}
	t.Run("at the limit", func(t *testing.T) {
		items := make([]string, MaxListEntries)
		for i := range items {
			items[i] = fmt.Sprintf("user%d@example\\.com", i)
		}
		c, err := Parse([]byte(minimalYAML+yamlList("mailboxes.include", items)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Mailboxes.Include) != MaxListEntries || !c.Mailboxes.Include[9999].MatchString("user9999@example.com") {
			t.Errorf("got %d rules", len(c.Mailboxes.Include))
		}
	})
	t.Run("hand-built", func(t *testing.T) {
		c := Default()
		c.Mimecast.ClientID, c.Mimecast.ClientSecret = "a", "b"
		c.Elasticsearch.Addresses = nil
		for i := 0; i <= MaxListEntries; i++ {
			c.Elasticsearch.Addresses = append(c.Elasticsearch.Addresses, fmt.Sprintf("http://10.0.%d.%d:9200", i/250, i%250))
		}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "elasticsearch.addresses: has 10001 entries; the limit is 10000") {
			t.Errorf("Validate = %v, want the list bound", err)
		}
	})
}

func TestRegexSourceBound(t *testing.T) {
	rule := strings.Repeat("a", 1000)
	n := MaxRegexBytes/len(rule) + 1
	_, err := Parse([]byte(minimalYAML+yamlList("messages.exclude_subjects", repeat(rule, n))), nil)
	want := fmt.Sprintf("the limit for all of them together is %d bytes", MaxRegexBytes)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Parse = %v, want %q", err, want)
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 1 {
		t.Errorf("%d problems, want the bound once:\n%.500s", got, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("messages.exclude_subjects[%d]", n-1)) {
		t.Errorf("the problem does not name the first rule past the limit: %v", err)
	}

	// Just under the limit everything compiles.
	c, err := Parse([]byte(minimalYAML+yamlList("messages.exclude_subjects", repeat(rule, n-1))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Messages.ExcludeSubjects) != n-1 {
		t.Errorf("%d rules, want %d", len(c.Messages.ExcludeSubjects), n-1)
	}
}

func TestFileSizeBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yml")
	// Valid YAML all the way: a comment padding the file past the limit.
	pad := "# " + strings.Repeat("x", MaxFileBytes) + "\n"
	if err := os.WriteFile(path, []byte(minimalYAML+pad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	want := fmt.Sprintf("%s: more than %d bytes; the limit is %d bytes (4MiB)", path, MaxFileBytes, MaxFileBytes)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Load = %v, want %q", err, want)
	}
	if _, err := Parse([]byte(minimalYAML+pad), nil); err == nil || !strings.Contains(err.Error(), "the limit is") {
		t.Errorf("Parse = %v, want the size bound", err)
	}

	// At the limit the file loads.
	if err := os.WriteFile(path, []byte(minimalYAML+pad[:MaxFileBytes-len(minimalYAML)-1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err != nil {
		t.Errorf("Load of a file at the limit: %v", err)
	}
}

func TestCoveredBy(t *testing.T) {
	reported := map[string]bool{"mailboxes.include": true, "messages.views[1]": true, "elasticsearch": true}
	for path, want := range map[string]bool{
		"mailboxes.include":          true,
		"mailboxes.include[3]":       true,
		"mailboxes.exclude[3]":       false,
		"messages.views[1]":          true,
		"messages.views[10]":         false,
		"messages.views":             false,
		"elasticsearch.bulk.workers": true,
		"mailboxes":                  false,
	} {
		if got := coveredBy(path, reported); got != want {
			t.Errorf("coveredBy(%q) = %v, want %v", path, got, want)
		}
	}
}
