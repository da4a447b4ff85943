package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/crawler"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// checker prints one line per check and remembers whether any failed. Each line starts
// with its verdict (ok, warn, skip or FAIL) and the check's name in a column wide enough for
// every name this configuration can produce.
type checker struct {
	w              io.Writer
	quiet          bool // only FAIL and warn lines, and the verdict
	width          int
	failed, warned int
	// mimecastDown is why Mimecast cannot be reached with these credentials, once reported:
	// every later probe would fail for the same reason, so it is skipped and named instead.
	mimecastDown string
}

// checkNameWidth is the name column: the longest fixed check name.
const checkNameWidth = len("elasticsearch attachment text")

// line writes one check: its verdict, its name, and the detail on the same line, whole, so
// that one grep finds it.
func (c *checker) line(verdict, name, detail, fix string) {
	w := max(c.width, checkNameWidth)
	fmt.Fprintf(c.w, "%-5s %-*s  %s\n", verdict, w, name, detail)
	if fix != "" {
		fmt.Fprintf(c.w, "%-5s %-*s  fix: %s\n", "", w, "", fix)
	}
}

func (c *checker) ok(name, detail string) {
	if !c.quiet {
		c.line("ok", name, detail, "")
	}
}

func (c *checker) fail(name string, err error, fix string) {
	c.failed++
	c.line("FAIL", name, fmt.Sprint(err), fix)
}

// warn is a problem that does not stop a crawl: an optional source that is not permitted.
func (c *checker) warn(name, what, fix string) {
	c.warned++
	c.line("warn", name, what, fix)
}

func (c *checker) skip(name, why string) {
	if !c.quiet {
		c.line("skip", name, why, "")
	}
}

// errStop ends a listing after its first page: check asks for the smallest answer.
var errStop = errors.New("first page is enough")

// runCheck is the connector's "test and save": it proves, with the smallest request each, that
// the configuration is valid and every endpoint and service the configured features need answers.
func runCheck(ctx context.Context, path, level, format string, shard crawler.Shard, quiet bool, stdout, stderr io.Writer) int {
	c := &checker{w: stdout, quiet: quiet}
	// The check lines are the output; routine log lines would only bury them, unless
	// logging.level or --log-level asks for them.
	a, err := newAppWith(ctx, config.Load, path, level, format, stdout, stderr, true)
	if err != nil {
		c.fail("config", err, "correct the keys named above; see docs/configuration.md")
		return exitFatal
	}
	defer a.close()
	a.shard = shard
	for _, src := range a.cfg.Alerts.Sources {
		c.width = max(c.width, len("alerts source "+src))
	}
	c.ok("config", path)
	c.ok("crawl memory", fmt.Sprintf("up to %s with this configuration; a pod's memory limit needs at least this (docs/deploy.md, Memory)",
		humanBytes(int64(a.cfg.CrawlMemory()))))
	a.checkMimecast(ctx, c)
	a.checkElasticsearch(ctx, c)
	a.checkState(c)
	a.checkAlerts(ctx, c)
	// The verdicts come first; the configuration they were made with follows them.
	code := exitOK
	switch {
	case c.failed > 0:
		fmt.Fprintf(stdout, "\n%s failed", plural(int64(c.failed), "check"))
		code = exitFatal
	default:
		fmt.Fprint(stdout, "\nall checks passed")
	}
	if c.warned > 0 {
		fmt.Fprintf(stdout, " (%s)", plural(int64(c.warned), "warning"))
	}
	fmt.Fprintln(stdout)
	if !quiet {
		fmt.Fprintln(stdout)
		a.printEffectiveConfig(stdout, format)
	}
	return code
}

// mimecastFix turns a client error into advice a person can act on.
func mimecastFix(err error) string {
	var me *mimecast.Error
	switch {
	case errors.As(err, &me) && me.Status == 403:
		if me.Permission != "" {
			return fmt.Sprintf("give the API 2.0 application's role the permission %q (and the product that carries it)", me.Permission)
		}
		return "give the API 2.0 application's role the product and permission this endpoint needs"
	case mimecast.IsAuth(err):
		return "check mimecast.client_id and the client secret, and mimecast.auth_url"
	case mimecast.IsRetryable(err):
		return "check mimecast.base_url and the network path to it; retry later if Mimecast is throttling or down"
	}
	return ""
}

func (a *app) checkMimecast(ctx context.Context, c *checker) {
	client, err := a.mimecastClient()
	if err != nil {
		c.fail("mimecast client", err, "correct mimecast.base_url / mimecast.auth_url")
		return
	}
	defer client.Close()
	if err := client.Authenticate(ctx); err != nil {
		c.fail("mimecast token", err, mimecastFix(err))
		c.mimecastDown = "the Mimecast token failed (see above)"
		return
	}
	c.ok("mimecast token", a.cfg.Mimecast.AuthURL)

	domains, err := client.InternalDomains(ctx)
	if err != nil {
		c.fail("mimecast internal domains", err, mimecastFix(err))
		return
	}
	rules := a.rules()
	var kept []string
	for _, d := range domains {
		if rules.DomainDecision(strings.ToLower(d.Domain), d.Local).Kept {
			kept = append(kept, strings.ToLower(d.Domain))
		}
	}
	c.ok("mimecast internal domains", fmt.Sprintf("%d domains, %d kept by the rules", len(domains), len(kept)))
	if len(kept) == 0 {
		c.skip("mimecast internal users", "no domain is kept by domains.include / include_local")
		return
	}
	users, err := client.InternalUsers(ctx, kept[0], a.cfg.Performance.PageSize)
	if err != nil {
		c.fail("mimecast internal users", err, mimecastFix(err))
		return
	}
	c.ok("mimecast internal users", fmt.Sprintf("%d mailboxes in %s", len(users), kept[0]))
	if len(users) == 0 {
		c.skip("mimecast message list", "no mailbox to probe in "+kept[0])
		return
	}
	mailbox := users[0].EmailAddress
	var first *api.MessageSummary
	var listErr error
	for _, view := range a.cfg.Messages.Views {
		f := api.MessageListFilter{View: view, Mailbox: mailbox, Start: api.FormatTime(a.cfg.Messages.StartDate.Time)}
		listErr = client.ListMessages(ctx, f, 1, func(page []api.MessageSummary) error {
			if len(page) > 0 {
				first = &page[0]
			}
			return errStop
		})
		if listErr != nil && !errors.Is(listErr, errStop) {
			break
		}
		listErr = nil
		if first != nil {
			break
		}
	}
	if listErr != nil {
		c.fail("mimecast message list", listErr, mimecastFix(listErr))
		return
	}
	c.ok("mimecast message list", "mailbox "+mailbox)
	if first == nil {
		c.skip("mimecast message detail", "no message in "+mailbox+" since messages.start_date to probe")
		c.skip("mimecast get-file", "no message to probe")
		return
	}
	detail, err := client.MessageDetail(ctx, first.ID)
	if err != nil {
		c.fail("mimecast message detail", err, mimecastFix(err))
	} else {
		c.ok("mimecast message detail", plural(int64(len(detail.Attachments)), "attachment"))
	}
	rc, err := client.GetFile(ctx, first.ID)
	if err != nil {
		c.fail("mimecast get-file", err, mimecastFix(err))
		return
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil {
		c.fail("mimecast get-file", err, mimecastFix(err))
		return
	}
	c.ok("mimecast get-file", fmt.Sprintf("message body, %d bytes", n))
}

func (a *app) checkElasticsearch(ctx context.Context, c *checker) {
	cluster, err := a.cluster(ctx)
	var te *index.TimeoutError
	switch {
	case errors.As(err, &te):
		c.fail("elasticsearch", err, fmt.Sprintf("the node accepts connections but does not answer within elasticsearch.request_timeout (%s): check its health and load, and the proxy in front of it",
			a.cfg.Elasticsearch.RequestTimeout))
		return
	case index.IsAuthentication(err):
		c.fail("elasticsearch", err, "check elasticsearch.username and the password, or the api_key")
		return
	case index.IsUntrustedCertificate(err):
		c.fail("elasticsearch", err, "give the CA that signed the cluster's certificate as elasticsearch.ca_file, or its SHA-256 as elasticsearch.ca_fingerprint")
		return
	case errors.As(err, new(*index.VersionError)):
		c.fail("elasticsearch", err, "upgrade the cluster or point elasticsearch.addresses at one that runs Elasticsearch "+index.SupportedVersions())
		return
	case err != nil:
		c.fail("elasticsearch", err, "check elasticsearch.addresses (or cloud_id), credentials and ca_file; mimecrawl supports Elasticsearch "+index.SupportedVersions())
		return
	}
	c.ok("elasticsearch", "version "+cluster.Version()+", supported ("+index.SupportedVersions()+")")
	// An installation of an older schema is reported, not migrated: check changes no index
	// that holds documents; the next crawl migrates it.
	plan, err := cluster.Plan(ctx)
	if err != nil {
		fix := "the user needs view_index_metadata and read on " + a.cfg.Elasticsearch.IndexPrefix + "-* (see docs/permissions.md)"
		if index.IsForeign(err) {
			fix = "" // the error says what to do
		}
		c.fail("elasticsearch indices", err, fix)
		return
	}
	before, err := existing(ctx, cluster)
	if err != nil {
		c.fail("elasticsearch templates", err, "the user needs the monitor and view_index_metadata privileges")
		return
	}
	setup := cluster.Setup
	if len(plan) > 0 {
		setup = cluster.InstallTemplates
		for _, m := range plan {
			c.ok("elasticsearch upgrade", "the next crawl migrates "+m.Alias+": "+m.String())
		}
	}
	if err := setup(ctx); err != nil {
		fix := "the user needs manage_index_templates, manage_pipeline and, on " + a.cfg.Elasticsearch.IndexPrefix + "-*, create_index and manage (see docs/permissions.md)"
		if index.IsForeign(err) {
			fix = "" // the error says what to do
		}
		c.fail("elasticsearch templates", err, fix)
		return
	}
	c.ok("elasticsearch templates", before.describe()+" (templates are brought up to date)")
	if err := cluster.CheckWrite(ctx); err != nil {
		c.fail("elasticsearch write", err, "the user needs index and delete privileges on "+a.cfg.Elasticsearch.IndexPrefix+"-*")
		return
	}
	c.ok("elasticsearch write", "probe document written and deleted")
	switch {
	case !a.cfg.Attachments.Extract:
		c.skip("elasticsearch attachment text", "attachments.extract is false")
	case a.cfg.Attachments.Text == config.TextNone:
		c.skip("elasticsearch attachment text", "attachments.text is none: attachments are indexed with metadata only")
	case a.cfg.Attachments.Text == config.TextByCrawler:
		c.ok("elasticsearch attachment text", "attachments.text is crawler: mimecrawl extracts the text itself; no ingest processor needed")
	case cluster.AttachmentProcessor():
		c.ok("elasticsearch attachment text", "ingest attachment processor present: Elasticsearch extracts the text of attachments")
	default:
		c.ok("elasticsearch attachment text", "attachments.text is elasticsearch but the cluster has no ingest attachment processor: mimecrawl extracts the text itself")
	}
}

func (a *app) checkState(c *checker) {
	_, statErr := os.Stat(a.cfg.State.Path)
	created := errors.Is(statErr, os.ErrNotExist)
	st, err := a.openStore(false)
	if err != nil {
		fix := "check state.path is writable"
		switch {
		case os.IsPermission(errors.Unwrap(err)):
			fix = "give the user running mimecrawl write access to " + a.cfg.State.Path
		case errors.Is(err, state.ErrCorrupt):
			fix = "move the file away; the next crawl then re-indexes everything"
		}
		c.fail("state file", err, fix)
		return
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		c.fail("state file", err, "move the file away; the next crawl then re-indexes everything")
		return
	}
	if created {
		c.ok("state file", a.cfg.State.Path+" created (it did not exist), locked and checked")
		return
	}
	c.ok("state file", a.cfg.State.Path+" found, opened, locked and checked")
}

// printEffectiveConfig writes the configuration as loaded (defaults, file, environment), with
// every secret as <secret> (config.Secret marshals so) and derived settings as the values in
// force: the alerts state file, the spill directory, the log level and format this run uses.
func (a *app) printEffectiveConfig(w io.Writer, format string) {
	cfg := *a.cfg
	cfg.Alerts.StatePath = a.cfg.AlertsStatePath()
	if cfg.Attachments.SpillDir == "" {
		cfg.Attachments.SpillDir = os.TempDir()
	}
	cfg.Logging.Level = a.level
	if format != "" {
		cfg.Logging.Format = format
	}
	out, err := yaml.Marshal(&cfg)
	if err != nil {
		fmt.Fprintf(w, "(the effective configuration cannot be shown: %v)\n", err)
		return
	}
	fmt.Fprintln(w, "effective configuration (secrets shown as <secret>; derived values as in force):")
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
	if a.shard.Sharded() {
		fmt.Fprintf(w, "  # shard %s\n", a.shard)
	}
}

// setupState is which of what Setup installs existed before it ran.
type setupState struct {
	templates, indices map[string]bool
}

// existing finds which index templates and indices of this prefix exist, so that check can say
// what it created and what it found.
func existing(ctx context.Context, cluster *index.Cluster) (setupState, error) {
	es := cluster.Client()
	s := setupState{templates: map[string]bool{}, indices: map[string]bool{}}
	for _, k := range []index.Kind{index.Messages, index.Attachments} {
		name := cluster.IndexName(k)
		res, err := es.Indices.ExistsIndexTemplate(name, es.Indices.ExistsIndexTemplate.WithContext(ctx))
		if err != nil {
			return s, fmt.Errorf("look for index template %s: %w", name, err)
		}
		res.Body.Close()
		s.templates[name] = res.StatusCode == 200
		res, err = es.Indices.Exists([]string{name}, es.Indices.Exists.WithContext(ctx))
		if err != nil {
			return s, fmt.Errorf("look for index %s: %w", name, err)
		}
		res.Body.Close()
		s.indices[name] = res.StatusCode == 200
	}
	return s, nil
}

func (s setupState) describe() string {
	var parts []string
	for _, kind := range []struct {
		what string
		m    map[string]bool
	}{{"template", s.templates}, {"index", s.indices}} {
		names := make([]string, 0, len(kind.m))
		for n := range kind.m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			verb := "created"
			if kind.m[n] {
				verb = "found"
			}
			parts = append(parts, verb+" "+kind.what+" "+n)
		}
	}
	return strings.Join(parts, ", ")
}
