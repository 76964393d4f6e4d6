package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/internal/testcert"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
)

// writeCerts writes ca.crt, server.crt and server.key into dir.
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	ca, err := testcert.NewAuthority("build test CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteCertFile(filepath.Join(dir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("localhost", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")); err != nil {
		t.Fatal(err)
	}
}

// buildFrom writes text as a config file next to fresh certificates, loads
// it and builds the proxy.
func buildFrom(t *testing.T, text string) (*proxy.Proxy, error) {
	t.Helper()
	path := writeFile(t, text)
	writeCerts(t, filepath.Dir(path))
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	g, err := buildProxy(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return g.proxy, nil
}

func TestBuildProxy(t *testing.T) {
	p, err := buildFrom(t, `listen: 127.0.0.1:7432
tls: {cert: server.crt, key: server.key}
upstream:
  address: db.internal:5433
  tls: verify-full
  ca: ca.crt
  connect_timeout: 4s
auth:
  users:
    - {name: alice, password: alice-secret, groups: [analysts]}
credentials:
  static:
    - {user: app_ro, password: app-secret, groups: [analysts]}
policy: {default: block}
startup_parameters: [search_path]
limits:
  max_sessions: 7
  max_message_size: 1MiB
  max_upstream_message_size: 2MiB
  startup_timeout: 1s
  auth_timeout: 2s
  idle_timeout: 3s
`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr != "127.0.0.1:7432" {
		t.Errorf("Addr = %q", p.Addr)
	}
	if p.TLS == nil || len(p.TLS.Certificates) != 1 || p.TLS.MinVersion != tls.VersionTLS12 {
		t.Errorf("client TLS = %+v, want one certificate and TLS 1.2 at least", p.TLS)
	}
	if p.AllowPlaintext || p.AllowCleartextPasswordWithoutTLS {
		t.Errorf("AllowPlaintext = %v, AllowCleartextPasswordWithoutTLS = %v; want false",
			p.AllowPlaintext, p.AllowCleartextPasswordWithoutTLS)
	}
	u := p.Upstream
	if u.Address != "db.internal:5433" || u.ConnectTimeout != 4*time.Second {
		t.Errorf("Upstream = %+v", u)
	}
	if u.TLS == nil || u.TLS.InsecureSkipVerify || u.TLS.ServerName != "db.internal" ||
		u.TLS.RootCAs == nil || u.TLS.MinVersion != tls.VersionTLS12 {
		t.Errorf("upstream TLS = %+v, want verification of db.internal against ca.crt", u.TLS)
	}
	want := proxy.Limits{MaxSessions: 7, MaxMessageSize: 1 << 20, MaxUpstreamMessageSize: 2 << 20,
		StartupTimeout: time.Second, AuthTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second}
	if p.Limits != want {
		t.Errorf("Limits = %+v, want %+v", p.Limits, want)
	}
	if len(p.StartupParameters) != 1 || p.StartupParameters[0] != "search_path" {
		t.Errorf("StartupParameters = %q", p.StartupParameters)
	}
	if p.Authenticator == nil || p.Credentials == nil {
		t.Error("no authenticator or credential store")
	}
	d, err := p.Policy.Decide(context.Background(), &policy.Query{SQL: "select 1"})
	if err != nil || d.Verdict != policy.Block {
		t.Errorf("policy decision = %+v, %v; want block", d, err)
	}
}

func TestBuildUpstreamTLSModes(t *testing.T) {
	for mode, check := range map[string]func(*tls.Config) bool{
		"disable": func(c *tls.Config) bool { return c == nil },
		"require": func(c *tls.Config) bool { return c != nil && c.InsecureSkipVerify },
		"verify-full": func(c *tls.Config) bool {
			return c != nil && !c.InsecureSkipVerify && c.ServerName == "127.0.0.1" && c.RootCAs == nil
		},
	} {
		p, err := buildFrom(t, strings.Replace(minimal, "127.0.0.1:5432", "127.0.0.1:5432\n  tls: "+mode, 1))
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if !check(p.Upstream.TLS) {
			t.Errorf("%s: upstream TLS = %+v", mode, p.Upstream.TLS)
		}
	}
}

func TestBuildPolicyAllow(t *testing.T) {
	p, err := buildFrom(t, minimal)
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Policy.Decide(context.Background(), &policy.Query{SQL: "select 1"})
	if err != nil || d.Verdict != policy.Allow {
		t.Errorf("policy decision = %+v, %v; want allow", d, err)
	}
}

func TestBuildFileErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{
			name: "missing certificate",
			text: "tls:\n  cert: nope.crt\n  key: server.key\n" + minimal,
			want: []string{"line 1: tls: loading the certificate and key:", "nope.crt"},
		},
		{
			name: "key that does not match",
			text: "tls:\n  cert: ca.crt\n  key: server.key\n" + minimal,
			want: []string{"line 1: tls: loading the certificate and key:"},
		},
		{
			name: "CA bundle without certificates",
			text: strings.Replace(minimal, "127.0.0.1:5432", "127.0.0.1:5432\n  tls: verify-full\n  ca: server.key", 1),
			want: []string{"line 4: upstream.ca: no PEM certificate found in"},
		},
		{
			name: "missing CA bundle",
			text: strings.Replace(minimal, "127.0.0.1:5432", "127.0.0.1:5432\n  tls: verify-full\n  ca: missing.pem", 1),
			want: []string{"line 4: upstream.ca:", "missing.pem"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildFrom(t, tc.text)
			if err == nil {
				t.Fatal("buildProxy succeeded; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q: %v", w, err)
				}
			}
			if tc.name == "missing certificate" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error does not wrap fs.ErrNotExist: %v", err)
			}
			// The private key's contents never reach the message.
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error shows key material: %v", err)
			}
		})
	}
}

// TestBuildDoesNotLogPasswords logs the configuration's warnings and the
// configuration itself, builds the proxy, and checks no password shows.
func TestBuildDoesNotLogPasswords(t *testing.T) {
	path := writeFile(t, strings.Replace(minimal, "policy:\n  default: allow\n", "", 1))
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, w := range cfg.warnings {
		logger.Warn("config: "+w, "config", cfg)
	}
	if _, err := buildProxy(t.Context(), cfg, logger); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("logs show a password:\n%s", logs.String())
	}
}
