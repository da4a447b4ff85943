package simulator

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Pre-signed downloads. API 2.0 answers get-file and get-message-part with short-lived URLs
// on a separate download host that must be fetched WITHOUT the bearer token. The simulator
// serves them on the same listener under /_download/<sealed token>; the URL is built from
// the request's Host so it works behind any listen address. A request that carries an
// Authorization header still works but is counted in Stats.BearerOnDownload.

// presign returns the download URL for d, valid for Options.DownloadTTL.
func (s *Server) presign(r *http.Request, d download) string {
	d.Expires = s.opts.Now().Add(s.opts.DownloadTTL).UnixMilli()
	tok, err := s.keys.seal("download", d)
	if err != nil { // cannot happen for this struct
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return scheme + "://" + host + downloadPrefix + tok
}

// serveDownload answers GET /_download/<token>. Errors mimic object storage: 403 for a bad
// or expired signature, 404 when the object is gone.
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeXMLError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed")
		return
	}
	var d download
	if !s.keys.open("download", strings.TrimPrefix(r.URL.Path, downloadPrefix), &d) {
		writeXMLError(w, http.StatusForbidden, "AccessDenied", "The request signature does not match")
		return
	}
	if s.opts.Now().UnixMilli() >= d.Expires {
		writeXMLError(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	if s.applyFaults(w, r, nil) {
		return
	}
	var f *rawFile
	var ok bool
	switch d.Kind {
	case "part":
		f, ok = s.resolvePart(d.ID, d.Type)
	case "siem":
		f, ok = s.resolveSIEMFile(d.ID)
	default:
		f, ok = s.resolveFile(d.ID)
	}
	if !ok {
		writeXMLError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist")
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	if f.filename != "" {
		h.Set("Content-Disposition", contentDisposition(f.filename))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.body)
	}
}

func contentDisposition(filename string) string {
	return mime.FormatMediaType("attachment", map[string]string{"filename": filename})
}

func writeXMLError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>" + code + "</Code><Message>" + msg + "</Message></Error>\n"))
}
