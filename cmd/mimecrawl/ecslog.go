package main

import (
	"bytes"
	"encoding/json"
	"io"
	"time"
)

// ecsVersion is the version of the Elastic Common Schema the ecs log format follows.
const ecsVersion = "8.11.0"

// ecsWriter turns zerolog's JSON lines into ECS logging lines: @timestamp (UTC, millisecond
// precision), log.level, message, ecs.version, service.name, log.logger (the component),
// error.message, and every other field under "mimecrawl". It rewrites keys at the writer
// rather than through zerolog's field-name settings, which are package variables shared by
// every logger in the process.
//
// The timestamp is taken when the line is written, a few microseconds after the event: zerolog
// formats its own timestamp with a package-wide format, so the logger is built without one.
// A line that is not a JSON object is passed on unchanged rather than lost.
type ecsWriter struct {
	w   io.Writer
	now func() time.Time
}

func newECSWriter(w io.Writer, now func() time.Time) *ecsWriter { return &ecsWriter{w: w, now: now} }

// renamed maps zerolog's keys to their ECS fields.
var ecsRenamed = map[string]string{
	"level":     "log.level",
	"message":   "message",
	"error":     "error.message",
	"component": "log.logger",
}

func (e *ecsWriter) Write(p []byte) (int, error) {
	out, ok := e.rewrite(p)
	if !ok {
		out = p
	}
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

type ecsField struct {
	key string
	val json.RawMessage
}

func (e *ecsWriter) rewrite(p []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(p))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	known := map[string]json.RawMessage{}
	var rest []ecsField
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := t.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, false
		}
		if name, ok := ecsRenamed[key]; ok {
			if _, dup := known[name]; !dup {
				known[name] = val
				continue
			}
		}
		rest = append(rest, ecsField{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	var b bytes.Buffer
	b.Grow(len(p) + 128)
	ts, _ := json.Marshal(e.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteString(`{"@timestamp":`)
	b.Write(ts)
	for _, name := range []string{"log.level", "message"} {
		if v, ok := known[name]; ok {
			writeField(&b, name, v)
		}
	}
	writeField(&b, "ecs.version", json.RawMessage(`"`+ecsVersion+`"`))
	writeField(&b, "service.name", json.RawMessage(`"mimecrawl"`))
	for _, name := range []string{"log.logger", "error.message"} {
		if v, ok := known[name]; ok {
			writeField(&b, name, v)
		}
	}
	if len(rest) > 0 {
		b.WriteString(`,"mimecrawl":{`)
		for i, f := range rest {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(f.key)
			b.Write(k)
			b.WriteByte(':')
			b.Write(f.val)
		}
		b.WriteByte('}')
	}
	b.WriteString("}\n")
	return b.Bytes(), true
}

func writeField(b *bytes.Buffer, name string, v json.RawMessage) {
	b.WriteByte(',')
	k, _ := json.Marshal(name)
	b.Write(k)
	b.WriteByte(':')
	b.Write(v)
}
