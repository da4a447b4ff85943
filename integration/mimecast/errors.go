package mimecast

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mimecrawl/mimecrawl/integration/mimecast/api"
)

// Error is a failed call to Mimecast: an HTTP status other than 2xx, a fail[] on HTTP 200, a
// refused token request, or a network error (Status 0). Its text never contains tokens or
// secrets. Retryable says what the caller should do; it is decided once, next to the HTTP call.
type Error struct {
	Op        string // e.g. "POST /api/archive/get-file", or "POST <auth URL>" for the token endpoint
	Status    int    // HTTP status; 0 for network errors
	Code      string // Mimecast error code (fail[].code or fail[].errors[].code), if any
	Message   string // Mimecast's message, or the network error
	Retryable bool   // network errors, 408, 429, 5xx, fail[] whose every error is retryable
	// Permission is, for a 403, the Mimecast permission/product the endpoint needs according to
	// the API reference, so that the message can say what to add to the application's role.
	Permission string

	auth         bool          // the token endpoint refused us, or the API answered 401
	token        bool          // the error came from the token endpoint
	afterRefresh bool          // a 401 that came back even with a freshly fetched token
	download     bool          // the error came from a pre-signed download host, not the API
	rejected     bool          // HTTP 200 with fail[]
	hint         time.Duration // the server's wait hint (Retry-After / X-RateLimit-Reset)
	hasHint      bool
	cause        error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.Status == 0:
		b.WriteString(e.Message)
	case e.rejected:
		b.WriteString("rejected (HTTP 200 with fail[])")
		e.writeCodeMessage(&b)
	default:
		fmt.Fprintf(&b, "%d", e.Status)
		if e.Code == "" && e.Message == "" {
			b.WriteString(" " + http.StatusText(e.Status))
		}
		e.writeCodeMessage(&b)
	}
	switch {
	case e.Permission != "":
		fmt.Fprintf(&b, "; the API application needs %q (add the product/permission to the API 2.0 application's role)", e.Permission)
	case e.token && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests:
		b.WriteString("; check the client id and client secret of the API 2.0 application")
	case e.afterRefresh:
		b.WriteString("; refused again with a freshly fetched token (check the API 2.0 application and its credentials)")
	case e.download && (e.Status == http.StatusForbidden || e.Status == http.StatusGone):
		b.WriteString("; the pre-signed download URL was refused, probably expired")
	}
	return b.String()
}

func (e *Error) writeCodeMessage(b *strings.Builder) {
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
}

// Unwrap gives the network error behind a Status 0 error.
func (e *Error) Unwrap() error { return e.cause }

// IsRetryable reports whether err (or an error it wraps) is a Mimecast or network error that
// may succeed if the same call is made again later. Context cancellation is not retryable.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// IsForbidden reports whether the API refused the call with 403: the application lacks the
// product or permission (see Error.Permission). It is per endpoint, not global.
func IsForbidden(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusForbidden && !e.download
}

// IsAuth reports whether authentication failed: the token endpoint refused the credentials
// or gave no usable token, or the API answered 401 even after one token refresh.
func IsAuth(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.auth || (e.Status == http.StatusUnauthorized && !e.download))
}

// retryableStatus is the one place that decides which HTTP statuses are worth repeating.
func retryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// permissions maps each endpoint path to the role permission the API reference says it needs,
// so that a 403 can name it. It is filled by needs, where each path is declared (the file of
// the client method that calls it): a new endpoint's path and permission are one line.
var permissions = map[string]string{}

// needs records that path needs permission and returns path. Declare every endpoint path
// with it.
func needs(path, permission string) string {
	if p, ok := permissions[path]; ok && p != permission {
		panic("mimecast: two permissions for " + path)
	}
	permissions[path] = permission
	return path
}

// PermissionOf returns the permission the permission table names for an endpoint path
// ("" if none), so that a caller (check) can say what a source needs before calling it.
func PermissionOf(path string) string { return permissions[path] }

// maxMessage bounds the server message kept in an error, so a huge HTML error page does not
// end up in a log line.
const maxMessage = 300

// failText extracts a code and a message from an error body. It understands the legacy
// fail[] shapes (flat and per item), the REST {"error":{...}} shape and OAuth's
// {"error":"...","error_description":"..."}; anything else yields a short excerpt.
func failText(body []byte) (code, message string) {
	var env struct {
		Fail  []api.Fail      `json:"fail"`
		Error json.RawMessage `json:"error"`
		Desc  string          `json:"error_description"`
	}
	if err := json.Unmarshal(body, &env); err == nil {
		if len(env.Fail) > 0 {
			code, message = failCodeMessage(env.Fail)
			return code, truncate(message, maxMessage)
		}
		if len(env.Error) > 0 {
			var rest struct{ Code, Message string }
			var oauth string
			switch {
			case json.Unmarshal(env.Error, &rest) == nil:
				return rest.Code, truncate(rest.Message, maxMessage)
			case json.Unmarshal(env.Error, &oauth) == nil:
				return oauth, truncate(env.Desc, maxMessage)
			}
		}
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	return "", truncate(text, maxMessage)
}

// failCodeMessage renders fail[]: the first code found, and every entry's text.
func failCodeMessage(fails []api.Fail) (code, message string) {
	parts := make([]string, 0, len(fails))
	for _, f := range fails {
		if code == "" {
			code = f.Code
			if code == "" && len(f.Errors) > 0 {
				code = f.Errors[0].Code
			}
		}
		if s := f.String(); s != "" {
			parts = append(parts, s)
		}
	}
	message = strings.Join(parts, "; ")
	// The first code already leads the message; do not print it twice.
	message = strings.TrimPrefix(message, code+": ")
	return code, message
}

// failError turns fail[] on HTTP 200 into an error. It is permanent unless every error in it
// says retryable: a validation failure does not go away by asking again.
func failError(op string, fails []api.Fail) *Error {
	code, message := failCodeMessage(fails)
	retryable := false
	for _, f := range fails {
		if len(f.Errors) == 0 {
			retryable = false
			break
		}
		retryable = true
		for _, fe := range f.Errors {
			if !fe.Retryable {
				retryable = false
			}
		}
		if !retryable {
			break
		}
	}
	return &Error{Op: op, Status: http.StatusOK, Code: code, Message: truncate(message, maxMessage), Retryable: retryable, rejected: true}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
