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

// buildAuthenticator composes the authenticators of the auth section, in
// the order a client's offer is tried: a verified client certificate, a
// static user (by name), an OIDC token, a SAML assertion. Alone, static
// users keep their protection against user enumeration. Passwords become
// verifiers here and are not kept.
func buildAuthenticator(cfg *config) (auth.Authenticator, error) {
	var members []auth.Authenticator
	if cc := cfg.Auth.ClientCerts; cc != nil {
		a, err := auth.NewClientCert(auth.ClientCertConfig{Subject: string(cc.Subject),
			TrustDomains: stringsOf(cc.TrustDomains), GroupsFromOU: bool(cc.GroupsFromOU)})
		if err != nil {
			return nil, cfg.problemAt("auth.client_certs", "%w", err)
		}
		members = append(members, a)
	}
	if len(cfg.Auth.Users) > 0 {
		static, err := buildStatic(cfg)
		if err != nil {
			return nil, err
		}
		if cfg.Auth.OIDC == nil && cfg.Auth.SAML == nil && cfg.Auth.ClientCerts == nil {
			return static, nil
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
			return nil, cfg.problemAt("auth.oidc", "%w", err)
		}
		members = append(members, a)
	}
	if s := cfg.Auth.SAML; s != nil {
		meta, err := os.ReadFile(string(s.IdPMetadata))
		if err != nil {
			return nil, cfg.problemAt("auth.saml.idp_metadata", "%w", err)
		}
		a, err := auth.NewSAML(auth.SAMLConfig{IdPMetadata: meta, Audience: string(s.Audience), Recipient: string(s.Recipient),
			SubjectAttribute: string(s.Attributes.Subject), NameAttribute: string(s.Attributes.Name),
			EmailAttribute: string(s.Attributes.Email), GroupsAttribute: string(s.Attributes.Groups),
			ClockSkew: time.Duration(s.ClockSkew)})
		if err != nil {
			return nil, cfg.problemAt("auth.saml", "%w", err)
		}
		members = append(members, a)
	}
	if len(members) == 1 {
		return members[0], nil
	}
	return auth.Chain(members...), nil
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
