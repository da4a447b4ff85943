package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// strictJSON parses one JSON value token by token and fails on a key repeated within one
// object (Elasticsearch refuses such a document: "Duplicate field"), on trailing data, and
// on anything encoding/json would refuse.
func strictJSON(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := strictValue(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

func strictValue(dec *json.Decoder, path string) error {
	t, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	d, ok := t.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			key := kt.(string)
			if seen[key] {
				return fmt.Errorf("duplicate key %q in %s", key, orRoot(path))
			}
			seen[key] = true
			if err := strictValue(dec, path+"."+key); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			if err := strictValue(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

func orRoot(path string) string {
	if path == "" {
		return "the top-level object"
	}
	return path
}

// checkLogLines fails t for every line of logs that is not a JSON object without duplicate
// keys, and returns the decoded lines.
func checkLogLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		if line == "" {
			continue
		}
		if err := strictJSON([]byte(line)); err != nil {
			t.Errorf("log line %d: %v:\n%s", i+1, err, line)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line %d is not a JSON object: %v:\n%s", i+1, err, line)
			continue
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		t.Errorf("no log lines")
	}
	return out
}

func TestStrictJSON(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, true},
		{`{"component":"mimecast","component":"mimecast"}`, false},
		{`{"a":{"b":1,"b":2}}`, false},
		{`{"a":[{"b":1,"b":2}]}`, false},
		{`{"a":1} {"b":2}`, false},
		{`{"a":1`, false},
	}
	for _, tc := range cases {
		if err := strictJSON([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("strictJSON(%s) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}
