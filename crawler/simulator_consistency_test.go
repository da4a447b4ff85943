package crawler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/mimecrawl/mimecrawl/crawler/body"
	"github.com/mimecrawl/mimecrawl/integration/mimecast/simulator"
)

// TestSimulatorDetailAgreesWithItsRFC822 holds the simulator to what the crawler relies on: a
// message's detail and its RFC 822 form describe the same message, so documents built from
// either are the same. The detail's replyTo is not compared: the simulator reports From there
// when the message has no Reply-To (inferred of Mimecast), and documents take Reply-To from the
// message alone. Header values are compared only for fields whose detail values are not
// RFC 2047-encoded (the detail's headers[] keep the raw values; documents take decoded ones).
func TestSimulatorDetailAgreesWithItsRFC822(t *testing.T) {
	sim, client := simulatorClient(t, simulator.Options{Seed: 5, Domains: 1, Mailboxes: 2, Messages: 60})
	ctx := context.Background()
	messages, attachments := 0, 0
	for _, mb := range sim.Truth().Mailboxes {
		for _, tm := range mb.Messages {
			d, err := client.MessageDetail(ctx, tm.ID)
			if err != nil {
				t.Fatalf("detail of %s: %v", tm.ID, err)
			}
			rc, err := client.GetFile(ctx, tm.ID)
			if err != nil {
				t.Fatalf("get-file of %s: %v", tm.ID, err)
			}
			raw, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			text, err := body.Extract(bytes.NewReader(raw), body.Options{})
			if err != nil {
				t.Fatalf("extract %s: %v", tm.ID, err)
			}
			text.Close()
			messages++
			fromMIME, fromDetail := rfc822Header(text), detailHeader(d)
			same := func(what string, a, b any) {
				t.Helper()
				if !reflect.DeepEqual(a, b) {
					t.Errorf("message %s: %s is %+v in the RFC 822 message, %+v in the detail", tm.ID, what, a, b)
				}
			}
			same("subject", fromMIME.subject, fromDetail.subject)
			same("message id", fromMIME.messageID, fromDetail.messageID)
			same("from", fromMIME.from, fromDetail.from)
			same("to", fmt.Sprint(fromMIME.to), fmt.Sprint(fromDetail.to))
			same("cc", fmt.Sprint(fromMIME.cc), fmt.Sprint(fromDetail.cc))
			// Documents take only the envelope sender's address.
			same("envelope sender", fromMIME.returnPath.EmailAddress, fromDetail.returnPath.EmailAddress)
			same("date", fromMIME.date.String(), fromDetail.date.String())
			same("size", int64(len(raw)), d.Size)
			for _, name := range []string{"Received", "Authentication-Results", "Date", "Message-Id", "Return-Path", "X-Mailer"} {
				same("header "+name, fromMIME.headers[name], fromDetail.headers[name])
			}
			atts := matchAttachments(text.Parts, d.Attachments)
			same("attachments", len(atts), len(d.Attachments))
			for i, a := range atts {
				attachments++
				if a.part == nil || a.listed == nil || a.position != i || a.listed.SHA256 != a.part.SHA256 {
					t.Errorf("message %s: attachment %d not matched by its hash in place", tm.ID, i)
					continue
				}
				same("attachment name", a.part.Filename, a.listed.Filename)
				same("attachment type", a.part.ContentType, strings.ToLower(a.listed.ContentType))
				same("attachment size", a.part.Size, a.listed.Size)
			}
		}
	}
	if messages == 0 || attachments == 0 {
		t.Fatalf("%d messages and %d attachments compared; the test needs both", messages, attachments)
	}
}
