package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/rs/zerolog"
)

// Cluster is the administrative side of one Elasticsearch cluster: connection, version,
// templates, existence checks and deletions. It is safe for concurrent use.
type Cluster struct {
	cfg Config
	es  *elasticsearch.Client
	// tr is es with bulk requests split when they are too large (split.go); every request
	// goes through it.
	tr      esapi.Transport
	splits  splitCounts
	log     zerolog.Logger
	where   string // the addresses, without user information, for messages
	secrets redactor
	version string
	// processors holds the ingest processors that every ingest node has.
	processors map[string]bool
	// owned holds the indices found to be mimecrawl's, per kind (own.go).
	owned owned
	// kinds are the kinds this cluster manages: the archive's and those given to Ensure
	// (spec.go).
	kinds kindSet
}

// Open connects to the cluster and checks that it answers and runs a supported version of
// Elasticsearch (SupportedVersions; a *VersionError otherwise). The error names the addresses
// (without credentials) when the cluster cannot be reached.
func Open(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch config: %w", err)
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger, where: redactAddresses(cfg.Addresses),
		secrets: newRedactor(cfg.Username, cfg.Password, cfg.APIKey)}
	// The archive's kinds are this package's own, managed by every cluster (Setup, Plan), so no
	// other kind may take their names.
	if err := c.kinds.add(Messages, Attachments); err != nil {
		return nil, err
	}
	base, err := tlsTransport(cfg.Transport, cfg.CACert, cfg.CAFingerprint)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client for %s: %w", c.where, err)
	}
	c.es, err = elasticsearch.NewClient(elasticsearch.Config{
		Addresses: cfg.Addresses,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		// Without RetryBackoff the client retries at once, which only adds load to a cluster
		// that is already refusing work.
		RetryOnStatus: []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout},
		RetryOnError:  retryOnError,
		MaxRetries:    cfg.MaxRetries,
		RetryBackoff:  cfg.RetryBackoff,
		Transport:     &deadlineTransport{next: base, request: cfg.RequestTimeout, bulk: cfg.BulkTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client for %s: %s", c.where, c.redact(err.Error()))
	}

	c.tr = &bulkSplitter{next: c.es, log: c.log, counts: &c.splits}

	// GET / is not allowed on every cluster (a proxy or a restricted role may refuse it), so the
	// version comes from the nodes API.
	var nodes struct {
		Nodes map[string]struct {
			Version string `json:"version"`
		} `json:"nodes"`
	}
	if err := c.do(ctx, http.MethodGet, "/_nodes/_local", url.Values{"filter_path": {"nodes.*.version"}}, nil, &nodes); err != nil {
		var se *StatusError
		switch {
		case IsAuthentication(err):
			return nil, fmt.Errorf("elasticsearch at %s: authentication failed, the credentials were refused: %w", c.where, err)
		case IsUntrustedCertificate(err):
			return nil, fmt.Errorf("elasticsearch at %s: its TLS certificate is not trusted: %w", c.where, err)
		case errors.As(err, &se):
			return nil, fmt.Errorf("elasticsearch at %s: read version: %w", c.where, err)
		}
		return nil, fmt.Errorf("elasticsearch at %s is unreachable: %w", c.where, err)
	}
	for _, n := range nodes.Nodes {
		c.version = n.Version
	}
	if err := checkVersion(c.where, c.version); err != nil {
		return nil, err
	}

	c.processors, err = c.ingestProcessors(ctx)
	if err != nil {
		// Knowing the processors only decides whether attachments get text; a role without the
		// monitor privilege should not stop the crawl.
		c.log.Warn().Err(err).Msg("cannot list ingest processors; attachments will be indexed without extracted text")
		c.processors = map[string]bool{}
	}
	c.log.Info().Str("version", c.version).Bool("attachment_processor", c.AttachmentProcessor()).Msg("connected to elasticsearch")
	return c, nil
}

// ingestProcessors returns the processor types that every ingest node offers.
func (c *Cluster) ingestProcessors(ctx context.Context) (map[string]bool, error) {
	var nodes struct {
		Nodes map[string]struct {
			Ingest struct {
				Processors []struct {
					Type string `json:"type"`
				} `json:"processors"`
			} `json:"ingest"`
		} `json:"nodes"`
	}
	if err := c.do(ctx, http.MethodGet, "/_nodes/ingest", url.Values{"filter_path": {"nodes.*.ingest.processors.type"}}, nil, &nodes); err != nil {
		return nil, fmt.Errorf("list ingest processors: %w", err)
	}
	var common map[string]bool
	for _, n := range nodes.Nodes {
		have := map[string]bool{}
		for _, p := range n.Ingest.Processors {
			have[p.Type] = true
		}
		if common == nil {
			common = have
			continue
		}
		for t := range common {
			if !have[t] {
				delete(common, t)
			}
		}
	}
	if common == nil {
		common = map[string]bool{}
	}
	return common, nil
}

// Version returns the version of the node Open talked to, e.g. "8.19.21".
func (c *Cluster) Version() string { return c.version }

// IndexName returns the name of the index that holds documents of kind k.
// For a data stream kind it is the data stream, logs-{dataset}-{namespace}.
func (c *Cluster) IndexName(k Kind) string {
	if ds := k.spec.DataStream; ds != "" {
		return "logs-" + ds + "-" + c.cfg.Namespace
	}
	return c.cfg.IndexPrefix + "-" + k.String()
}

// Namespace returns the namespace of the data streams mimecrawl writes.
func (c *Cluster) Namespace() string { return c.cfg.Namespace }

// PipelineName returns the name of the attachment ingest pipeline.
func (c *Cluster) PipelineName() string { return c.cfg.IndexPrefix + "-attachments" }

// AttachmentProcessor reports whether every ingest node has the attachment processor, so that
// Setup installs the pipeline and attachments can be sent through it.
func (c *Cluster) AttachmentProcessor() bool { return c.processors["attachment"] }

// Client returns the underlying client, for tests and tools.
func (c *Cluster) Client() *elasticsearch.Client { return c.es }

// Refresh makes every acknowledged write to both indices visible to searches.
func (c *Cluster) Refresh(ctx context.Context) error {
	names := c.IndexName(Messages) + "," + c.IndexName(Attachments)
	if err := c.do(ctx, http.MethodPost, "/"+names+"/_refresh", nil, nil, nil); err != nil {
		return fmt.Errorf("refresh %s: %w", names, err)
	}
	return nil
}

// probeID is the id of the document CheckWrite writes and deletes again; no real document id
// can take this shape.
const probeID = "mimecrawl-write-check"

// CheckWrite writes a probe document to the messages index and deletes it again, proving that
// the credentials may write there. The index must exist (run Setup first): writing into a missing
// index would create it with a guessed mapping that Setup could no longer fix.
func (c *Cluster) CheckWrite(ctx context.Context) error {
	name := c.IndexName(Messages)
	if err := c.do(ctx, http.MethodHead, "/"+name, nil, nil, nil); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			return fmt.Errorf("index %s does not exist; it is created by the index setup", name)
		}
		return fmt.Errorf("check that index %s exists: %w", name, err)
	}
	path := "/" + name + "/_doc/" + probeID
	body := map[string]any{"mimecast": map[string]any{"id": probeID, "mailbox": probeID}}
	if err := c.do(ctx, http.MethodPut, path, nil, body, nil); err != nil {
		return fmt.Errorf("write a probe document to %s: %w", name, err)
	}
	if err := c.do(ctx, http.MethodDelete, path, nil, nil, nil); err != nil {
		return fmt.Errorf("delete the probe document from %s: %w", name, err)
	}
	return nil
}

// StatusError is an answer from Elasticsearch other than 2xx.
type StatusError struct {
	Op     string // method and path, e.g. "PUT /_index_template/mimecast-messages"
	Status int
	Type   string // Elasticsearch's error type, e.g. "illegal_argument_exception"
	Reason string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: status %d", e.Op, e.Status)
	if e.Type != "" {
		b.WriteString(": " + e.Type)
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	return b.String()
}

// do sends one request through the client (and so through its retries) and decodes a 2xx
// answer into out when out is not nil. body is nil or a value to encode as JSON; bulk
// requests go through bulk (bulk.go) instead.
func (c *Cluster) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
	}
	u := &url.URL{Path: path}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	var rd io.Reader
	if payload != nil {
		// A bytes.Reader lets the client replay the body when it retries.
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")

	res, err := c.perform(c.tr, req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// perform sends req through tr (c.tr, or a writer's own splitter: the client's retries and the
// splitting of bulk requests too large) and returns a 2xx answer. Every request of the package
// goes through here, bulk requests included (bulk.go), so that failures read the same
// everywhere: a transport error is redacted (a *TimeoutError passes as it is: it names the
// request and holds nothing secret), and an answer other than 2xx is a redacted *StatusError,
// its body closed.
func (c *Cluster) perform(tr esapi.Transport, req *http.Request) (*http.Response, error) {
	op := req.Method + " " + req.URL.EscapedPath() // before the client adds the node's address
	res, err := tr.Perform(req)
	if err != nil {
		var te *TimeoutError
		if errors.As(err, &te) {
			return nil, te
		}
		return nil, fmt.Errorf("%s: %w", op, &outsideError{msg: c.redact(err.Error()), err: err})
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		defer res.Body.Close()
		se := decodeError(op, res)
		// An error answer may echo the request, Authorization header included.
		se.Type, se.Reason = c.redact(se.Type), c.redact(se.Reason)
		return nil, se
	}
	return res, nil
}

// decodeError reads Elasticsearch's error answer, which is either {"error": {"type", "reason"}}
// or, for unknown routes, {"error": "text"}.
func decodeError(op string, res *http.Response) *StatusError {
	se := &StatusError{Op: op, Status: res.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && len(body.Error) > 0 {
		var obj struct {
			Type     string `json:"type"`
			Reason   string `json:"reason"`
			CausedBy *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"caused_by"`
		}
		var text string
		switch {
		case json.Unmarshal(body.Error, &obj) == nil:
			se.Type, se.Reason = obj.Type, obj.Reason
			if obj.CausedBy != nil && obj.CausedBy.Reason != "" {
				se.Reason += " (caused by " + obj.CausedBy.Type + ": " + obj.CausedBy.Reason + ")"
			}
		case json.Unmarshal(body.Error, &text) == nil:
			se.Reason = text
		}
	} else if m := htmlTitle.FindSubmatch(raw); m != nil {
		// A proxy in front of the cluster (nginx refusing the credentials, say) answers with
		// an HTML page whose title says it all.
		se.Reason = strings.TrimSpace(string(m[1]))
	} else if len(raw) > 0 {
		se.Reason = strings.TrimSpace(string(raw[:min(len(raw), 512)]))
	}
	return se
}

var htmlTitle = regexp.MustCompile(`(?is)<title>([^<]{1,200})</title>`)

// redact removes every form of the configured credentials, and any echoed Authorization
// header, from a message that came from outside this package.
func (c *Cluster) redact(s string) string { return c.secrets.redact(s) }

// redactAddresses lists the addresses without any user information they carry.
func redactAddresses(addrs []string) string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		u, err := url.Parse(a)
		if err != nil {
			out = append(out, "<unparsable address>")
			continue
		}
		u.User = nil
		out = append(out, u.String())
	}
	return strings.Join(slices.Compact(out), ", ")
}
