package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Environment variables read by Load and Parse. Each overrides the matching key of the
// file; see docs/configuration.md for the precedence rules.
const (
	EnvMimecastBaseURL          = "MIMECRAWL_MIMECAST_BASE_URL"
	EnvMimecastClientID         = "MIMECRAWL_MIMECAST_CLIENT_ID"
	EnvMimecastClientSecret     = "MIMECRAWL_MIMECAST_CLIENT_SECRET"
	EnvMimecastClientSecretFile = "MIMECRAWL_MIMECAST_CLIENT_SECRET_FILE"
	EnvElasticsearchAddresses   = "MIMECRAWL_ELASTICSEARCH_ADDRESSES"
	EnvElasticsearchPassword    = "MIMECRAWL_ELASTICSEARCH_PASSWORD"
	EnvElasticsearchPassFile    = "MIMECRAWL_ELASTICSEARCH_PASSWORD_FILE"
	EnvElasticsearchAPIKey      = "MIMECRAWL_ELASTICSEARCH_API_KEY"
	EnvElasticsearchAPIKeyFile  = "MIMECRAWL_ELASTICSEARCH_API_KEY_FILE"
)

// Load reads the configuration file at path and returns the effective configuration:
// defaults, then the file decoded strictly, then environment overrides read through
// getenv (pass os.Getenv; nil means no environment), then secrets read from their files,
// then Validate. The error, if any, lists every problem found, each starting with
// "path:line:" where the file is to blame.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parse(data, getenv, path, time.Now(), false)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration file: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit, so that a larger file is refused without reading it
	// whole (it may be endless, such as a device).
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read configuration file: %w", err)
	}
	return data, nil
}

// LoadLocal is Load for commands that read only local files (status): the credentials of
// Mimecast and Elasticsearch are neither required nor read from their files, so that a person
// can look at the state without holding the secrets. Every other setting is checked as by Load.
// The result must not be used to call Mimecast or Elasticsearch.
func LoadLocal(path string, getenv func(string) string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parse(data, getenv, path, time.Now(), true)
}

// credentialKeys are the settings LoadLocal does not require.
var credentialKeys = map[string]bool{
	"mimecast.client_id": true, "mimecast.client_secret": true, "mimecast.client_secret_file": true,
	"elasticsearch.password": true, "elasticsearch.password_file": true,
	"elasticsearch.api_key": true, "elasticsearch.api_key_file": true, "elasticsearch.username": true,
}

// Parse is Load for a configuration already in memory; problems name "line N".
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	return parse(data, getenv, "", time.Now(), false)
}

func parse(data []byte, getenv func(string) string, file string, now time.Time, local bool) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if len(data) > MaxFileBytes {
		where := "the configuration"
		if file != "" {
			where = file
		}
		return nil, fmt.Errorf("%s: more than %d bytes; the limit is %d bytes (%s): a configuration this large is a mistake",
			where, MaxFileBytes, MaxFileBytes, ByteSize(MaxFileBytes))
	}
	cfg := Default()
	d := &decoder{origins: map[string]origin{}, given: map[string]bool{}}
	d.decodeDocument(data, cfg)
	decodeProblems := d.problems
	for _, p := range decodeProblems {
		if p.path == "" {
			// The document could not be read at all; checking the defaults it left
			// behind would only add noise.
			return nil, formatProblems(decodeProblems, d.origins, file)
		}
	}

	d.problems = nil
	cfg.applyEnv(getenv, d)
	cfg.Logging.levelSet = d.given["logging.level"]
	if !d.given["parallelism.domains"] {
		cfg.Parallelism.Domains = cfg.Parallelism.Mailboxes
	}
	cfg.Mimecast.BaseURL = strings.TrimRight(cfg.Mimecast.BaseURL, "/")
	// Derive the token endpoint only from a usable base URL: a bad base URL is reported
	// once, not again through the auth URL made from it.
	if cfg.Mimecast.AuthURL == "" && httpURLProblem(cfg.Mimecast.BaseURL) == "" {
		cfg.Mimecast.AuthURL = cfg.Mimecast.TokenURL()
	}
	cfg.resolveCloudID(d)
	if !local {
		cfg.readSecretFiles(d)
	}
	early := d.problems

	// Validation sees values that failed to decode as defaults or zero values; drop what
	// it says about them so each mistake is reported once.
	var problems []problem
	problems = append(problems, decodeProblems...)
	problems = append(problems, early...)
	reported := make(map[string]bool, len(problems))
	for _, p := range problems {
		reported[p.path] = true
	}
	if !d.given["parallelism.domains"] {
		// Taken from parallelism.mailboxes, whose own problem is the one to report.
		reported["parallelism.domains"] = true
	}
	for _, p := range cfg.check(now) {
		if local && credentialKeys[p.path] {
			continue
		}
		if !coveredBy(p.path, reported) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, formatProblems(problems, d.origins, file)
	}
	return cfg, nil
}

// coveredBy reports whether a problem at path, or at a key above it, is already reported.
// It looks up path and each key above it ("a.b[2].c", "a.b[2]", "a.b", "a"), so that the cost
// is the depth of the path, not the number of problems: a file with tens of thousands of
// mistakes is still checked in linear time.
func coveredBy(path string, reported map[string]bool) bool {
	for {
		if reported[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return false
		}
		path = path[:i]
	}
}

// secretSetting ties a secret to its file setting and environment variables.
type secretSetting struct {
	path, filePath    string // key paths
	valueEnv, envFile string
	value             *Secret
	file              *string
	read              *bool // set when value was read from file
}

func (c *Config) secretSettings() []secretSetting {
	return []secretSetting{
		{
			path: "mimecast.client_secret", filePath: "mimecast.client_secret_file",
			valueEnv: EnvMimecastClientSecret, envFile: EnvMimecastClientSecretFile,
			value: &c.Mimecast.ClientSecret, file: &c.Mimecast.ClientSecretFile, read: &c.Mimecast.clientSecretRead,
		},
		{
			path: "elasticsearch.password", filePath: "elasticsearch.password_file",
			valueEnv: EnvElasticsearchPassword, envFile: EnvElasticsearchPassFile,
			value: &c.Elasticsearch.Password, file: &c.Elasticsearch.PasswordFile, read: &c.Elasticsearch.passwordRead,
		},
		{
			path: "elasticsearch.api_key", filePath: "elasticsearch.api_key_file",
			valueEnv: EnvElasticsearchAPIKey, envFile: EnvElasticsearchAPIKeyFile,
			value: &c.Elasticsearch.APIKey, file: &c.Elasticsearch.APIKeyFile, read: &c.Elasticsearch.apiKeyRead,
		},
	}
}

// applyEnv overrides file values with environment variables. A secret and its file are
// one setting: the variable for either replaces whatever the file said about both.
func (c *Config) applyEnv(getenv func(string) string, d *decoder) {
	set := func(path, env string) {
		for p := range d.origins {
			if p == path || strings.HasPrefix(p, path+"[") {
				delete(d.origins, p)
			}
		}
		d.origins[path] = origin{env: env}
	}
	if v := getenv(EnvMimecastBaseURL); v != "" {
		c.Mimecast.BaseURL = v
		set("mimecast.base_url", EnvMimecastBaseURL)
	}
	if v := getenv(EnvMimecastClientID); v != "" {
		c.Mimecast.ClientID = v
		set("mimecast.client_id", EnvMimecastClientID)
	}
	if v := getenv(EnvElasticsearchAddresses); v != "" {
		var addrs []string
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		c.Elasticsearch.Addresses = addrs
		set("elasticsearch.addresses", EnvElasticsearchAddresses)
		for i := range addrs {
			d.origins["elasticsearch.addresses["+strconv.Itoa(i)+"]"] = origin{env: EnvElasticsearchAddresses}
		}
	}
	for _, s := range c.secretSettings() {
		value, file := getenv(s.valueEnv), getenv(s.envFile)
		switch {
		case value != "" && file != "":
			d.add(s.path, noLine, "both %s and %s are set; set only one", s.valueEnv, s.envFile)
		case value != "":
			*s.value, *s.file = Secret(value), ""
			delete(d.origins, s.filePath)
			set(s.path, s.valueEnv)
		case file != "":
			*s.value, *s.file = "", file
			delete(d.origins, s.path)
			set(s.filePath, s.envFile)
		}
	}
}

// readSecretFiles reads each secret whose file is set and whose value is not (both set
// is a conflict that check reports). Errors name the file, never its contents.
func (c *Config) readSecretFiles(d *decoder) {
	for _, s := range c.secretSettings() {
		if *s.file == "" || *s.value != "" {
			continue
		}
		b, err := os.ReadFile(*s.file)
		if err != nil {
			d.add(s.filePath, 0, "cannot read the secret file: %v", err)
			continue
		}
		// Mounted secrets and `echo secret > file` end with a newline that is not part
		// of the secret.
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			d.add(s.filePath, 0, "the secret file %s is empty", quote(*s.file))
			continue
		}
		*s.value, *s.read = Secret(v), true
	}
}

// noLine marks a problem that no line of the file is to blame for.
const noLine = -1

// formatProblems renders every problem on its own line, prefixed by where it comes
// from, in the order of the file; problems no line is to blame for come last.
func formatProblems(ps []problem, origins map[string]origin, file string) error {
	type located struct {
		problem
		env string
	}
	ls := make([]located, 0, len(ps))
	for _, p := range ps {
		l := located{problem: p}
		if o, ok := origins[p.path]; ok && l.line == 0 {
			l.line, l.env = o.line, o.env
		}
		ls = append(ls, l)
	}
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := ls[i].line, ls[j].line
		return a > 0 && (b <= 0 || a < b)
	})
	errs := make([]error, 0, len(ls))
	for _, p := range ls {
		var b strings.Builder
		switch {
		case p.line > 0 && file != "":
			fmt.Fprintf(&b, "%s:%d: ", file, p.line)
		case p.line > 0:
			fmt.Fprintf(&b, "line %d: ", p.line)
		case file != "":
			fmt.Fprintf(&b, "%s: ", file)
		}
		if p.path != "" {
			b.WriteString(p.path)
			if p.env != "" {
				fmt.Fprintf(&b, " (from %s)", p.env)
			}
			b.WriteString(": ")
		}
		b.WriteString(p.msg)
		errs = append(errs, errors.New(b.String()))
	}
	return errors.Join(errs...)
}

// Redacted returns the effective configuration as YAML with every secret shown as
// <secret>, for `mimecrawl check` and debug logs. A secret read from a file is shown by
// its file only.
func (c *Config) Redacted() string {
	cp := *c
	for _, s := range cp.secretSettings() {
		if *s.read {
			*s.value = ""
		}
	}
	out, err := yaml.Marshal(&cp)
	if err != nil {
		// Not reachable with the types of Config; say so rather than print half of it.
		return "# the configuration cannot be shown: " + err.Error() + "\n"
	}
	return string(out)
}
