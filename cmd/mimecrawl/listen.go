package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/mimecrawl/mimecrawl/metrics"
)

// listenShutdown bounds how long the metrics server waits for scrapes in progress to end.
const listenShutdown = 5 * time.Second

// serveMetrics serves /metrics (m) and the probes of health (/healthz liveness, /readyz
// readiness, /status per source as JSON) on addr. It returns once the address is bound, so
// that a bad or taken address fails the command before any work, and a function that stops
// the server and waits for it: call it when the command returns.
func (a *app) serveMetrics(addr string, m *metrics.Metrics, health *metrics.Health) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	probes := health.Handler()
	for _, path := range []string{"/healthz", "/readyz", "/status"} {
		mux.Handle("GET "+path, probes)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error().Err(err).Str("listen", ln.Addr().String()).Msg("metrics server stopped")
		}
	}()
	a.log.Info().Str("listen", ln.Addr().String()).Msg("serving /metrics and /healthz")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), listenShutdown)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}, nil
}
