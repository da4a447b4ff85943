package api

import "encoding/json"

// The record methods below list, per wire type, the documented fields and the tolerant type
// each is read with (see flex.go). UnmarshalJSON of each type uses the same list, so
// json.Unmarshal and Decode agree; Decode also reports unexpected shapes.

func (m *MessageSummary) record(raw []byte, path string, s *shapes) error {
	*m = MessageSummary{}
	return fields(raw, path, s,
		field{"id", (*FlexString)(&m.ID)},
		field{"status", (*FlexString)(&m.Status)},
		field{"received", (*FlexTime)(&m.Received)},
		field{"subject", (*FlexString)(&m.Subject)},
		field{"size", (*FlexInt64)(&m.Size)},
		field{"attachmentCount", (*FlexInt)(&m.AttachmentCount)},
		field{"from", &m.From},
		field{"to", &m.To},
		field{"smash", (*FlexString)(&m.Smash)},
		field{"read", (*FlexBool)(&m.Read)})
}

// UnmarshalJSON reads a summary tolerantly; it fails only if b is not an object.
func (m *MessageSummary) UnmarshalJSON(b []byte) error { return m.record(b, "", nil) }

func (h *Header) record(raw []byte, path string, s *shapes) error {
	*h = Header{}
	return fields(raw, path, s,
		field{"name", (*FlexString)(&h.Name)},
		field{"values", (*FlexStrings)(&h.Values)})
}

// UnmarshalJSON reads a header tolerantly; values may be a list or one string.
func (h *Header) UnmarshalJSON(b []byte) error { return h.record(b, "", nil) }

func (a *Attachment) record(raw []byte, path string, s *shapes) error {
	*a = Attachment{}
	return fields(raw, path, s,
		field{"id", (*FlexString)(&a.ID)},
		field{"filename", (*FlexString)(&a.Filename)},
		field{"size", (*FlexInt64)(&a.Size)},
		field{"contentType", (*FlexString)(&a.ContentType)},
		field{"extension", (*FlexString)(&a.Extension)},
		field{"contentId", (*FlexString)(&a.ContentID)},
		field{"bodyType", (*FlexInt)(&a.BodyType)},
		field{"sha256", (*FlexString)(&a.SHA256)})
}

// UnmarshalJSON reads an attachment entry tolerantly.
func (a *Attachment) UnmarshalJSON(b []byte) error { return a.record(b, "", nil) }

func (d *MessageDetail) record(raw []byte, path string, s *shapes) error {
	*d = MessageDetail{}
	return fields(raw, path, s,
		field{"id", (*FlexString)(&d.ID)},
		field{"status", (*FlexString)(&d.Status)},
		field{"smash", (*FlexString)(&d.Smash)},
		field{"mimeMessageId", (*FlexString)(&d.MimeMessageID)},
		field{"subject", (*FlexString)(&d.Subject)},
		field{"size", (*FlexInt64)(&d.Size)},
		field{"received", (*FlexTime)(&d.Received)},
		field{"processed", (*FlexTime)(&d.Processed)},
		field{"headerDate", (*FlexString)(&d.HeaderDate)},
		field{"from", &d.From},
		field{"envelopeFrom", &d.EnvelopeFrom},
		field{"replyTo", &d.ReplyTo},
		field{"to", (*Addresses)(&d.To)},
		field{"cc", (*Addresses)(&d.Cc)},
		field{"headers", flexFunc(func(raw []byte, p string, s *shapes) {
			d.Headers = list(raw, p, s, func(raw []byte, p string, s *shapes, h *Header) error { return h.record(raw, p, s) })
		})},
		field{"hasHtmlBody", (*FlexBool)(&d.HasHTMLBody)},
		field{"hasTextBody", (*FlexBool)(&d.HasTextBody)},
		field{"isPassthrough", (*FlexBool)(&d.IsPassthrough)},
		field{"messageBodyPreview", (*FlexString)(&d.MessageBodyPreview)},
		field{"attachments", flexFunc(func(raw []byte, p string, s *shapes) {
			d.Attachments = list(raw, p, s, func(raw []byte, p string, s *shapes, a *Attachment) error { return a.record(raw, p, s) })
		})})
}

// UnmarshalJSON reads a message detail tolerantly; it fails only if b is not an object.
func (d *MessageDetail) UnmarshalJSON(b []byte) error { return d.record(b, "", nil) }

func (u *User) record(raw []byte, path string, s *shapes) error {
	*u = User{}
	return fields(raw, path, s,
		field{"emailAddress", (*FlexString)(&u.EmailAddress)},
		field{"name", (*FlexString)(&u.Name)},
		field{"alias", (*FlexBool)(&u.Alias)},
		field{"addressType", (*FlexString)(&u.AddressType)},
		field{"domain", (*FlexString)(&u.Domain)})
}

// UnmarshalJSON reads a user row tolerantly ("emaiLAddress" of the doc sample matches too).
func (u *User) UnmarshalJSON(b []byte) error { return u.record(b, "", nil) }

func (p *UsersPage) record(raw []byte, path string, s *shapes) error {
	*p = UsersPage{}
	return fields(raw, path, s,
		field{"users", flexFunc(func(raw []byte, q string, s *shapes) {
			p.Users = list(raw, q, s, func(raw []byte, q string, s *shapes, u *User) error { return u.record(raw, q, s) })
		})},
		field{"userCount", (*FlexInt)(&p.UserCount)})
}

// UnmarshalJSON reads data[0] of get-internal-users tolerantly (userCount or usercount).
func (p *UsersPage) UnmarshalJSON(b []byte) error { return p.record(b, "", nil) }

func (d *Domain) record(raw []byte, path string, s *shapes) error {
	*d = Domain{}
	return fields(raw, path, s,
		field{"id", (*FlexString)(&d.ID)},
		field{"domain", (*FlexString)(&d.Domain)},
		field{"sendOnly", (*FlexBool)(&d.SendOnly)},
		field{"local", (*FlexBool)(&d.Local)},
		field{"inboundType", (*FlexString)(&d.InboundType)})
}

// UnmarshalJSON reads a domain tolerantly.
func (d *Domain) UnmarshalJSON(b []byte) error { return d.record(b, "", nil) }

func (t *Token) record(raw []byte, path string, s *shapes) error {
	*t = Token{}
	return fields(raw, path, s,
		field{"access_token", (*FlexString)(&t.AccessToken)},
		field{"token_type", (*FlexString)(&t.TokenType)},
		field{"expires_in", (*FlexInt)(&t.ExpiresIn)},
		field{"scope", (*FlexString)(&t.Scope)})
}

// UnmarshalJSON reads a token answer tolerantly (expires_in may be a string).
func (t *Token) UnmarshalJSON(b []byte) error { return t.record(b, "", nil) }

func (p *Pagination) record(raw []byte, path string, s *shapes) error {
	*p = Pagination{}
	return fields(raw, path, s,
		field{"pageSize", (*FlexInt)(&p.PageSize)},
		field{"pageToken", (*FlexString)(&p.PageToken)},
		field{"next", (*FlexString)(&p.Next)},
		field{"previous", (*FlexString)(&p.Previous)},
		field{"totalCount", flexFunc(func(raw []byte, q string, s *shapes) {
			var n FlexInt
			n.flex(raw, q, s)
			if KindOf(raw) != KindNull {
				v := int(n)
				p.TotalCount = &v
			}
		})})
}

// UnmarshalJSON reads meta.pagination tolerantly; a value that is not an object leaves it
// empty (no next page) rather than failing the answer.
func (p *Pagination) UnmarshalJSON(b []byte) error { _ = p.record(b, "", nil); return nil }

func (m *ResponseMeta) record(raw []byte, path string, s *shapes) error {
	*m = ResponseMeta{}
	return fields(raw, path, s,
		field{"status", (*FlexInt)(&m.Status)},
		field{"pagination", flexFunc(func(raw []byte, q string, s *shapes) {
			if KindOf(raw) == KindNull {
				return
			}
			var pg Pagination
			if pg.record(raw, q, s) != nil {
				s.add(q, KindOf(raw))
				return
			}
			m.Pagination = &pg
		})})
}

// UnmarshalJSON reads the response meta tolerantly.
func (m *ResponseMeta) UnmarshalJSON(b []byte) error { _ = m.record(b, "", nil); return nil }

func (e *FailError) record(raw []byte, path string, s *shapes) error {
	*e = FailError{}
	return fields(raw, path, s,
		field{"code", (*FlexString)(&e.Code)},
		field{"message", (*FlexString)(&e.Message)},
		field{"retryable", (*FlexBool)(&e.Retryable)})
}

// UnmarshalJSON reads one error of a failure tolerantly; a value that is not an object
// gives an empty error (still a failure: the entry exists).
func (e *FailError) UnmarshalJSON(b []byte) error { _ = e.record(b, "", nil); return nil }

func (f *Fail) record(raw []byte, path string, s *shapes) error {
	*f = Fail{}
	return fields(raw, path, s,
		field{"code", (*FlexString)(&f.Code)},
		field{"message", (*FlexString)(&f.Message)},
		field{"key", flexFunc(func(raw []byte, _ string, _ *shapes) { f.Key = append(json.RawMessage(nil), raw...) })},
		field{"errors", flexFunc(func(raw []byte, q string, s *shapes) {
			f.Errors = list(raw, q, s, func(raw []byte, q string, s *shapes, e *FailError) error { return e.record(raw, q, s) })
		})})
}

// UnmarshalJSON reads one fail[] entry tolerantly. An entry that is not an object is still
// an entry: the answer is a failure whatever its shape.
func (f *Fail) UnmarshalJSON(b []byte) error { _ = f.record(b, "", nil); return nil }
