// Package api holds the wire types of the Mimecast API 2.0 that mimecrawl uses. The client
// (package mimecast) and the simulator (package simulator) both speak in these types, so a
// field renamed in one place is renamed for both. Field names follow the public reference
// (../shared/mimecast-api.md); where the reference is unsure the comment says "inferred".
//
// Because both sides share these types they agree by construction, which proves nothing
// about the real API. So the types marshal to the documented shapes but unmarshal
// tolerantly (flex.go, records.go): every field accepts the shapes the sources disagree on,
// and the simulator's shape-variant mode serves those shapes to test it.
package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// TimeLayout is the date-time format of the legacy /api endpoints: offset without a colon,
// second precision, e.g. 2015-11-16T14:49:18+0000. Requests are always sent in this form.
const TimeLayout = "2006-01-02T15:04:05-0700"

// FormatTime renders t in the legacy layout, in UTC (responses always use +0000).
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime accepts the forms of §5.1 of the reference: +0000, Z and +hh:mm offsets, with or
// without fractional seconds, and a trailing zone id in brackets ("+05:30[Asia/Kolkata]",
// which is dropped: the offset already fixes the instant). The reference disagrees about
// which form requests may use and answers carry, so both sides accept all of them.
func ParseTime(s string) (time.Time, error) {
	v := strings.TrimSpace(s)
	if i := strings.IndexByte(v, '['); i > 0 && strings.HasSuffix(v, "]") {
		v = v[:i]
	}
	// Parsing accepts fractional seconds after the seconds field even where the layout has
	// none, so these two layouts cover every form above.
	for _, layout := range []string{TimeLayout, time.RFC3339Nano} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return time.Time{}, fmt.Errorf("parse time %q: want yyyy-MM-ddTHH:mm:ss+0000, Z or +hh:mm", s)
}

// Pagination is meta.pagination in requests and responses.
type Pagination struct {
	PageSize   int    `json:"pageSize,omitempty"`
	PageToken  string `json:"pageToken,omitempty"`
	Next       string `json:"next,omitempty"`
	Previous   string `json:"previous,omitempty"`
	TotalCount *int   `json:"totalCount,omitempty"`
}

// RequestMeta is meta of a legacy request.
type RequestMeta struct {
	Pagination *Pagination `json:"pagination,omitempty"`
}

// Request is the legacy request envelope: {"meta":{...},"data":[...]}.
type Request struct {
	Meta *RequestMeta      `json:"meta,omitempty"`
	Data []json.RawMessage `json:"data"`
}

// ResponseMeta is meta of a legacy response.
type ResponseMeta struct {
	Status     int         `json:"status"`
	Pagination *Pagination `json:"pagination,omitempty"`
}

// Response is the legacy response envelope. HTTP 200 with a non-empty Fail is a failure.
type Response struct {
	Meta ResponseMeta      `json:"meta"`
	Data []json.RawMessage `json:"data"`
	Fail []Fail            `json:"fail"`
}

// Fail is one entry of fail[]. Gateway-level errors (401/403/429/5xx) use the flat shape
// {code, message}; validation failures of an input item use {key, errors[]}. Both shapes
// decode into this one type.
type Fail struct {
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
	Key     json.RawMessage `json:"key,omitempty"` // inferred from the 1.0 docs
	Errors  []FailError     `json:"errors,omitempty"`
}

// FailError is one error of a per-item failure.
type FailError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// String renders a failure as "code: message" for error texts; never includes the key,
// which may echo request data.
func (f Fail) String() string {
	var parts []string
	if f.Code != "" || f.Message != "" {
		parts = append(parts, strings.TrimPrefix(f.Code+": "+f.Message, ": "))
	}
	for _, e := range f.Errors {
		parts = append(parts, strings.TrimPrefix(e.Code+": "+e.Message, ": "))
	}
	return strings.Join(parts, "; ")
}

// Token is the body of a successful POST /oauth/token.
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// Domain is one record of /api/domain/get-internal-domain.
type Domain struct {
	ID          string `json:"id"`
	Domain      string `json:"domain"`
	SendOnly    bool   `json:"sendOnly"`
	Local       bool   `json:"local"`
	InboundType string `json:"inboundType"`
}

// DomainFilter is a data item of get-internal-domain (empty data = every domain).
type DomainFilter struct {
	Domain string `json:"domain"`
}

// UsersFilter is the data item of /api/user/get-internal-users.
type UsersFilter struct {
	Domain string `json:"domain,omitempty"`
}

// UsersPage is data[0] of get-internal-users.
type UsersPage struct {
	Users     []User `json:"users"`
	UserCount int    `json:"userCount"`
}

// AddressTypeDistributionList marks a distribution list imported from LDAP; such rows are not
// mailboxes.
const AddressTypeDistributionList = "dl_from_ldap"

// User is one row of users[]. Aliases are separate rows with Alias true.
type User struct {
	EmailAddress string `json:"emailAddress"`
	Name         string `json:"name"`
	Alias        bool   `json:"alias"`
	AddressType  string `json:"addressType"`
	Domain       string `json:"domain,omitempty"`
}

// Views of get-message-list.
const (
	ViewInbox = "INBOX"
	ViewSent  = "SENT"
)

// MessageListFilter is the data item of /api/archive/get-message-list.
type MessageListFilter struct {
	View             string `json:"view"`
	Mailbox          string `json:"mailbox,omitempty"`
	Start            string `json:"start,omitempty"`
	End              string `json:"end,omitempty"`
	IncludeAliases   *bool  `json:"includeAliases,omitempty"`
	IncludeDelegates *bool  `json:"includeDelegates,omitempty"`
}

// Address is {emailAddress, displayableName}.
type Address struct {
	EmailAddress    string `json:"emailAddress"`
	DisplayableName string `json:"displayableName"`
}

// MessageSummary is one record of get-message-list (a flat data[]). The crawler needs ID
// and Received; everything else is optional.
type MessageSummary struct {
	ID              string  `json:"id"`
	Status          string  `json:"status"`
	Received        string  `json:"received"`
	Subject         string  `json:"subject"`
	Size            int64   `json:"size"`
	AttachmentCount int     `json:"attachmentCount"`
	From            Address `json:"from"`
	To              Address `json:"to"`
	Smash           string  `json:"smash"`
	Read            bool    `json:"read"`

	// Problem is set by the client on a record it could not use: one that is not a JSON
	// object, lacks an id, or whose received time does not parse. Such a record still has
	// ID == "" or a Received that ParseTime rejects, so a consumer that checks those two
	// fails it; Problem says why, without the record's content. Never marshalled.
	Problem error `json:"-"`
}

// Contexts of get-message-detail and get-message-part.
const (
	ContextDelivered = "DELIVERED"
	ContextReceived  = "RECEIVED"
)

// MessageDetailRequest is the data item of /api/archive/get-message-detail.
type MessageDetailRequest struct {
	ID      string `json:"id"`
	Admin   bool   `json:"admin,omitempty"`
	Context string `json:"context,omitempty"`
}

// Header is one entry of headers[]: a name with every value it had.
type Header struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// Attachment is one entry of attachments[] of a message detail.
type Attachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	Extension   string `json:"extension"`
	ContentID   string `json:"contentId"`
	BodyType    int    `json:"bodyType"`
	SHA256      string `json:"sha256"`
}

// MessageDetail is data[0] of get-message-detail.
type MessageDetail struct {
	ID                 string       `json:"id"`
	Status             string       `json:"status"`
	Smash              string       `json:"smash"`
	MimeMessageID      string       `json:"mimeMessageId"`
	Subject            string       `json:"subject"`
	Size               int64        `json:"size"`
	Received           string       `json:"received"`
	Processed          string       `json:"processed"`
	HeaderDate         string       `json:"headerDate"`
	From               Address      `json:"from"`
	EnvelopeFrom       Address      `json:"envelopeFrom"`
	ReplyTo            Address      `json:"replyTo"`
	To                 []Address    `json:"to"`
	Cc                 []Address    `json:"cc"`
	Headers            []Header     `json:"headers"`
	HasHTMLBody        bool         `json:"hasHtmlBody"`
	HasTextBody        bool         `json:"hasTextBody"`
	IsPassthrough      bool         `json:"isPassthrough"`
	MessageBodyPreview string       `json:"messageBodyPreview"`
	Attachments        []Attachment `json:"attachments"`
}

// FileRequest is the data item of /api/archive/get-file: an attachment id gives that
// attachment, a message id the whole RFC 822 message.
type FileRequest struct {
	ID    string `json:"id"`
	Admin bool   `json:"admin,omitempty"`
}

// Part types of get-message-part.
const (
	PartHTML   = "HTML"
	PartPlain  = "PLAIN"
	PartRFC822 = "RFC822"
)

// MessagePartRequest is the data item of /api/archive/get-message-part.
type MessagePartRequest struct {
	ID      string `json:"id"`
	Mailbox string `json:"mailbox,omitempty"`
	Context string `json:"context,omitempty"`
	Type    string `json:"type"`
}

// FileURLs is data[0] of get-file / get-message-part when API 2.0 answers with pre-signed
// URLs instead of the bytes. get-file uses urls[]; get-message-part a single url (a 2.0
// client expects that shape; inferred). A client accepts either field.
type FileURLs struct {
	URLs []string `json:"urls,omitempty"`
	URL  string   `json:"url,omitempty"`
}
