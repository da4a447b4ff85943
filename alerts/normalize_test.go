package alerts

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// attachmentDocx and attachmentPptx are two attachments of one message: same messageId and
// date, as in the fixture that made other integrations merge them.
const attachmentDocx = `{"date":"2024-03-01T10:15:00+0000","senderAddress":"Bad@Evil.example","recipientAddress":"alice@corp.example",
"fileName":"Invoice.DOCX","fileType":"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
"fileHash":"AB12CD34","result":"malicious","actionTriggered":"hold, none","route":"inbound",
"details":"Sandbox\r\nmacro","messageId":"<m1@evil.example>","subject":"Invoice","definition":"Default Attachment Protection","extra":{"ignored":true}}`

const attachmentPptx = `{"date":"2024-03-01T10:15:00+0000","senderAddress":"bad@evil.example","recipientAddress":"alice@corp.example",
"fileName":"deck.pptx","fileType":"application/vnd.ms-powerpoint","fileHash":"ef56","result":"safe",
"actionTriggered":"none, none","route":"inbound","messageId":"<m1@evil.example>","subject":"Invoice","definition":"Default Attachment Protection"}`

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		raw  string
		want Alert // ID and Raw are not compared here
	}{
		{"attachment", AttachmentProtection, attachmentDocx, Alert{
			Source: AttachmentProtection, Time: mustTime("2024-03-01T10:15:00Z"), Verdict: "malicious",
			Status: "held", Route: "inbound", Action: "hold, none", Sender: "bad@evil.example",
			Recipients: []string{"alice@corp.example"}, Subject: "Invoice", MessageID: "<m1@evil.example>",
			Files: []File{{Name: "Invoice.DOCX", MimeType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
				Extension: "docx", SHA256: "ab12cd34"}},
			Rule: "Default Attachment Protection", Details: "Sandbox\r\nmacro",
		}},
		{"attachment none none is delivered", AttachmentProtection, attachmentPptx, Alert{
			Source: AttachmentProtection, Time: mustTime("2024-03-01T10:15:00Z"), Verdict: "safe", Status: "delivered",
			Route: "inbound", Action: "none, none", Sender: "bad@evil.example", Recipients: []string{"alice@corp.example"},
			Subject: "Invoice", MessageID: "<m1@evil.example>", Rule: "Default Attachment Protection",
			Files: []File{{Name: "deck.pptx", MimeType: "application/vnd.ms-powerpoint", Extension: "pptx", SHA256: "ef56"}},
		}},
		{"attachment RFC 3339 Z time, recipients as list", AttachmentProtection,
			`{"date":"2024-03-01T10:15:00.5Z","recipientAddress":["A@x.example","b@x.example","a@x.example"],"result":"Unknown"}`, Alert{
				Source: AttachmentProtection, Time: mustTime("2024-03-01T10:15:00.5Z"), Verdict: "unknown",
				Recipients: []string{"a@x.example", "b@x.example"},
			}},
		{"url click with Internal IP", URLProtection,
			`{"date":"2024-03-01T11:00:00+0000","userEmailAddress":"bob@corp.example","fromUserEmailAddress":"x@phish.example",
			"url":"HTTPS://Phish.Example:443/login#frag","ttpDefinition":"Default URL","subject":"Login","action":"block",
			"actions":"Block","scanResult":"malicious","category":"Phishing & Fraud","sendingIp":"Internal IP","route":"inbound",
			"creationMethod":"User Click","messageId":"<m2@phish.example>","tagMap":{"a":{"b":["c"]}}}`, Alert{
				Source: URLProtection, Time: mustTime("2024-03-01T11:00:00Z"), Verdict: "malicious", Type: "Phishing & Fraud",
				Status: "blocked", Route: "inbound", Action: "block", Sender: "x@phish.example", Recipients: []string{"bob@corp.example"},
				Subject: "Login", MessageID: "<m2@phish.example>", URL: "HTTPS://Phish.Example:443/login#frag",
				Rule: "Default URL", Details: "User Click",
			}},
		{"url with an IP", URLProtection,
			`{"date":"2024-03-01T11:00:00+00:00","userEmailAddress":"bob@corp.example","url":"http://a.example","scanResult":"clean","action":"allow","sendingIp":"192.0.2.7"}`, Alert{
				Source: URLProtection, Time: mustTime("2024-03-01T11:00:00Z"), Verdict: "clean", Status: "delivered", Action: "allow",
				Recipients: []string{"bob@corp.example"}, URL: "http://a.example", SourceIP: "192.0.2.7",
			}},
		{"impersonation", Impersonation,
			`{"id":"MTOKEN:eNabc","eventTime":"2024-03-02T08:00:00+0000","senderAddress":"ceo@corp-example.com",
			"recipientAddress":"cfo@corp.example","senderIpAddress":"2001:db8::1","subject":"Wire","definition":"Impersonation",
			"hits":"3","identifiers":["similar_internal_domain","newly_observed_domain"],"action":"Hold","taggedExternal":true,
			"taggedMalicious":"true","messageId":"<m3@x>"}`, Alert{
				Source: Impersonation, Time: mustTime("2024-03-02T08:00:00Z"), Verdict: "malicious",
				Type: "newly_observed_domain,similar_internal_domain", Status: "held", Route: "inbound", Action: "Hold",
				Sender: "ceo@corp-example.com", Recipients: []string{"cfo@corp.example"}, Subject: "Wire", MessageID: "<m3@x>",
				SourceIP: "2001:db8::1", Rule: "Impersonation", Details: "hits: 3",
			}},
		{"impersonation not tagged, bounce", Impersonation,
			`{"eventTime":"2024-03-02T08:00:00+0000","recipientAddress":{"emailAddress":"CFO@corp.example"},"action":"bounce","taggedMalicious":false,"hits":2}`, Alert{
				Source: Impersonation, Time: mustTime("2024-03-02T08:00:00Z"), Status: "bounced", Route: "inbound", Action: "bounce",
				Recipients: []string{"cfo@corp.example"}, Details: "hits: 2",
			}},
		{"dlp", DLP,
			`{"eventTime":"2024-03-03T09:00:00+0000","senderAddress":"a@corp.example","recipientAddress":"x@out.example",
			"subject":"Card numbers","route":"outbound","policy":"PCI","action":"Block","messageId":"<m4@corp>"}`, Alert{
				Source: DLP, Time: mustTime("2024-03-03T09:00:00Z"), Verdict: "block", Status: "blocked", Route: "outbound",
				Action: "Block", Sender: "a@corp.example", Recipients: []string{"x@out.example"}, Subject: "Card numbers",
				MessageID: "<m4@corp>", Rule: "PCI",
			}},
		{"threat with details", Threats,
			`{"id":"t-1","timestamp":"2024-03-04T10:00:00.000Z","analysis":"Malware","status":"held","direction":"inbound",
			"source":"email","_details":{"sender":{"emailAddress":"bad@evil.example"},"recipients":[{"emailAddress":"a@corp.example"},"b@corp.example"],
			"subject":"Hi","files":[{"fileName":"x.exe","sha256":"FF00","size":"1234","fileType":"application/x-dosexec"}],"urls":["http://u.example"]}}`, Alert{
				Source: Threats, Time: mustTime("2024-03-04T10:00:00Z"), Verdict: "malware", Type: "malware", Status: "held",
				Route: "inbound", Sender: "bad@evil.example", Recipients: []string{"a@corp.example", "b@corp.example"}, Subject: "Hi",
				Files: []File{{Name: "x.exe", MimeType: "application/x-dosexec", Extension: "exe", SHA256: "ff00", Size: 1234}},
				URL:   "http://u.example",
			}},
		{"threat with zone id time and analysis list", Threats,
			`{"eventTime":"2023-04-17T00:00:00.000+05:30[Asia/Kolkata]","analysis":["phishing"],"status":"delivered","recipients":"a@corp.example; b@corp.example"}`, Alert{
				Source: Threats, Time: mustTime("2023-04-16T18:30:00Z"), Verdict: "phishing", Type: "phishing", Status: "delivered",
				Recipients: []string{"a@corp.example", "b@corp.example"},
			}},
		{"siem attachment protect with epoch ms", SIEM,
			`{"timestamp":1731499059314,"type":"attachment protect","subtype":"Allow","aggregateId":"agg_1731499059","processingId":"p1",
			"accountId":"C1","_offset":12,"_partition":3,"fileName":"a.PDF","fileExtension":"pdf","md5":"AA","sha1":"BB","sha256":"CC",
			"messageId":"<m5@x>","emailSize":"31363"}`, Alert{
				Source: SIEM, Time: time.UnixMilli(1731499059314).UTC(), Type: "attachment protect", MessageID: "<m5@x>",
				Details: "Allow",
				Files:   []File{{Name: "a.PDF", Extension: "pdf", SHA256: "cc", MD5: "aa", SHA1: "bb"}},
			}},
		{"siem av as string timestamp", SIEM,
			`{"timestamp":"1731499059314","type":"av","virusFound":"Eicar","senderEnvelope":"x@evil.example","recipients":"a@corp.example","action":"Hold","route":"Inbound","senderIp":"198.51.100.1"}`, Alert{
				Source: SIEM, Time: time.UnixMilli(1731499059314).UTC(), Type: "av", Verdict: "malicious", Status: "held",
				Action: "Hold", Route: "inbound", Sender: "x@evil.example", Recipients: []string{"a@corp.example"}, SourceIP: "198.51.100.1",
			}},
		{"siem epoch seconds", SIEM, `{"timestamp":1731499059,"type":"receipt"}`, Alert{
			Source: SIEM, Time: time.Unix(1731499059, 0).UTC(), Type: "receipt",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.src, json.RawMessage(tc.raw))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if len(got.ID) != 64 || strings.Trim(got.ID, "0123456789abcdef") != "" {
				t.Errorf("ID = %q, want 64 lower-case hex digits", got.ID)
			}
			if got.Raw == nil {
				t.Errorf("Raw is nil")
			}
			got.ID, got.Raw = "", nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Normalize:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		raw  string
		want string
	}{
		{"not JSON", AttachmentProtection, `{"date":`, "not JSON"},
		{"a list", URLProtection, `[1,2]`, "a list, not a JSON object"},
		{"no date", AttachmentProtection, `{"fileName":"a.exe"}`, "field date: missing"},
		{"bad date", URLProtection, `{"date":"yesterday"}`, `field date: "yesterday" is not a time`},
		{"date is an object", URLProtection, `{"date":{"x":1}}`, "field date: an object is not a time"},
		{"impersonation without eventTime", Impersonation, `{"id":"MTOKEN:x","date":"2024-01-01T00:00:00+0000"}`, "field eventTime: missing"},
		{"dlp null time", DLP, `{"eventTime":null}`, "field eventTime: missing"},
		{"threat without any time", Threats, `{"id":"x"}`, "fields timestamp, eventTime"},
		{"siem without timestamp", SIEM, `{"type":"av"}`, "field timestamp: missing"},
		{"siem negative timestamp", SIEM, `{"timestamp":-5}`, `field timestamp: "-5" is not a time`},
		{"unknown source", Source("bogus"), `{}`, `unknown source "bogus"`},
		{"two values", DLP, `{"eventTime":"2024-01-01T00:00:00+0000"} {}`, "more than one JSON value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Normalize(tc.src, json.RawMessage(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Normalize error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func mustNormalize(t *testing.T, src Source, raw string) Alert {
	t.Helper()
	a, err := Normalize(src, json.RawMessage(raw))
	if err != nil {
		t.Fatalf("Normalize(%s, %s): %v", src, raw, err)
	}
	return a
}

func TestIDs(t *testing.T) {
	t.Run("two attachments of one message differ", func(t *testing.T) {
		a, b := mustNormalize(t, AttachmentProtection, attachmentDocx), mustNormalize(t, AttachmentProtection, attachmentPptx)
		if a.ID == b.ID {
			t.Errorf("both attachments got id %s", a.ID)
		}
	})
	t.Run("attachment id ignores the date's format and key order", func(t *testing.T) {
		a := mustNormalize(t, AttachmentProtection, `{"date":"2024-03-01T10:15:00+0000","messageId":"<m>","recipientAddress":"a@x","fileHash":"AB","fileName":"f"}`)
		b := mustNormalize(t, AttachmentProtection, `{"fileName":"f","fileHash":"ab","recipientAddress":"A@x","messageId":"<m>","date":"2024-03-01T10:15:00Z","result":"x"}`)
		if a.ID != b.ID {
			t.Errorf("ids differ: %s %s", a.ID, b.ID)
		}
	})
	t.Run("recipients in another order keep the id", func(t *testing.T) {
		a := mustNormalize(t, DLP, `{"eventTime":"2024-03-03T09:00:00+0000","recipientAddress":"a@x, b@x","messageId":"<m>"}`)
		b := mustNormalize(t, DLP, `{"eventTime":"2024-03-03T09:00:00+0000","recipientAddress":["B@x","a@x"],"messageId":"<m>"}`)
		c := mustNormalize(t, DLP, `{"eventTime":"2024-03-03T09:00:00+0000","recipientAddress":"a@x","messageId":"<m>"}`)
		if a.ID != b.ID || a.ID == c.ID {
			t.Errorf("ids %s %s %s: want the first two equal and the third different", a.ID, b.ID, c.ID)
		}
	})
	t.Run("same SIEM event twice, other offset and key order", func(t *testing.T) {
		a := mustNormalize(t, SIEM, `{"timestamp":1731499059314,"type":"delivery","aggregateId":"a1","processingId":"p1","_offset":10,"_partition":1,"recipients":["x@y"]}`)
		b := mustNormalize(t, SIEM, `{"_partition":2,"recipients":["x@y"],"_offset":99,"processingId":"p1","aggregateId":"a1","type":"delivery","timestamp":1731499059314}`)
		c := mustNormalize(t, SIEM, `{"timestamp":1731499059314,"type":"delivery","aggregateId":"a1","processingId":"p2","_offset":10,"_partition":1,"recipients":["x@y"]}`)
		if a.ID != b.ID {
			t.Errorf("the same event got two ids: %s %s", a.ID, b.ID)
		}
		if a.ID == c.ID {
			t.Errorf("different events share id %s", a.ID)
		}
	})
	t.Run("impersonation repeated id with different recipients", func(t *testing.T) {
		a := mustNormalize(t, Impersonation, `{"id":"MTOKEN:same","eventTime":"2024-03-02T08:00:00+0000","recipientAddress":"a@x","messageId":"<m>"}`)
		b := mustNormalize(t, Impersonation, `{"id":"MTOKEN:same","eventTime":"2024-03-02T08:00:00+0000","recipientAddress":"b@x","messageId":"<m>"}`)
		if a.ID == b.ID {
			t.Errorf("records sharing only the MTOKEN id got one id")
		}
	})
	t.Run("url scan and click differ", func(t *testing.T) {
		a := mustNormalize(t, URLProtection, `{"date":"2024-03-01T11:00:00+0000","userEmailAddress":"b@x","url":"http://u","messageId":"<m>","creationMethod":"User Click"}`)
		b := mustNormalize(t, URLProtection, `{"date":"2024-03-01T11:00:00+0000","userEmailAddress":"b@x","url":"http://u","messageId":"<m>","creationMethod":"Entry Scan"}`)
		if a.ID == b.ID {
			t.Errorf("scan and click got one id")
		}
	})
	t.Run("dlp policies differ", func(t *testing.T) {
		a := mustNormalize(t, DLP, `{"eventTime":"2024-03-03T09:00:00+0000","recipientAddress":"x@o","messageId":"<m>","policy":"PCI"}`)
		b := mustNormalize(t, DLP, `{"eventTime":"2024-03-03T09:00:00+0000","recipientAddress":"x@o","messageId":"<m>","policy":"PII"}`)
		if a.ID == b.ID {
			t.Errorf("two policies got one id")
		}
	})
	t.Run("threat id wins over content; content otherwise", func(t *testing.T) {
		a := mustNormalize(t, Threats, `{"id":"t1","timestamp":"2024-03-04T10:00:00Z","status":"held"}`)
		b := mustNormalize(t, Threats, `{"id":"t1","timestamp":"2024-03-04T10:00:00Z","status":"delivered","_details":{"subject":"x"}}`)
		c := mustNormalize(t, Threats, `{"timestamp":"2024-03-04T10:00:00Z","analysis":"spam","_details":{"subject":"x"}}`)
		d := mustNormalize(t, Threats, `{"analysis":"spam","timestamp":"2024-03-04T10:00:00Z"}`)
		if a.ID != b.ID {
			t.Errorf("one threat id gave two alert ids")
		}
		if c.ID != d.ID {
			t.Errorf("content id depends on the attached details")
		}
		if a.ID == c.ID {
			t.Errorf("different threats share an id")
		}
	})
	t.Run("sources do not share ids", func(t *testing.T) {
		a := mustNormalize(t, DLP, `{"eventTime":"2024-03-03T09:00:00+0000"}`)
		b := mustNormalize(t, Impersonation, `{"eventTime":"2024-03-03T09:00:00+0000"}`)
		if a.ID == b.ID {
			t.Errorf("two sources share id %s", a.ID)
		}
	})
}

func TestRawIsPlainJSON(t *testing.T) {
	a := mustNormalize(t, SIEM, `{"timestamp":1731499059314,"size":1.5,"n":"7","nested":{"k":[1,true,null]}}`)
	want := map[string]any{"timestamp": int64(1731499059314), "size": 1.5, "n": "7",
		"nested": map[string]any{"k": []any{int64(1), true, nil}}}
	if !reflect.DeepEqual(a.Raw, want) {
		t.Errorf("Raw = %#v, want %#v", a.Raw, want)
	}
}

func TestStatusFromAction(t *testing.T) {
	for action, want := range map[string]string{
		"hold": "held", "Hold": "held", "bounce": "bounced", "block": "blocked", "reject": "rejected",
		"none": "delivered", "allow": "delivered", "none, none": "delivered", "hold, none": "held",
		"warn": "", "Browser Isolation": "", "none, replace": "", "": "",
	} {
		if got := statusFromAction(action); got != want {
			t.Errorf("statusFromAction(%q) = %q, want %q", action, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := mustTime("2024-01-25T10:30:45Z")
	for _, s := range []string{
		"2024-01-25T10:30:45+0000", "2024-01-25T10:30:45Z", "2024-01-25T10:30:45+00:00",
		"2024-01-25T11:30:45+01:00", "2024-01-25T10:30:45.000Z", "2024-01-25T10:30:45.000+0000",
		"2024-01-25T16:00:45.000+05:30[Asia/Kolkata]", "1706178645000", "1706178645", "2024-01-25 10:30:45",
	} {
		got, ok := parseTime(s)
		if !ok || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	if got, ok := parseTime(json.Number("1706178645000")); !ok || !got.Equal(want) {
		t.Errorf("parseTime(number ms) = %v, %v", got, ok)
	}
	for _, s := range []any{"", "soon", "2024-13-01T00:00:00Z", true, json.Number("1e300")} {
		if got, ok := parseTime(s); ok {
			t.Errorf("parseTime(%v) = %v, want no time", s, got)
		}
	}
}
