package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

var ecsTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// checkECSLine checks one ECS log line field by field and returns it decoded.
func checkECSLine(t *testing.T, line string) map[string]any {
	t.Helper()
	if err := strictJSON([]byte(line)); err != nil {
		t.Errorf("ECS line: %v:\n%s", err, line)
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Errorf("ECS line is not an object: %v:\n%s", err, line)
		return nil
	}
	if ts, _ := m["@timestamp"].(string); !ecsTimestamp.MatchString(ts) {
		t.Errorf("@timestamp %q: want UTC with milliseconds:\n%s", m["@timestamp"], line)
	}
	switch m["log.level"] {
	case "trace", "debug", "info", "warn", "error", "fatal", "panic":
	default:
		t.Errorf("log.level %v:\n%s", m["log.level"], line)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("no message:\n%s", line)
	}
	if m["ecs.version"] != ecsVersion {
		t.Errorf("ecs.version %v, want %s:\n%s", m["ecs.version"], ecsVersion, line)
	}
	if m["service.name"] != "mimecrawl" {
		t.Errorf("service.name %v, want mimecrawl:\n%s", m["service.name"], line)
	}
	for k, v := range m {
		switch k {
		case "@timestamp", "log.level", "message", "ecs.version", "service.name":
		case "log.logger", "error.message":
			if _, ok := v.(string); !ok {
				t.Errorf("%s is %T, want a string:\n%s", k, v, line)
			}
		case "mimecrawl":
			if _, ok := v.(map[string]any); !ok {
				t.Errorf("mimecrawl is %T, want an object:\n%s", v, line)
			}
		default:
			t.Errorf("top-level key %q is not an ECS field we write:\n%s", k, line)
		}
	}
	return m
}

func TestECSWriter(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 11, 29, 10, 11, 12, 345678901, time.FixedZone("CET", 3600))
	log := zerolog.New(newECSWriter(&buf, func() time.Time { return at })).Level(zerolog.InfoLevel)
	child := log.With().Str("component", "crawler").Logger()
	child.Error().Err(errors.New("boom")).Str("mailbox", "a@example.com").
		RawJSON("summary", []byte(`{"level":"x"}`)).Msg("view failed")
	log.Info().Msg("run start")
	log.Debug().Msg("not written")

	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	first := checkECSLine(t, lines[0])
	want := map[string]any{
		"@timestamp": "2026-11-29T09:11:12.345Z", "log.level": "error", "message": "view failed",
		"log.logger": "crawler", "error.message": "boom",
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %v, want %v", k, first[k], v)
		}
	}
	mc, _ := first["mimecrawl"].(map[string]any)
	if mc["mailbox"] != "a@example.com" || mc["summary"].(map[string]any)["level"] != "x" {
		t.Errorf("other fields not kept under mimecrawl: %v", mc)
	}
	second := checkECSLine(t, lines[1])
	if _, ok := second["mimecrawl"]; ok {
		t.Errorf("a line without other fields has an empty mimecrawl object: %s", lines[1])
	}
	if !strings.HasPrefix(lines[0], `{"@timestamp":`) {
		t.Errorf("@timestamp should come first (people read these too): %s", lines[0])
	}

	// A line that is not a JSON object is passed on, not lost.
	buf.Reset()
	w := newECSWriter(&buf, time.Now)
	if n, err := w.Write([]byte("not json\n")); err != nil || n != 9 || buf.String() != "not json\n" {
		t.Errorf("Write(not json) = %d, %v; wrote %q", n, err, buf.String())
	}
}
