package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/journal"
)

// leaseTTL is the longest a session's just-in-time role lives.
const leaseTTL = 10 * time.Minute

// gateway is the parent's embedded pgwarden: the proxy and the stores it
// was built from, which the parent also uses (the approval store to
// decide, the journal to replay, the lease store to check).
type gateway struct {
	proxy     *proxy.Proxy
	oidc      *auth.OIDC
	leases    *credstore.Dynamic
	approvals *approval.Memory
	journal   *journal.Journal
	logFile   *os.File
	addr      *net.TCPAddr
	issuer    string
	served    chan error

	closeOnce sync.Once
	closeErr  error
}

// gatewayFiles are where the gateway keeps what it writes.
type gatewayFiles struct {
	log        string // operational log
	recordings string // the journal's directory
	leases     string // the just-in-time roles' lease file
}

func filesIn(dir string) gatewayFiles {
	return gatewayFiles{
		log:        filepath.Join(dir, "gateway.log"),
		recordings: filepath.Join(dir, "recordings"),
		leases:     filepath.Join(dir, "leases.json"),
	}
}

// startGateway builds the proxy and serves it on a free loopback port:
//
//   - auth.OIDC verifies the tokens clients send as their password (over
//     TLS), delegation chain included;
//   - credstore.Dynamic gives each session a role of its own, member of
//     templateRole, whose password only the gateway's memory holds;
//   - agentPolicy judges statements, agentMasks masks results;
//   - approval.Memory keeps the approval requests (notify hears of each);
//   - journal records every session, write-ahead, MAC-chained.
//
// On error it closes what it opened.
func startGateway(ctx context.Context, w *world, files gatewayFiles, notify func(approval.Record)) (_ *gateway, err error) {
	g := &gateway{issuer: w.idp.Issuer(), served: make(chan error, 1)}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Close())
		}
	}()
	if g.logFile, err = os.OpenFile(files.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("opening the gateway log: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(g.logFile, nil))
	if g.oidc, err = auth.NewOIDC(auth.OIDCConfig{Issuer: w.idp.Issuer(), Audience: w.idp.Audience()}); err != nil {
		return nil, fmt.Errorf("building the OIDC authenticator: %w", err)
	}
	if err := g.openStores(ctx, w, files, notify, logger); err != nil {
		return nil, err
	}
	p := &proxy.Proxy{
		Authenticator: g.oidc,
		Credentials:   g.leases,
		Policy:        agentPolicy(),
		Approver:      g.approvals,
		Masks:         agentMasks(),
		Recorder:      g.journal,
		Upstream:      proxy.Upstream{Address: w.cluster.Addr()}, // loopback: no TLS upstream
		TLS:           &tls.Config{Certificates: []tls.Certificate{w.serverCert}, MinVersion: tls.VersionTLS12},
		Logger:        logger,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	g.proxy, g.addr = p, ln.Addr().(*net.TCPAddr)
	go func() { g.served <- p.Serve(ln) }()
	return g, nil
}

// openStores opens the recording journal (with a fresh random key), the
// approval store and the just-in-time credential store.
func (g *gateway) openStores(ctx context.Context, w *world, files gatewayFiles, notify func(approval.Record), logger *slog.Logger) error {
	key, err := randomToken()
	if err != nil {
		return err
	}
	if g.journal, err = journal.Open(files.recordings, session.NewSecret(key), journal.Options{Logger: logger}); err != nil {
		return fmt.Errorf("opening the recording journal: %w", err)
	}
	g.approvals = approval.NewMemory(approval.Options{Notify: notify, Logger: logger})
	g.leases, err = credstore.NewDynamic(ctx, credstore.DynamicConfig{
		AdminDSN:  w.jitAdmin,
		Templates: []credstore.Template{{Groups: []string{analystGroup}, Roles: []string{templateRole}}},
		TTL:       leaseTTL,
		GatewayID: "agent-example",
		Leases:    credstore.NewFileLeases(files.leases),
		Logger:    logger,
	})
	if err != nil {
		return fmt.Errorf("starting the just-in-time credential store: %w", err)
	}
	return nil
}

// lease returns the lease of role.
func (g *gateway) lease(ctx context.Context, role string) (credstore.Lease, error) {
	ls, err := g.leases.Leases(ctx)
	if err != nil {
		return credstore.Lease{}, err
	}
	for _, l := range ls {
		if l.Role == role {
			return l, nil
		}
	}
	return credstore.Lease{}, fmt.Errorf("no lease for role %s", role)
}

// Close stops the proxy (every session still open ends), then withdraws
// pending approvals, ends the remaining leases and closes the journal.
// It is idempotent.
func (g *gateway) Close() error {
	g.closeOnce.Do(func() {
		var errs []error
		if g.proxy != nil {
			errs = append(errs, g.proxy.Close())
			if err := <-g.served; !errors.Is(err, proxy.ErrProxyClosed) {
				errs = append(errs, err)
			}
		}
		if g.approvals != nil {
			errs = append(errs, g.approvals.Close())
		}
		if g.leases != nil {
			errs = append(errs, g.leases.Close())
		}
		if g.journal != nil {
			errs = append(errs, g.journal.Close())
		}
		if g.logFile != nil {
			errs = append(errs, g.logFile.Close())
		}
		g.closeErr = errors.Join(errs...)
	})
	return g.closeErr
}
