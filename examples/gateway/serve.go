package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/pgwarden/pgwarden/proxy"
)

// shutdownGrace is how long sessions may take to finish after the first
// SIGINT or SIGTERM.
const shutdownGrace = 30 * time.Second

// buildTimeout bounds building the gateway: with credentials.dynamic it
// connects to the admin database and ends the leases left behind.
const buildTimeout = 2 * time.Minute

// adminShutdownGrace is how long admin API requests may take to finish
// once the proxy has stopped.
const adminShutdownGrace = 5 * time.Second

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
	// OpenTelemetry's own errors (an export that failed) go to the log.
	otel.SetErrorHandler(otelErrorHandler{log: logger})
	for _, w := range cfg.warnings {
		logger.Warn("config: " + w)
	}
	g, err := buildUntilSignal(cfg, logger, sigs)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden: %v\n", err)
		return exitError
	}
	ln, adminLn, err := listen(cfg)
	if err != nil {
		logger.Error("pgwarden: cannot listen", "err", err)
		closeGateway(g, logger)
		return exitError
	}
	logger.Info("pgwarden: serving", "addr", ln.Addr().String(), "tls", cfg.TLS != nil,
		"upstream", string(cfg.Upstream.Address), "upstream_tls", string(cfg.Upstream.TLS),
		"dynamic_credentials", g.dynamic != nil, "gateway_id", g.gatewayID, "recording", g.recordingStores(),
		"otlp", cfg.Telemetry != nil && cfg.Telemetry.OTLP != nil, "prometheus", cfg.prometheusEnabled())
	if adminLn != nil {
		logger.Info("pgwarden: admin API serving", "addr", "http://"+adminLn.Addr().String())
	}
	if err := serveUntilSignal(g, ln, adminLn, sigs, logger); err != nil {
		logger.Error("pgwarden: stopped", "err", err)
		return exitError
	}
	return exitOK
}

// buildUntilSignal builds the gateway; a signal on sigs meanwhile cancels
// the build (connecting to the admin database can take a while).
func buildUntilSignal(cfg *config, logger *slog.Logger, sigs <-chan os.Signal) (*gateway, error) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case sig := <-sigs:
			logger.Info("pgwarden: interrupted while starting", "signal", sig.String())
			cancel()
		case <-stop:
		}
	}()
	g, err := buildProxy(ctx, cfg, logger)
	close(stop)
	<-watched
	if err == nil && ctx.Err() != nil {
		closeGateway(g, logger)
		return nil, errors.New("interrupted while starting")
	}
	return g, err
}

// listen opens the proxy's listener and, with an admin section, the admin
// API's (nil otherwise).
func listen(cfg *config) (ln, adminLn net.Listener, err error) {
	if ln, err = net.Listen("tcp", string(cfg.Listen)); err != nil {
		return nil, nil, err
	}
	if cfg.Admin != nil {
		if adminLn, err = net.Listen("tcp", string(cfg.Admin.Listen)); err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("admin API: %w", err)
		}
	}
	return ln, adminLn, nil
}

// closeGateway closes g (its dynamic store, recording stores and
// telemetry), logging a failure.
func closeGateway(g *gateway, logger *slog.Logger) {
	if err := g.Close(); err != nil {
		logger.Error("pgwarden: closing the gateway", "err", err)
	}
}

// serveUntilSignal serves the proxy on ln, and the admin API on adminLn
// when it is not nil, until a signal arrives on sigs; then it shuts the
// proxy down (sessions may finish for shutdownGrace, and a second signal
// closes them at once), then the admin API, then closes the gateway (its
// dynamic store: the sweeper stops, the admin connections close). It
// returns nil after a shutdown, and the error that stopped a server
// otherwise (having closed everything).
func serveUntilSignal(g *gateway, ln, adminLn net.Listener, sigs <-chan os.Signal, logger *slog.Logger) error {
	p := g.proxy
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	var admin *http.Server
	adminServed := make(chan error, 1)
	if adminLn != nil {
		admin = newAdminServer(g, logger)
		go func() { adminServed <- admin.Serve(adminLn) }()
	}
	stopAdmin := func() {
		if admin == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), adminShutdownGrace)
		defer cancel()
		if err := admin.Shutdown(ctx); err != nil {
			admin.Close()
		}
	}
	select {
	case err := <-served:
		stopAdmin()
		p.Close()
		closeGateway(g, logger)
		return fmt.Errorf("serve: %w", err)
	case err := <-adminServed:
		p.Close()
		closeGateway(g, logger)
		return fmt.Errorf("admin API: %w", err)
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
	// The admin API stays up while sessions finish (an operator may
	// terminate one), and stops before the dynamic store it reads.
	stopAdmin()
	closeGateway(g, logger)
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
