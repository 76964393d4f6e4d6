package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
)

// buildProxy turns a loaded configuration into a Proxy ready to serve. It
// reads the files the configuration names (certificates, keys, CA bundle);
// its errors name the key path and line of the setting at fault.
func buildProxy(cfg *config, logger *slog.Logger) (*proxy.Proxy, error) {
	authenticator, err := buildAuthenticator(cfg)
	if err != nil {
		return nil, err
	}
	creds, err := buildCredentials(cfg)
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
	p := &proxy.Proxy{
		Addr:                             string(cfg.Listen),
		Authenticator:                    authenticator,
		Credentials:                      creds,
		Policy:                           buildPolicy(cfg),
		Upstream:                         upstream,
		TLS:                              clientTLS,
		AllowPlaintext:                   cfg.TLS != nil && bool(cfg.TLS.AllowPlaintext),
		AllowCleartextPasswordWithoutTLS: bool(cfg.Auth.AllowCleartextWithoutTLS),
		Limits:                           buildLimits(cfg),
		Logger:                           logger,
	}
	for _, name := range cfg.StartupParameters {
		p.StartupParameters = append(p.StartupParameters, string(name))
	}
	return p, nil
}

// buildAuthenticator returns the static SCRAM-SHA-256 authenticator for
// auth.users; passwords become verifiers here and are not kept.
func buildAuthenticator(cfg *config) (*auth.Static, error) {
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
// credentials.static.
func buildCredentials(cfg *config) (*credstore.Static, error) {
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
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
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
