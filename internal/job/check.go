package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/alerts"
	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/index"
	"github.com/mimecrawl/mimecrawl/integration/mimecast"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
	"github.com/mimecrawl/mimecrawl/state"
)

// Verdict is the outcome of one check.
type Verdict string

// The verdicts, as check prints them.
const (
	VerdictOK   Verdict = "ok"
	VerdictWarn Verdict = "warn" // a problem that does not stop a crawl: an optional source that is not permitted
	VerdictSkip Verdict = "skip" // not checked, and why
	VerdictFail Verdict = "FAIL"
)

// CheckLine is one check: its verdict, its name, what was found and, for a problem, the fix.
type CheckLine struct {
	Verdict Verdict
	Name    string
	Detail  string
	Fix     string
}

// CheckReport is what `check` found, in the order the checks ran.
type CheckReport struct {
	Lines          []CheckLine
	Failed, Warned int
}

// Code is check's exit code: fatal when a check failed; warnings do not fail it.
func (r *CheckReport) Code() Code {
	if r.Failed > 0 {
		return CodeFatal
	}
	return CodeOK
}

// add records l, and tells seen.
func (r *CheckReport) add(l CheckLine, seen func(CheckLine)) {
	switch l.Verdict {
	case VerdictFail:
		r.Failed++
	case VerdictWarn:
		r.Warned++
	}
	r.Lines = append(r.Lines, l)
	if seen != nil {
		seen(l)
	}
}

// ConfigFailed is the report of a check whose configuration does not load: one failed line,
// and nothing else is checked.
func ConfigFailed(err error, seen func(CheckLine)) *CheckReport {
	r := &CheckReport{}
	r.add(CheckLine{Verdict: VerdictFail, Name: "config", Detail: fmt.Sprint(err), Fix: "correct the keys named above; see docs/configuration.md"}, seen)
	return r
}

// CheckNameWidth is the length of the longest check name the configuration can produce: the
// width of a column that holds every name.
func CheckNameWidth(cfg *config.Config) int {
	w := len("elasticsearch attachment text")
	for _, src := range cfg.Alerts.Sources {
		w = max(w, len("alerts source "+src))
	}
	return w
}

// Check is the connector's "test and save": it proves, with the smallest request each, that
// the configuration (loaded from configPath) is valid and every endpoint and service the
// configured features need answers. seen, when not nil, is told of every line as soon as it
// is known (a probe may take a while). Check changes no index that holds documents; it creates
// the state file when there is none.
func Check(ctx context.Context, env Env, configPath string, seen func(CheckLine)) *CheckReport {
	c := &checker{Env: env, cfg: env.Config, seen: seen, rep: &CheckReport{}}
	c.ok("config", configPath)
	c.ok("crawl memory", fmt.Sprintf("up to %s with this configuration; a pod's memory limit needs at least this (docs/deploy.md, Memory)",
		HumanBytes(int64(c.cfg.CrawlMemory()))))
	c.checkMimecast(ctx)
	c.checkElasticsearch(ctx)
	c.checkState()
	c.checkAlerts(ctx)
	return c.rep
}

// checker runs the checks of one Check.
type checker struct {
	Env
	cfg  *config.Config
	seen func(CheckLine)
	rep  *CheckReport
	// mimecastDown is why Mimecast cannot be reached with these credentials, once reported:
	// every later probe would fail for the same reason, so it is skipped and named instead.
	mimecastDown string
	// es is the cluster checkElasticsearch opened, for the later probes; nil when it could
	// not be opened (reported there), so that a silent node is waited for once.
	es *index.Cluster
}

func (c *checker) ok(name, detail string) {
	c.rep.add(CheckLine{Verdict: VerdictOK, Name: name, Detail: detail}, c.seen)
}

func (c *checker) fail(name string, err error, fix string) {
	c.rep.add(CheckLine{Verdict: VerdictFail, Name: name, Detail: fmt.Sprint(err), Fix: fix}, c.seen)
}

// warn is a problem that does not stop a crawl: an optional source that is not permitted.
func (c *checker) warn(name, what, fix string) {
	c.rep.add(CheckLine{Verdict: VerdictWarn, Name: name, Detail: what, Fix: fix}, c.seen)
}

func (c *checker) skip(name, why string) {
	c.rep.add(CheckLine{Verdict: VerdictSkip, Name: name, Detail: why}, c.seen)
}

// errStop ends a listing after its first page: check asks for the smallest answer.
var errStop = errors.New("first page is enough")

// MimecastFix turns a client error into advice a person can act on.
func MimecastFix(err error) string {
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

func (c *checker) checkMimecast(ctx context.Context) {
	client, err := archiveClient(c.cfg, c.Log)
	if err != nil {
		c.fail("mimecast client", err, "correct mimecast.base_url / mimecast.auth_url")
		return
	}
	defer client.Close()
	if err := client.Authenticate(ctx); err != nil {
		c.fail("mimecast token", err, MimecastFix(err))
		c.mimecastDown = "the Mimecast token failed (see above)"
		return
	}
	c.ok("mimecast token", c.cfg.Mimecast.AuthURL)

	domains, err := client.InternalDomains(ctx)
	if err != nil {
		c.fail("mimecast internal domains", err, MimecastFix(err))
		return
	}
	rules := Rules(c.cfg, c.Shard)
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
	users, err := client.InternalUsers(ctx, kept[0], c.cfg.Performance.PageSize)
	if err != nil {
		c.fail("mimecast internal users", err, MimecastFix(err))
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
	for _, view := range c.cfg.Messages.Views {
		f := api.MessageListFilter{View: view, Mailbox: mailbox, Start: api.FormatTime(c.cfg.Messages.StartDate.Time)}
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
		c.fail("mimecast message list", listErr, MimecastFix(listErr))
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
		c.fail("mimecast message detail", err, MimecastFix(err))
	} else {
		c.ok("mimecast message detail", Plural(int64(len(detail.Attachments)), "attachment"))
	}
	rc, err := client.GetFile(ctx, first.ID)
	if err != nil {
		c.fail("mimecast get-file", err, MimecastFix(err))
		return
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil {
		c.fail("mimecast get-file", err, MimecastFix(err))
		return
	}
	c.ok("mimecast get-file", fmt.Sprintf("message body, %d bytes", n))
}

func (c *checker) checkElasticsearch(ctx context.Context) {
	cluster, err := openCluster(ctx, c.cfg, c.Log)
	var te *index.TimeoutError
	switch {
	case errors.As(err, &te):
		c.fail("elasticsearch", err, fmt.Sprintf("the node accepts connections but does not answer within elasticsearch.request_timeout (%s): check its health and load, and the proxy in front of it",
			c.cfg.Elasticsearch.RequestTimeout))
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
	c.es = cluster
	c.ok("elasticsearch", "version "+cluster.Version()+", supported ("+index.SupportedVersions()+")")
	// An installation of an older schema is reported, not migrated: check changes no index
	// that holds documents; the next crawl migrates it.
	plan, err := cluster.Plan(ctx)
	if err != nil {
		fix := "the user needs view_index_metadata and read on " + c.cfg.Elasticsearch.IndexPrefix + "-* (see docs/permissions.md)"
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
		fix := "the user needs manage_index_templates, manage_pipeline and, on " + c.cfg.Elasticsearch.IndexPrefix + "-*, create_index and manage (see docs/permissions.md)"
		if index.IsForeign(err) {
			fix = "" // the error says what to do
		}
		c.fail("elasticsearch templates", err, fix)
		return
	}
	c.ok("elasticsearch templates", before.describe()+" (templates are brought up to date)")
	if err := cluster.CheckWrite(ctx); err != nil {
		c.fail("elasticsearch write", err, "the user needs index and delete privileges on "+c.cfg.Elasticsearch.IndexPrefix+"-*")
		return
	}
	c.ok("elasticsearch write", "probe document written and deleted")
	switch {
	case !c.cfg.Attachments.Extract:
		c.skip("elasticsearch attachment text", "attachments.extract is false")
	case c.cfg.Attachments.Text == config.TextNone:
		c.skip("elasticsearch attachment text", "attachments.text is none: attachments are indexed with metadata only")
	case c.cfg.Attachments.Text == config.TextByCrawler:
		c.ok("elasticsearch attachment text", "attachments.text is crawler: mimecrawl extracts the text itself; no ingest processor needed")
	case cluster.AttachmentProcessor():
		c.ok("elasticsearch attachment text", "ingest attachment processor present: Elasticsearch extracts the text of attachments")
	default:
		c.ok("elasticsearch attachment text", "attachments.text is elasticsearch but the cluster has no ingest attachment processor: mimecrawl extracts the text itself")
	}
}

func (c *checker) checkState() {
	_, statErr := os.Stat(c.cfg.State.Path)
	created := errors.Is(statErr, os.ErrNotExist)
	st, err := state.Open(c.cfg.State.Path, StoreOptions(c.cfg, false))
	if err != nil {
		fix := "check state.path is writable"
		switch {
		case os.IsPermission(errors.Unwrap(err)):
			fix = "give the user running mimecrawl write access to " + c.cfg.State.Path
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
		c.ok("state file", c.cfg.State.Path+" created (it did not exist), locked and checked")
		return
	}
	c.ok("state file", c.cfg.State.Path+" found, opened, locked and checked")
}

// checkAlerts probes every configured alert source with its smallest request; a source the
// application may not read is named with the permission it needs. Problems are warnings, not
// failures: alerts.sources has defaults, and an installation that only crawls the archive
// must still pass check (the alerts command reports a 403 source the same way and carries on).
func (c *checker) checkAlerts(ctx context.Context) {
	if len(c.cfg.Alerts.Sources) == 0 {
		c.skip("alerts", "no alerts.sources configured")
		return
	}
	client, err := archiveClient(c.cfg, c.Log)
	if err != nil {
		c.fail("alerts", err, "")
		return
	}
	defer client.Close()
	c.checkAlertsStream(ctx)
	d := alerts.Deps{Logs: client, Threats: client, SIEM: client, API: client}
	for _, s := range c.cfg.Alerts.Sources {
		if c.mimecastDown != "" {
			// One line per root cause: each probe would repeat the token's failure.
			c.skip("alerts source "+s, "not probed: "+c.mimecastDown)
			continue
		}
		name := "alerts source " + s
		err := alerts.Probe(ctx, d, alerts.Source(s), time.Now().UTC())
		switch {
		case err == nil:
			c.ok(name, "answers")
		case mimecast.IsForbidden(err):
			c.warn(name, "not permitted for this API application", MimecastFix(withPermission(err, alerts.Source(s)))+", or remove it from alerts.sources")
		default:
			c.warn(name, err.Error(), MimecastFix(err))
		}
	}
	if _, err := os.Stat(c.cfg.AlertsStatePath()); err == nil {
		st, err := state.Open(c.cfg.AlertsStatePath(), StoreOptions(c.cfg, true))
		if errors.Is(err, state.ErrEmpty) {
			c.ok("alerts state", c.cfg.AlertsStatePath()+" is empty: no pass has committed anything yet")
			return
		}
		if err != nil {
			c.fail("alerts state", err, "")
			return
		}
		defer st.Close()
		cs, err := alerts.Statuses(st)
		if err != nil {
			c.fail("alerts state", err, "")
			return
		}
		c.ok("alerts state", fmt.Sprintf("%s, %d cursors", c.cfg.AlertsStatePath(), len(cs)))
	}
}

// withPermission names, in a 403 that does not, the permission the source's spec says its
// endpoint needs, so that check always tells which permission to grant.
func withPermission(err error, src alerts.Source) error {
	var me *mimecast.Error
	if sp, ok := alerts.Spec(src); ok && errors.As(err, &me) && me.Permission == "" {
		c := *me
		c.Permission = sp.Permission
		return &c
	}
	return err
}

// checkAlertsStream names where the alerts go and, on an installation upgraded from a
// release that wrote {prefix}-alerts, that index, which stays readable and is no longer
// written (docs/alerts.md, "Where the alerts go").
func (c *checker) checkAlertsStream(ctx context.Context) {
	cluster := c.es
	if cluster == nil {
		c.skip("alerts data stream", "elasticsearch does not answer")
		return
	}
	stream := cluster.IndexName(alerts.AlertsKind)
	n, found, err := cluster.LegacyCount(ctx, alerts.AlertsKind)
	switch {
	case err != nil:
		c.warn("alerts data stream", err.Error(), "the user needs read on "+cluster.LegacyName(alerts.AlertsKind))
	case found:
		c.ok("alerts data stream", fmt.Sprintf("%s, where Elastic Security looks; %s, written by an earlier release, keeps its %s readable and is not written any more",
			stream, cluster.LegacyName(alerts.AlertsKind), Plural(n, "alert")))
	default:
		c.ok("alerts data stream", stream+", where Elastic Security looks")
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

// HumanBytes writes n in binary units: "512 B", "1.5 KiB", "114.3 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Plural writes n and noun, with an s unless n is one: "1 attachment", "2 attachments".
func Plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
