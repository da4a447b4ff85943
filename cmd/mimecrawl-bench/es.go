package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// esAdmin is the little of Elasticsearch's REST API the benchmark needs around the runs:
// counting what a run wrote, the node's CPU time, and removing a run's indices afterwards.
type esAdmin struct {
	url  string
	http *http.Client
	pid  int // the node's process id when it runs on this machine; 0 otherwise
}

func newESAdmin(url string) *esAdmin {
	return &esAdmin{url: url, http: &http.Client{Timeout: 5 * time.Minute}}
}

func (e *esAdmin) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 && !(method == http.MethodDelete && resp.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%s %s: status %d: %.300s", method, path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// count refreshes the indices of prefix and returns how many documents they hold.
func (e *esAdmin) count(ctx context.Context, prefix string) (int64, error) {
	if err := e.do(ctx, http.MethodPost, "/"+prefix+"-*/_refresh", nil); err != nil {
		return 0, err
	}
	var c struct {
		Count int64 `json:"count"`
	}
	err := e.do(ctx, http.MethodGet, "/"+prefix+"-*/_count", &c)
	return c.Count, err
}

// remove deletes the indices, templates and pipeline of prefix.
func (e *esAdmin) remove(ctx context.Context, prefix string) error {
	var errs []string
	// The versioned indices behind the aliases (an alias cannot be deleted as an index), then
	// the index templates before the component templates they use.
	for _, p := range []string{"/" + prefix + "-messages-000001," + prefix + "-attachments-000001",
		"/_index_template/" + prefix + "-messages", "/_index_template/" + prefix + "-attachments",
		"/_component_template/" + prefix + "-messages@mimecrawl", "/_component_template/" + prefix + "-attachments@mimecrawl",
		"/_ingest/pipeline/" + prefix + "-attachments"} {
		if err := e.do(ctx, http.MethodDelete, p, nil); err != nil && !strings.Contains(err.Error(), "status 400") {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove benchmark indices %s-*: %s", prefix, strings.Join(errs, "; "))
	}
	return nil
}

// nodeInfo is the version and hardware of the (first) node, for the results' context.
type nodeInfo struct {
	Version string `json:"version"`
	Heap    int64  `json:"heap_max_bytes"`
}

func (e *esAdmin) node(ctx context.Context) (nodeInfo, error) {
	var r struct {
		Nodes map[string]struct {
			Version string `json:"version"`
			JVM     struct {
				Mem struct {
					HeapMax int64 `json:"heap_max_in_bytes"`
				} `json:"mem"`
			} `json:"jvm"`
		} `json:"nodes"`
	}
	if err := e.do(ctx, http.MethodGet, "/_nodes/_local/jvm", &r); err != nil {
		return nodeInfo{}, err
	}
	for _, n := range r.Nodes {
		return nodeInfo{Version: n.Version, Heap: n.JVM.Mem.HeapMax}, nil
	}
	return nodeInfo{}, fmt.Errorf("GET /_nodes/_local/jvm: no node in the answer")
}

// findLocalProcess remembers the node's process id when the node runs on this machine, so
// that its CPU time can be read from /proc: the node's own statistic is refreshed only once a
// second, too coarse for runs of a few seconds.
func (e *esAdmin) findLocalProcess(ctx context.Context) {
	u, err := url.Parse(e.url)
	if err != nil || !(u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost" || u.Hostname() == "::1") {
		return
	}
	var r struct {
		Nodes map[string]struct {
			Process struct {
				ID int `json:"id"`
			} `json:"process"`
		} `json:"nodes"`
	}
	if e.do(ctx, http.MethodGet, "/_nodes/_local/process", &r) != nil {
		return
	}
	for _, n := range r.Nodes {
		if n.Process.ID > 0 && procCPU(n.Process.ID) > 0 {
			e.pid = n.Process.ID
		}
	}
}

// cpu returns the CPU seconds the local node's process has used so far (0 if unknown).
func (e *esAdmin) cpu(ctx context.Context) float64 {
	if e.pid > 0 {
		return procCPU(e.pid)
	}
	var r struct {
		Nodes map[string]struct {
			Process struct {
				CPU struct {
					Millis int64 `json:"total_in_millis"`
				} `json:"cpu"`
			} `json:"process"`
		} `json:"nodes"`
	}
	if err := e.do(ctx, http.MethodGet, "/_nodes/_local/stats/process", &r); err != nil {
		return 0
	}
	for _, n := range r.Nodes {
		return float64(n.Process.CPU.Millis) / 1000
	}
	return 0
}
