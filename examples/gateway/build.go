package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// gateway is a built gateway: the proxy, and what the admin API, the
// access review and the shutdown need besides it.
type gateway struct {
	cfg   *config
	proxy *proxy.Proxy
	// static is the store of credentials.static; nil without it.
	static *credstore.Static
	// dynamic is the store of credentials.dynamic; nil without it, and
	// when the gateway was built by checkProxy.
	dynamic *credstore.Dynamic
	// gatewayID is the dynamic store's gateway id; empty without one.
	gatewayID string
	// revocations keeps the admin API's revocations across restarts.
	revocations *revocationFile
	// stores are the recording section's stores, closed after the proxy;
	// none without the section, and when built by checkProxy.
	stores []namedStore
	// telemetry holds the telemetry section's providers; nil without it,
	// and when built by checkProxy.
	telemetry *telemetry
	// approvals is the approvals section's store (the proxy's Approver);
	// nil without it, and when built by checkProxy.
	approvals approval.Store
	// approvers checks the credentials of the people who decide approval
	// requests through the admin API.
	approvers approverAuth
	logger    *slog.Logger
}

// buildProxy turns a loaded configuration into a gateway ready to serve.
// It reads the files the configuration names (certificates, keys, CA
// bundle) and, with credentials.dynamic, connects to the admin database
// (bounded by ctx): it checks the template roles, prepares the lease store
// and ends the leases this gateway_id left behind. It opens the recording
// stores (recording.postgres connects) and the telemetry exporters. Its
// errors name the key path and line of the setting at fault. Close the
// gateway after the proxy's Shutdown or Close.
func buildProxy(ctx context.Context, cfg *config, logger *slog.Logger) (*gateway, error) {
	return build(ctx, cfg, logger, true)
}

// checkProxy builds the gateway as buildProxy does without connecting
// anywhere, for `pgwarden check`: credentials.dynamic is checked (the
// lease file's directory) but its store is not created, so the gateway
// would give static credentials only. Creating it would also end the
// leases of a running gateway with the same gateway_id. Likewise the
// recording stores are not opened (recording.dir's parent directory is
// checked; opening the journal would recover a running gateway's
// sessions) and no telemetry is built.
func checkProxy(cfg *config, logger *slog.Logger) (*gateway, error) {
	return build(context.Background(), cfg, logger, false)
}

// build is buildProxy, or checkProxy when connect is false.
func build(ctx context.Context, cfg *config, logger *slog.Logger, connect bool) (*gateway, error) {
	authenticator, approvers, err := buildAuthenticator(cfg)
	if err != nil {
		return nil, err
	}
	static, err := buildCredentials(cfg)
	if err != nil {
		return nil, err
	}
	upstream, err := buildUpstream(cfg)
	if err != nil {
		return nil, err
	}
	clientTLS, err := buildClientTLS(cfg)
	if err != nil {
		return nil, err
	}
	leases, err := buildLeaseStore(cfg)
	if err != nil {
		return nil, err
	}
	g := &gateway{cfg: cfg, static: static, approvers: approvers, logger: logger}
	recorder, recStores, err := buildRecorder(ctx, cfg, logger, connect)
	if err != nil {
		return nil, err
	}
	g.stores = recStores
	if connect {
		if g.telemetry, err = buildTelemetry(ctx, cfg); err != nil {
			g.Close()
			return nil, err
		}
	}
	if connect {
		if g.approvals, err = buildApprovals(ctx, cfg, logger); err != nil {
			g.Close()
			return nil, err
		}
	}
	var stores firstCredential
	if static != nil {
		stores = append(stores, static)
	}
	// The dynamic store comes last: it connects (and ends the leases this
	// gateway left behind), and nothing after it can fail and leave it
	// open.
	if cfg.Credentials.Dynamic != nil && connect {
		dc := dynamicStoreConfig(cfg, leases, logger)
		d, err := credstore.NewDynamic(ctx, dc)
		if err != nil {
			g.Close()
			// credstore's errors never quote the connection string.
			return nil, cfg.problemAt("credentials.dynamic", "%w", err)
		}
		g.dynamic, g.gatewayID = d, dc.GatewayID
		stores = append(stores, d)
	}
	var creds credstore.Store = stores
	if len(stores) == 1 {
		creds = stores[0]
	}
	masks, err := buildMasks(cfg)
	if err != nil {
		g.Close()
		return nil, cfg.problemAt("policy.masks", "%w", err)
	}
	g.proxy = &proxy.Proxy{
		Masks:                            masks,
		Addr:                             string(cfg.Listen),
		Authenticator:                    authenticator,
		Credentials:                      creds,
		Policy:                           buildPolicy(cfg),
		Recorder:                         recorder,
		Upstream:                         upstream,
		TLS:                              clientTLS,
		AllowPlaintext:                   cfg.TLS != nil && bool(cfg.TLS.AllowPlaintext),
		AllowCleartextPasswordWithoutTLS: bool(cfg.Auth.AllowCleartextWithoutTLS),
		Limits:                           buildLimits(cfg),
		Logger:                           logger,
	}
	if g.approvals != nil {
		g.proxy.Approver = g.approvals
	}
	g.proxy.TracerProvider, g.proxy.MeterProvider = g.telemetry.providers()
	for _, name := range cfg.StartupParameters {
		g.proxy.StartupParameters = append(g.proxy.StartupParameters, string(name))
	}
	// Saved revocations are in force before the first client connects.
	if g.revocations, err = loadRevocations(cfg, g); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// telemetryFlushTimeout bounds the last export of traces and metrics when
// the gateway closes.
const telemetryFlushTimeout = 5 * time.Second

// Close releases what the gateway holds besides the proxy: it closes the
// approval store (a request still held is withdrawn), stops the dynamic
// store's sweeper, ends the leases it still holds and closes its
// admin connections; then it closes the recording stores (a session still
// open stays unsealed until the journal is opened again), and flushes and
// stops the telemetry exporters. Call it after the proxy's Shutdown or
// Close, once no session needs a credential or records an event.
func (g *gateway) Close() error {
	var errs []error
	if g.approvals != nil {
		if err := g.approvals.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the approval store: %w", err))
		}
		g.approvals = nil
	}
	if g.dynamic != nil {
		if err := g.dynamic.Close(); err != nil {
			errs = append(errs, fmt.Errorf("ending the remaining leases: %w", err))
		}
	}
	if err := closeStores(g.stores); err != nil {
		errs = append(errs, fmt.Errorf("closing the recording stores: %w", err))
	}
	g.stores = nil
	ctx, cancel := context.WithTimeout(context.Background(), telemetryFlushTimeout)
	defer cancel()
	if err := g.telemetry.shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("flushing the telemetry: %w", err))
	}
	g.telemetry = nil
	return errors.Join(errs...)
}

// firstCredential is a credential store that asks its stores in order: the
// first that does not answer ErrNoCredential decides (with a credential or
// an error). The gateway puts credentials.static before
// credentials.dynamic, so a fixed credential is never shadowed by a
// template and an identity only gets a just-in-time role when no static
// entry is for it.
type firstCredential []credstore.Store

// Credential implements credstore.Store.
func (f firstCredential) Credential(ctx context.Context, info *session.Info) (credstore.Credential, error) {
	for _, s := range f {
		c, err := s.Credential(ctx, info)
		if errors.Is(err, credstore.ErrNoCredential) {
			continue
		}
		return c, err
	}
	return credstore.Credential{}, credstore.ErrNoCredential
}

// dynamicStoreConfig maps credentials.dynamic onto credstore's
// configuration, with the defaults filled in (credstore's: TTL 1h, prefix
// pgw_, connection limit 1, the host name, a sweep every minute); leases
// is nil for the table in the admin database.
func dynamicStoreConfig(cfg *config, leases credstore.LeaseStore, logger *slog.Logger) credstore.DynamicConfig {
	d := cfg.Credentials.Dynamic
	dc := credstore.DynamicConfig{
		AdminDSN:                 d.AdminDSN.Secret,
		AllowPrivilegedTemplates: bool(d.AllowPrivilegedTemplates),
		TTL:                      credstore.DefaultLeaseTTL,
		Prefix:                   cmp.Or(string(d.Prefix), credstore.DefaultRolePrefix),
		ConnectionLimit:          cmp.Or(int(d.ConnectionLimit), 1),
		GatewayID:                string(d.GatewayID),
		Leases:                   leases,
		SweepInterval:            cmp.Or(time.Duration(d.SweepInterval), credstore.DefaultSweepInterval),
		Logger:                   logger,
	}
	if d.TTL != nil {
		dc.TTL = time.Duration(*d.TTL)
	}
	if dc.GatewayID == "" {
		// credstore's default too; filled in here so the logs show it.
		dc.GatewayID, _ = os.Hostname()
	}
	for _, t := range d.Templates {
		dc.Templates = append(dc.Templates, credstore.Template{
			Groups: stringsOf(t.Groups), Subjects: stringsOf(t.Subjects), Roles: stringsOf(t.Roles)})
	}
	return dc
}

// buildLeaseStore returns the lease file store of
// credentials.dynamic.lease_store, after checking that its directory
// exists; nil (the table in the admin database) without one.
func buildLeaseStore(cfg *config) (credstore.LeaseStore, error) {
	d := cfg.Credentials.Dynamic
	if d == nil || d.LeaseStore == nil {
		return nil, nil
	}
	path := string(d.LeaseStore.File)
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return nil, cfg.problemAt("credentials.dynamic.lease_store.file", "the file's directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, cfg.problemAt("credentials.dynamic.lease_store.file", "%s is not a directory", filepath.Dir(path))
	}
	return credstore.NewFileLeases(path), nil
}

// buildAuthenticator composes the authenticators of the auth section, in
// the order a client's offer is tried: a verified client certificate, a
// static user (by name), an OIDC token, a SAML assertion. Alone, static
// users keep their protection against user enumeration. Passwords become
// verifiers here and are not kept. It also returns the static and OIDC
// authenticators alone, which check the admin API's approvers.
func buildAuthenticator(cfg *config) (auth.Authenticator, approverAuth, error) {
	var approvers approverAuth
	var members []auth.Authenticator
	if cc := cfg.Auth.ClientCerts; cc != nil {
		a, err := auth.NewClientCert(auth.ClientCertConfig{Subject: string(cc.Subject),
			TrustDomains: stringsOf(cc.TrustDomains), GroupsFromOU: bool(cc.GroupsFromOU)})
		if err != nil {
			return nil, approverAuth{}, cfg.problemAt("auth.client_certs", "%w", err)
		}
		members = append(members, a)
	}
	if len(cfg.Auth.Users) > 0 {
		static, err := buildStatic(cfg)
		if err != nil {
			return nil, approverAuth{}, err
		}
		approvers.static = static
		if cfg.Auth.OIDC == nil && cfg.Auth.SAML == nil && cfg.Auth.ClientCerts == nil {
			return static, approvers, nil
		}
		members = append(members, auth.When(func(r *auth.Request) bool { return static.Knows(r.User) }, static))
	}
	if o := cfg.Auth.OIDC; o != nil {
		oc := auth.OIDCConfig{
			Issuer: string(o.Issuer), Audience: string(o.Audience), Algorithms: stringsOf(o.Algorithms),
			ClockSkew: time.Duration(o.ClockSkew), ExpiryGrace: time.Duration(o.ExpiryGrace),
			MaxTokenSize: int(o.MaxTokenSize), OAuthBearer: string(o.OAuthBearer),
			Claims: auth.ClaimNames{Subject: string(o.Claims.Subject), Name: string(o.Claims.Name),
				Email: string(o.Claims.Email), Groups: string(o.Claims.Groups)},
		}
		if in := o.Introspection; in != nil {
			oc.Introspection = &auth.Introspection{URL: string(in.URL), ClientID: string(in.ClientID),
				ClientSecret: in.ClientSecret.Secret, Interval: time.Duration(in.Interval)}
		}
		a, err := auth.NewOIDC(oc)
		if err != nil {
			return nil, approverAuth{}, cfg.problemAt("auth.oidc", "%w", err)
		}
		approvers.oidc = a
		members = append(members, a)
	}
	if s := cfg.Auth.SAML; s != nil {
		meta, err := os.ReadFile(string(s.IdPMetadata))
		if err != nil {
			return nil, approverAuth{}, cfg.problemAt("auth.saml.idp_metadata", "%w", err)
		}
		a, err := auth.NewSAML(auth.SAMLConfig{IdPMetadata: meta, Audience: string(s.Audience), Recipient: string(s.Recipient),
			SubjectAttribute: string(s.Attributes.Subject), NameAttribute: string(s.Attributes.Name),
			EmailAttribute: string(s.Attributes.Email), GroupsAttribute: string(s.Attributes.Groups),
			ClockSkew: time.Duration(s.ClockSkew)})
		if err != nil {
			return nil, approverAuth{}, cfg.problemAt("auth.saml", "%w", err)
		}
		members = append(members, a)
	}
	if len(members) == 1 {
		return members[0], approvers, nil
	}
	return auth.Chain(members...), approvers, nil
}

// buildStatic returns the static SCRAM-SHA-256 authenticator for
// auth.users.
func buildStatic(cfg *config) (*auth.Static, error) {
	users := make([]auth.User, 0, len(cfg.Auth.Users))
	for _, u := range cfg.Auth.Users {
		users = append(users, auth.User{
			Name:     string(u.Name),
			Password: u.Password.Secret,
			Verifier: string(u.SCRAM),
			Groups:   stringsOf(u.Groups),
		})
	}
	a, err := auth.NewStatic(users...)
	if err != nil {
		// auth's errors name the user, never the password or verifier.
		return nil, cfg.problemAt("auth.users", "%w", err)
	}
	return a, nil
}

// buildCredentials returns the static credential store for
// credentials.static; nil without entries.
func buildCredentials(cfg *config) (*credstore.Static, error) {
	if len(cfg.Credentials.Static) == 0 {
		return nil, nil
	}
	entries := make([]credstore.StaticEntry, 0, len(cfg.Credentials.Static))
	for _, e := range cfg.Credentials.Static {
		entries = append(entries, credstore.StaticEntry{
			User:     string(e.User),
			Password: e.Password.Secret,
			Groups:   stringsOf(e.Groups),
			Subjects: stringsOf(e.Subjects),
		})
	}
	s, err := credstore.NewStatic(entries...)
	if err != nil {
		return nil, cfg.problemAt("credentials.static", "%w", err)
	}
	return s, nil
}

// buildPolicy returns the policy of the policy section (validated
// already); a missing section refuses every statement.
func buildPolicy(cfg *config) policy.Policy {
	if cfg.Policy == nil {
		return policy.BlockAll("the gateway has no policy section, so it refuses every statement")
	}
	p, err := cfg.Policy.Policy()
	if err != nil {
		return policy.BlockAll("the gateway's policy section is invalid, so it refuses every statement")
	}
	return p
}

// buildUpstream returns the upstream server settings: TLS per upstream.tls
// (disable: none; require: encrypted without verification; verify-full:
// the certificate is checked against upstream.ca, or the system's roots,
// and the host name of upstream.address).
func buildUpstream(cfg *config) (proxy.Upstream, error) {
	u := proxy.Upstream{
		Address:        string(cfg.Upstream.Address),
		ConnectTimeout: time.Duration(cfg.Upstream.ConnectTimeout),
	}
	switch cfg.Upstream.TLS {
	case upstreamTLSDisable:
	case upstreamTLSRequire:
		u.TLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	case upstreamTLSVerifyFull:
		host, _, err := net.SplitHostPort(u.Address)
		if err != nil {
			return u, cfg.problemAt("upstream.address", "%w", err)
		}
		u.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if cfg.Upstream.CA != "" {
			pool, err := loadCertPool(string(cfg.Upstream.CA))
			if err != nil {
				return u, cfg.problemAt("upstream.ca", "%w", err)
			}
			u.TLS.RootCAs = pool
		}
	default:
		return u, cfg.problemAt("upstream.tls", "unknown mode")
	}
	return u, nil
}

// loadCertPool reads a PEM bundle of CA certificates.
func loadCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("no PEM certificate found in %s", path)
	}
	return pool, nil
}

// buildClientTLS returns the client-facing TLS configuration, nil when the
// tls section is absent.
func buildClientTLS(cfg *config) (*tls.Config, error) {
	if cfg.TLS == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(string(cfg.TLS.Cert), string(cfg.TLS.Key))
	if err != nil {
		return nil, cfg.problemAt("tls", "loading the certificate and key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cc := cfg.Auth.ClientCerts; cc != nil {
		pool, err := loadCertPool(string(cc.CA))
		if err != nil {
			return nil, cfg.problemAt("auth.client_certs.ca", "%w", err)
		}
		// A certificate is asked for and verified when given; clients
		// without one go on to the other methods.
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// buildLimits maps limits onto proxy.Limits; zero keeps the proxy's
// defaults.
func buildLimits(cfg *config) proxy.Limits {
	l := cfg.Limits
	return proxy.Limits{
		MaxSessions:            int(l.MaxSessions),
		MaxMessageSize:         int(l.MaxMessageSize),
		MaxUpstreamMessageSize: int(l.MaxUpstreamMessageSize),
		StartupTimeout:         time.Duration(l.StartupTimeout),
		AuthTimeout:            time.Duration(l.AuthTimeout),
		IdleTimeout:            time.Duration(l.IdleTimeout),
	}
}

// stringsOf converts decoded strings to plain ones.
func stringsOf(in []envString) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}
