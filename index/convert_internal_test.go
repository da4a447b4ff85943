package index

import (
	"encoding/json"
	"reflect"
	"testing"
)

// A message document as the release before ECS wrote it, and what the migration makes of it.
func TestConvertOldMessage(t *testing.T) {
	var old map[string]any
	err := json.Unmarshal([]byte(`{"mailbox":"ann@corp.example","domain":"corp.example","view":"SENT",
	  "message_id":"eNpArchiveId","mime_message_id":"<m1@corp.example>","received":"2024-03-01T12:00:00Z",
	  "subject":"Invoice","from":{"address":"ann@corp.example","name":"Ann"},
	  "to":[{"address":"bob@x.example","name":"Bob"},{"address":"cy@x.example"}],"reply_to":{"address":"r@corp.example"},
	  "headers":{"Date":["Fri, 01 Mar 2024 12:59:00 +0100"],"Authentication-Results":["mx; spf=pass; dkim=fail; dmarc=none"]},
	  "body":"hello","body_from_html":false,"oversize":false,"size":42,"attachment_count":2,
	  "attachment_names":["a.PDF","noext"],"smash":"s1","generation":3,"indexed_at":"2024-03-01T12:01:00Z"}`), &old)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(convertMessage(old))
	var got map[string]any
	json.Unmarshal(b, &got)
	want := map[string]any{}
	json.Unmarshal([]byte(`{"@timestamp":"2024-03-01T12:00:00Z","ecs":{"version":"8.11.0"},
	  "event":{"kind":"event","category":["email"],"type":["info"],"module":"mimecast","dataset":"mimecast.archive","ingested":"2024-03-01T12:01:00Z"},
	  "email":{"message_id":"<m1@corp.example>","local_id":"eNpArchiveId","subject":"Invoice",
	    "from":{"address":["ann@corp.example"]},"to":{"address":["bob@x.example","cy@x.example"]},"reply_to":{"address":["r@corp.example"]},
	    "direction":"outbound","origination_timestamp":"2024-03-01T11:59:00Z","delivery_timestamp":"2024-03-01T12:00:00Z",
	    "attachments":[{"file":{"name":"a.PDF","extension":"pdf"}},{"file":{"name":"noext"}}]},
	  "user":{"email":"ann@corp.example"},
	  "mimecast":{"id":"eNpArchiveId","mailbox":"ann@corp.example","domain":"corp.example","view":"SENT",
	    "from":{"name":["Ann"]},"to":{"name":["Bob"]},
	    "headers":{"Date":["Fri, 01 Mar 2024 12:59:00 +0100"],"Authentication-Results":["mx; spf=pass; dkim=fail; dmarc=none"]},
	    "auth":{"spf":["pass"],"dkim":["fail"],"dmarc":["none"]},
	    "body":"hello","body_from_html":false,"oversize":false,"size":42,"attachment_count":2,"smash":"s1","generation":3}}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("converted:\n%s\nwant:\n%v", b, want)
	}
	// Already converted: unchanged.
	if again := convertMessage(got); !reflect.DeepEqual(again, got) {
		t.Errorf("a converted document changed on a second conversion")
	}
}

func TestConvertOldAttachment(t *testing.T) {
	var old map[string]any
	json.Unmarshal([]byte(`{"mailbox":"ann@corp.example","domain":"corp.example","view":"INBOX","message_id":"eNpA",
	  "message_doc_id":"d1","attachment_id":"att1","received":"2024-03-01T12:00:00Z","subject":"",
	  "filename":"Report.xlsx","content_type":"application/vnd.ms-excel","size":10,"sha256":"ab12","oversize":false,
	  "content":"text","generation":1,"indexed_at":"2024-03-01T12:01:00Z"}`), &old)
	b, _ := json.Marshal(convertAttachment(old))
	var got map[string]any
	json.Unmarshal(b, &got)
	want := map[string]any{}
	json.Unmarshal([]byte(`{"@timestamp":"2024-03-01T12:00:00Z","ecs":{"version":"8.11.0"},
	  "event":{"kind":"event","category":["email"],"type":["info"],"module":"mimecast","dataset":"mimecast.archive","ingested":"2024-03-01T12:01:00Z"},
	  "email":{"local_id":"eNpA","subject":"","direction":"inbound","delivery_timestamp":"2024-03-01T12:00:00Z",
	    "attachments":[{"file":{"name":"Report.xlsx","mime_type":"application/vnd.ms-excel","extension":"xlsx","size":10,"hash":{"sha256":"ab12"}}}]},
	  "user":{"email":"ann@corp.example"},
	  "mimecast":{"id":"eNpA","mailbox":"ann@corp.example","domain":"corp.example","view":"INBOX","message_doc_id":"d1",
	    "attachment_id":"att1","oversize":false,"content":"text","generation":1}}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("converted:\n%s\nwant:\n%v", b, want)
	}
}
