package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The control API under /_sim/ needs no authentication and is not counted in Stats. Errors
// answer {"error": "..."} with 400 (bad input), 404 (unknown mailbox/message) or 409
// (mailbox exists).

func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/truth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		writeJSON(w, http.StatusOK, s.TruthOf(TruthQuery{Mailbox: q.Get("mailbox"), SkipAttachments: q.Get("attachments") == "false"}))
	})
	mux.HandleFunc("POST /_sim/messages", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Mailbox string `json:"mailbox"`
			Count   int    `json:"count"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		if req.Mailbox == "" || req.Count < 1 {
			controlError(w, http.StatusBadRequest, errors.New(`want {"mailbox": "<address>", "count": n >= 1}`))
			return
		}
		ids, err := s.AddMessages(req.Mailbox, req.Count)
		if err != nil {
			controlError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string][]string{"ids": ids})
	})
	mux.HandleFunc("DELETE /_sim/messages/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DeleteMessage(r.PathValue("id")); err != nil {
			controlError(w, statusOf(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/mailboxes", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Address string `json:"address"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		if err := s.AddMailbox(req.Address); err != nil {
			controlError(w, statusOf(err), err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("DELETE /_sim/mailboxes/{address}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DeleteMailbox(r.PathValue("address")); err != nil {
			controlError(w, statusOf(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.faults.list())
	})
	mux.HandleFunc("PUT /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var list []Fault
		if !decodeControl(w, r, &list) {
			return
		}
		for _, f := range list {
			if err := f.validate(); err != nil {
				controlError(w, http.StatusBadRequest, err)
				return
			}
		}
		s.SetFaults(list)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.SetFaults(nil)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /_sim/forbidden", func(w http.ResponseWriter, r *http.Request) {
		var paths []string
		if !decodeControl(w, r, &paths) {
			return
		}
		s.SetForbidden(paths)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/forbidden", func(w http.ResponseWriter, r *http.Request) {
		s.SetForbidden(nil)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/tokens/expire", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("DELETE /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
	s.alertControl(mux)
	mux.HandleFunc("/_sim/", func(w http.ResponseWriter, r *http.Request) {
		controlError(w, http.StatusNotFound, fmt.Errorf("no control endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// decodeControl reads a strict JSON body into v, answering 400 itself on failure.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		controlError(w, http.StatusBadRequest, fmt.Errorf("decode %s body: %w", r.URL.Path, err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		controlError(w, http.StatusBadRequest, fmt.Errorf("decode %s body: trailing data after the JSON value", r.URL.Path))
		return false
	}
	return true
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrExists):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func controlError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
