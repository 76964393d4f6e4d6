package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgwarden/pgwarden/proxy"
)

// shutdownGrace is how long sessions may take to finish after the first
// SIGINT or SIGTERM.
const shutdownGrace = 30 * time.Second

// serveCommand runs the gateway described by a configuration file until
// SIGINT or SIGTERM.
func serveCommand(args []string, stderr io.Writer) int {
	file, ok := configFlag("serve", args, stderr)
	if !ok {
		return exitUsage
	}
	// Catch signals from the start, so that an early Ctrl-C is not lost.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	cfg, err := loadConfig(file)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden: %v\n", err)
		return exitError
	}
	logger := newLogger(cfg, stderr)
	for _, w := range cfg.warnings {
		logger.Warn("config: " + w)
	}
	p, err := buildProxy(cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden: %v\n", err)
		return exitError
	}
	ln, err := net.Listen("tcp", string(cfg.Listen))
	if err != nil {
		logger.Error("pgwarden: cannot listen", "err", err)
		return exitError
	}
	logger.Info("pgwarden: serving", "addr", ln.Addr().String(), "tls", cfg.TLS != nil,
		"upstream", string(cfg.Upstream.Address), "upstream_tls", string(cfg.Upstream.TLS))
	if err := serveUntilSignal(p, ln, sigs, logger); err != nil {
		logger.Error("pgwarden: stopped", "err", err)
		return exitError
	}
	return exitOK
}

// serveUntilSignal serves on ln until a signal arrives on sigs, then shuts
// p down: sessions may finish for shutdownGrace, and a second signal closes
// them at once. It returns nil after a shutdown, and the error that stopped
// Serve otherwise.
func serveUntilSignal(p *proxy.Proxy, ln net.Listener, sigs <-chan os.Signal, logger *slog.Logger) error {
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case sig := <-sigs:
		logger.Info("pgwarden: shutting down; a second signal closes all sessions at once",
			"signal", sig.String(), "grace", shutdownGrace)
	}

	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(ctx) }()
	var err error
	select {
	case err = <-done:
	case sig := <-sigs:
		logger.Warn("pgwarden: second signal; closing all sessions", "signal", sig.String())
		p.Close()
		cancel()
		err = <-done
	}
	if err := <-served; !errors.Is(err, proxy.ErrProxyClosed) {
		logger.Warn("pgwarden: listener", "err", err)
	}
	switch {
	case err == nil:
		logger.Info("pgwarden: stopped")
	case errors.Is(err, context.DeadlineExceeded):
		logger.Warn("pgwarden: grace period over; remaining sessions were closed")
	case errors.Is(err, context.Canceled):
		logger.Info("pgwarden: stopped; sessions were closed")
	default:
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
