package index_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mimecrawl/mimecrawl/index"
)

// closedAddress returns an address where nothing listens.
func closedAddress(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestOpenErrors(t *testing.T) {
	addr := closedAddress(t)
	old := versionServer(t, "7.17.29")
	newer := versionServer(t, "10.0.0")
	tooOld8 := versionServer(t, "8.6.2")

	tests := []struct {
		name     string
		cfg      index.Config
		want     []string
		mustNot  []string
		sentinel error
		// versionErr: the error is a *index.VersionError.
		versionErr bool
	}{
		{
			name:    "unreachable with password in URL",
			cfg:     index.Config{Addresses: []string{"http://elastic:hunter2@" + addr}},
			want:    []string{"http://" + addr, "unreachable"},
			mustNot: []string{"hunter2"},
		},
		{
			name:    "unreachable with password and api key",
			cfg:     index.Config{Addresses: []string{"http://" + addr}, Username: "elastic", Password: "s3cr3t-pw"},
			want:    []string{"http://" + addr, "unreachable"},
			mustNot: []string{"s3cr3t-pw"},
		},
		{
			name:       "version 7",
			cfg:        index.Config{Addresses: []string{old.URL}},
			versionErr: true,
			want:       []string{old.URL, `"7.17.29"`, "supports 8.7 to 9.x"},
		},
		{
			name:       "8.x without ignore_missing_component_templates",
			cfg:        index.Config{Addresses: []string{tooOld8.URL}},
			versionErr: true,
			want:       []string{tooOld8.URL, `"8.6.2"`, "supports 8.7 to 9.x"},
		},
		{
			name:       "a major no release was tested on",
			cfg:        index.Config{Addresses: []string{newer.URL}},
			versionErr: true,
			want:       []string{newer.URL, `"10.0.0"`, "supports 8.7 to 9.x"},
		},
		{
			name: "no address",
			cfg:  index.Config{},
			want: []string{"no Elasticsearch address"},
		},
		{
			name: "bad prefix",
			cfg:  index.Config{Addresses: []string{old.URL}, IndexPrefix: "Mime Cast"},
			want: []string{`"Mime Cast"`, "lowercase"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.RetryBackoff = func(int) time.Duration { return time.Millisecond }
			tt.cfg.Logger = zerolog.Nop()
			_, err := index.Open(context.Background(), tt.cfg)
			if err == nil {
				t.Fatal("Open succeeded, want an error")
			}
			var ve *index.VersionError
			if got := errors.As(err, &ve); got != tt.versionErr {
				t.Errorf("error %q: is a *VersionError = %v, want %v", err, got, tt.versionErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tt.mustNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q reveals %q", err, w)
				}
			}
		})
	}
}

// versionServer answers the version request of Open as a node of version v would.
func versionServer(t *testing.T, v string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/_nodes/_local" {
			t.Errorf("unexpected request %s", r.URL)
		}
		_, _ = w.Write([]byte(`{"nodes":{"n1":{"version":"` + v + `"}}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOpen(t *testing.T) {
	e := newEnv(t)
	c, err := index.Open(context.Background(), e.config(t, ""))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !strings.HasPrefix(c.Version(), "8.") && !strings.HasPrefix(c.Version(), "9.") {
		t.Errorf("Version() = %q, want 8.x or 9.x", c.Version())
	}
	if want := int(c.Version()[0] - '0'); c.Major() != want {
		t.Errorf("Major() = %d for version %s", c.Major(), c.Version())
	}
	if got, want := c.IndexName(index.Messages), e.prefix+"-messages"; got != want {
		t.Errorf("IndexName(Messages) = %q, want %q", got, want)
	}
	if got, want := c.IndexName(index.Attachments), e.prefix+"-attachments"; got != want {
		t.Errorf("IndexName(Attachments) = %q, want %q", got, want)
	}
	// The processor list comes from the cluster; compare with what it says itself.
	var nodes struct {
		Nodes map[string]struct {
			Ingest struct {
				Processors []struct {
					Type string `json:"type"`
				} `json:"processors"`
			} `json:"ingest"`
		} `json:"nodes"`
	}
	getJSON(t, e.base+"/_nodes/ingest", &nodes)
	want := len(nodes.Nodes) > 0
	for _, n := range nodes.Nodes {
		has := false
		for _, p := range n.Ingest.Processors {
			has = has || p.Type == "attachment"
		}
		want = want && has
	}
	if c.AttachmentProcessor() != want {
		t.Errorf("AttachmentProcessor() = %v, cluster says %v", c.AttachmentProcessor(), want)
	}
}

// mapping is the part of GET /{index}/_mapping the tests look at.
type mapping struct {
	Dynamic    string         `json:"dynamic"`
	Source     map[string]any `json:"_source"`
	Meta       map[string]any `json:"_meta"`
	Properties map[string]any `json:"properties"`
}

// field returns the mapping of a dotted field name ("email.from.address"), nil if absent.
func (m mapping) field(name string) map[string]any {
	props := m.Properties
	var f map[string]any
	for _, part := range strings.Split(name, ".") {
		f, _ = props[part].(map[string]any)
		if f == nil {
			return nil
		}
		props, _ = f["properties"].(map[string]any)
	}
	return f
}

// getMapping reads the mapping of the index behind name (an index or an alias of one).
func getMapping(t *testing.T, base, name string) mapping {
	t.Helper()
	var res map[string]struct {
		Mappings mapping `json:"mappings"`
	}
	getJSON(t, base+"/"+name+"/_mapping", &res)
	if len(res) != 1 {
		t.Fatalf("%s: %d indices, want 1", name, len(res))
	}
	for _, r := range res {
		return r.Mappings
	}
	return mapping{}
}

func TestSetupIsIdempotent(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	// open ran Setup once; a second run on existing indices must succeed and change nothing.
	if err := c.Setup(context.Background()); err != nil {
		t.Fatalf("second setup: %v", err)
	}

	msg := getMapping(t, e.base, c.IndexName(index.Messages))
	att := getMapping(t, e.base, c.IndexName(index.Attachments))
	if msg.Dynamic != "false" || att.Dynamic != "false" {
		t.Errorf("dynamic = %q/%q, want false", msg.Dynamic, att.Dynamic)
	}
	types := []struct {
		m     mapping
		field string
		want  string
		sub   string // a sub-field of type text or keyword, if any
	}{
		{msg, index.FieldMailbox, "keyword", ""},
		{msg, index.FieldMessageID, "keyword", ""},
		{msg, index.FieldTimestamp, "date", ""},
		{msg, index.FieldSubject, "keyword", "text"},
		{msg, "mimecast.body", "text", ""},
		{msg, "mimecast.headers", "flattened", ""},
		{msg, index.FieldGeneration, "long", ""},
		{msg, "mimecast.oversize", "boolean", ""},
		{msg, "mimecast.auth.dkim", "keyword", ""},
		{msg, "email.from.address", "keyword", ""},
		{msg, "email.attachments", "nested", ""},
		{msg, "email.attachments.file.hash.sha256", "keyword", ""},
		{msg, "mimecast.from.name", "text", "keyword"},
		{att, "email.attachments.file.name", "keyword", ""},
		{att, "email.attachments.file.hash.sha256", "keyword", ""},
		{att, "email.attachments.file.mime_type", "keyword", ""},
		{att, "email.attachments.file.size", "long", ""},
		{att, "mimecast.oversize", "boolean", ""},
		{att, "mimecast.content", "text", ""},
		{att, "mimecast.attachment.content", "text", ""},
	}
	for _, tt := range types {
		t.Run(tt.field, func(t *testing.T) {
			f := tt.m.field(tt.field)
			if f == nil {
				t.Fatalf("field %s missing from the mapping", tt.field)
			}
			typ, _ := f["type"].(string)
			if tt.want == "nested" || f["properties"] == nil {
				if typ != tt.want {
					t.Errorf("type of %s = %q, want %q", tt.field, typ, tt.want)
				}
			}
			if tt.sub != "" {
				fields, _ := f["fields"].(map[string]any)
				sub, _ := fields[tt.sub].(map[string]any)
				if sub["type"] != tt.sub {
					t.Errorf("%s has no %s sub-field: %v", tt.field, tt.sub, fields)
				}
			}
		})
	}
	if f := att.field("email.attachments"); f["type"] != nil {
		t.Errorf("attachments index: email.attachments is %v, want a plain object (one file per document)", f["type"])
	}
	if ex, _ := att.Source["excludes"].([]any); len(ex) != 1 || ex[0] != "mimecast.data" {
		t.Errorf("attachments _source excludes = %v, want [mimecast.data]", att.Source["excludes"])
	}

	var settings map[string]struct {
		Settings struct {
			Index struct {
				Replicas string `json:"number_of_replicas"`
			} `json:"index"`
		} `json:"settings"`
	}
	name := c.VersionedIndex(index.Messages)
	getJSON(t, e.base+"/"+name+"/_settings", &settings)
	if got := settings[name].Settings.Index.Replicas; got != "0" {
		t.Errorf("number_of_replicas = %q, want 0", got)
	}
}

func TestSetupExistingIndex(t *testing.T) {
	tests := []struct {
		name    string
		mapping string // of the versioned index created before Setup, with its alias and mark
		wantErr string
	}{
		{
			name:    "missing fields are added",
			mapping: `{"_meta":{"managed_by":"mimecrawl"},"properties":{"mimecast":{"properties":{"mailbox":{"type":"keyword"}}}}}`,
		},
		{
			name:    "a field of another type is an error",
			mapping: `{"_meta":{"managed_by":"mimecrawl"},"properties":{"mimecast":{"properties":{"generation":{"type":"keyword"}}}}}`,
			wantErr: "-messages-000001",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			body := `{"mappings":` + tt.mapping + `,"aliases":{"` + e.prefix + `-messages":{"is_write_index":true}}}`
			req, _ := http.NewRequest(http.MethodPut, e.base+"/"+e.prefix+"-messages-000001", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("create index: status %d", res.StatusCode)
			}
			c, err := index.Open(context.Background(), e.config(t, ""))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Setup(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("setup error = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("setup: %v", err)
			}
			m := getMapping(t, e.base, c.IndexName(index.Messages))
			if m.field(index.FieldSubject)["type"] != "keyword" || m.field("mimecast.headers")["type"] != "flattened" {
				t.Errorf("fields not added to the existing index: %+v", m.Properties)
			}
		})
	}
}

func TestCheckWrite(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	if err := c.CheckWrite(context.Background()); err != nil {
		t.Fatalf("check write: %v", err)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c, index.Messages, index.Filter{}); n != 0 {
		t.Errorf("%d documents left after the write check, want 0", n)
	}
}

func TestExisting(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	write(t, c, message("m1", "a@example.com", "INBOX", 1), message("m2", "a@example.com", "INBOX", 1),
		attachment("m1", "a@example.com", 1))

	// More ids than one _mget request takes, so the chunks are exercised.
	ask := append(ids("missing-", 2500), "m1", "m2")
	got, err := c.Existing(context.Background(), index.Messages, ask)
	if err != nil {
		t.Fatalf("existing: %v", err)
	}
	if len(got) != 2 || !got["m1"] || !got["m2"] {
		t.Errorf("Existing(messages) = %v, want m1 and m2", got)
	}
	got, err = c.Existing(context.Background(), index.Attachments, []string{"m1", "m2"})
	if err != nil {
		t.Fatalf("existing: %v", err)
	}
	if len(got) != 1 || !got["m1"] {
		t.Errorf("Existing(attachments) = %v, want m1 only", got)
	}
	got, err = c.Existing(context.Background(), index.Messages, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Existing(nil) = %v, %v; want empty", got, err)
	}
}

func TestDeleteWhere(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))

	// 2,300 documents of mailbox a, view INBOX, generation 1 span three pages of the walk.
	var docs []index.Doc
	for _, id := range ids("a-inbox-g1-", 2300) {
		docs = append(docs, message(id, "a@example.com", "INBOX", 1))
	}
	for _, id := range ids("a-inbox-g2-", 5) {
		docs = append(docs, message(id, "a@example.com", "INBOX", 2))
	}
	for _, id := range ids("a-sent-g1-", 7) {
		docs = append(docs, message(id, "a@example.com", "SENT", 1))
	}
	for _, id := range ids("b-inbox-g1-", 11) {
		docs = append(docs, message(id, "b@example.com", "INBOX", 1))
	}
	write(t, c, docs...)

	a := map[string]string{index.FieldMailbox: "a@example.com"}
	aInbox := map[string]string{index.FieldMailbox: "a@example.com", index.FieldView: "INBOX"}
	tests := []struct {
		name        string
		filter      index.Filter
		wantDeleted int64
		wantLeft    int64
	}{
		{"nothing matches", index.Filter{Terms: map[string]string{index.FieldMailbox: "nobody@example.com"}}, 0, 2323},
		{"generation below 1 matches nothing", index.Filter{Terms: a, GenerationBelow: 1}, 0, 2323},
		{"older generation of one view, several pages", index.Filter{Terms: aInbox, GenerationBelow: 2}, 2300, 23},
		{"second run finds nothing more", index.Filter{Terms: aInbox, GenerationBelow: 2}, 0, 23},
		{"generation only", index.Filter{GenerationBelow: 2}, 18, 5},
		{"terms only", index.Filter{Terms: a}, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := count(t, c, index.Messages, tt.filter)
			n, err := c.DeleteWhere(context.Background(), index.Messages, tt.filter)
			if err != nil {
				t.Fatalf("delete: %v", err)
			}
			if n != tt.wantDeleted || before != tt.wantDeleted {
				t.Errorf("deleted %d (count before %d), want %d", n, before, tt.wantDeleted)
			}
			if err := c.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if left := count(t, c, index.Messages, index.Filter{}); left != tt.wantLeft {
				t.Errorf("%d documents left, want %d", left, tt.wantLeft)
			}
		})
	}
}

func TestDeleteWhereRefusesEmptyFilter(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	write(t, c, message("m1", "a@example.com", "INBOX", 1))
	if _, err := c.DeleteWhere(context.Background(), index.Messages, index.Filter{Terms: map[string]string{}}); err == nil {
		t.Fatal("DeleteWhere with an empty filter succeeded")
	}
	if n := count(t, c, index.Messages, index.Filter{}); n != 1 {
		t.Errorf("%d documents left, want 1", n)
	}
}

func TestStatusErrorNamesTheRequest(t *testing.T) {
	e := newEnv(t)
	c, err := index.Open(context.Background(), e.config(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	// No Setup: the index is missing, which Elasticsearch reports as 404 index_not_found.
	_, err = c.Count(context.Background(), index.Messages, index.Filter{})
	var se *index.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("count on a missing index: %v, want a StatusError", err)
	}
	if se.Status != http.StatusNotFound || se.Type != "index_not_found_exception" || !strings.Contains(err.Error(), e.prefix+"-messages") {
		t.Errorf("error = %v (status %d, type %q)", err, se.Status, se.Type)
	}
}

func TestCheckWriteNeedsSetup(t *testing.T) {
	e := newEnv(t)
	c, err := index.Open(context.Background(), e.config(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckWrite(context.Background())
	if err == nil || !strings.Contains(err.Error(), e.prefix+"-messages") {
		t.Fatalf("check write before setup = %v, want an error naming the index", err)
	}
	var created []any
	getJSON(t, e.base+"/_cat/indices/"+e.prefix+"-*?format=json", &created)
	if len(created) != 0 {
		t.Errorf("the check created indices: %v", created)
	}
}

// An operator's @custom template added after the indices exist: its new field reaches the
// existing index, its change to one of our fields (an analyzer) does not fail Setup, and the
// index's settings stay as they are.
func TestSetupWithCustomTemplateOnExistingIndex(t *testing.T) {
	e := newEnv(t)
	c := open(t, e.config(t, ""))
	custom := `{"template":{"settings":{"number_of_replicas":3,"analysis":{"analyzer":{"plain":{"tokenizer":"standard","filter":["lowercase"]}}}},
	  "mappings":{"properties":{"ops":{"properties":{"ticket":{"type":"keyword"}}},"mimecast":{"properties":{"body":{"type":"text","analyzer":"plain"}}}}}}}`
	req, _ := http.NewRequest(http.MethodPut, e.base+"/_component_template/"+c.CustomTemplate(index.Messages), strings.NewReader(custom))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("put @custom: status %d", res.StatusCode)
	}
	if err := c.Setup(context.Background()); err != nil {
		t.Fatalf("setup with an operator template: %v", err)
	}
	m := getMapping(t, e.base, c.IndexName(index.Messages))
	if m.field("ops.ticket")["type"] != "keyword" {
		t.Errorf("the operator's field was not added to the existing index: %v", m.Properties["ops"])
	}
	if m.field("mimecast.body")["analyzer"] != nil {
		t.Errorf("mimecast.body of the existing index changed: %v", m.field("mimecast.body"))
	}
	var settings map[string]struct {
		Settings struct {
			Index struct {
				Replicas string `json:"number_of_replicas"`
			} `json:"index"`
		} `json:"settings"`
	}
	name := c.VersionedIndex(index.Messages)
	getJSON(t, e.base+"/"+name+"/_settings", &settings)
	if got := settings[name].Settings.Index.Replicas; got != "0" {
		t.Errorf("number_of_replicas of the existing index = %q; Setup must not change settings", got)
	}
}
