package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/pgwarden/pgwarden/policy"
)

// config is the gateway's YAML configuration file. The keys (the yaml
// tags below) are a contract that operators script against: add keys, never
// rename or remove them. See the example in README.md.
//
// A config returned by loadConfig is checked and complete: defaults are
// filled in and relative paths are absolute.
type config struct {
	// Listen is the TCP address clients connect to. Default 127.0.0.1:6432.
	Listen envString `yaml:"listen"`
	// TLS, when present, is offered to clients.
	TLS *tlsConfig `yaml:"tls"`
	// Upstream is the PostgreSQL server.
	Upstream upstreamConfig `yaml:"upstream"`
	// Auth says who may connect.
	Auth authConfig `yaml:"auth"`
	// Credentials are what the gateway logs in to the server with.
	Credentials credentialsConfig `yaml:"credentials"`
	// Policy decides about statements: a policy.RuleSet. Absent: every
	// statement is refused.
	Policy *policyConfig `yaml:"policy"`
	// StartupParameters are startup parameters clients may set in addition
	// to proxy.DefaultStartupParameters.
	StartupParameters []envString `yaml:"startup_parameters"`
	// Limits bound what clients can make the gateway do.
	Limits limitsConfig `yaml:"limits"`
	// Log configures the gateway's own logs.
	Log logConfig `yaml:"log"`
	// Admin, when present, serves the admin HTTP API (sessions,
	// revocations, the access review) next to the proxy.
	Admin *adminConfig `yaml:"admin"`
	// Recording says where the sessions' events are recorded. Absent:
	// nowhere (session.Discard), with a warning.
	Recording *recordingConfig `yaml:"recording"`
	// Telemetry exports traces and metrics (OpenTelemetry). Absent: none.
	Telemetry *telemetryConfig `yaml:"telemetry"`
	// Approvals keeps the requests of the policy rules with verdict
	// approve, which people decide through the admin API. Absent: such
	// statements are refused.
	Approvals *approvalsConfig `yaml:"approvals"`

	// file is the configuration file's path, as given.
	file string
	// loc finds the line of a key path, for error messages.
	loc *locator
	// warnings are things that are allowed but probably not intended.
	warnings []string
}

// tlsConfig is the client-facing TLS section.
type tlsConfig struct {
	// Cert and Key are PEM files: the server certificate (chain) and its
	// private key. Relative paths are relative to the config file.
	Cert envString `yaml:"cert"`
	Key  envString `yaml:"key"`
	// AllowPlaintext lets clients connect without TLS. Default false.
	AllowPlaintext envBool `yaml:"allow_plaintext"`
}

// Upstream TLS modes.
const (
	upstreamTLSDisable    = "disable"
	upstreamTLSRequire    = "require"
	upstreamTLSVerifyFull = "verify-full"
)

// upstreamConfig is the PostgreSQL server section.
type upstreamConfig struct {
	// Address is host:port, or the path of the server's Unix socket
	// (/dir/.s.PGSQL.5432). Required.
	Address envString `yaml:"address"`
	// TLS is disable, require (encrypted, server not verified) or
	// verify-full (encrypted, certificate checked against CA and the host
	// name of Address). Default: disable for a Unix socket or a loopback
	// address (localhost, 127.0.0.0/8, ::1), verify-full otherwise.
	TLS envString `yaml:"tls"`
	// CA is a PEM bundle of the authorities that verify the server with
	// verify-full; empty means the system's roots. Relative to the config
	// file.
	CA envString `yaml:"ca"`
	// ConnectTimeout bounds connecting and logging in. Default 10s.
	ConnectTimeout envDuration `yaml:"connect_timeout"`
}

// authConfig is the client authentication section. The methods present
// are tried in this order, by what the client offers: a verified client
// certificate, a static user (by name), an OIDC token, a SAML assertion.
type authConfig struct {
	// Users are the static users, authenticated with SCRAM-SHA-256.
	Users []userConfig `yaml:"users"`
	// OIDC accepts OAuth 2.0 / OpenID Connect tokens (as the password, or
	// with SASL OAUTHBEARER).
	OIDC *oidcConfig `yaml:"oidc"`
	// ClientCerts accepts client certificates verified against a CA.
	ClientCerts *clientCertsConfig `yaml:"client_certs"`
	// SAML accepts signed SAML 2.0 assertions (base64, as the password).
	SAML *samlConfig `yaml:"saml"`
	// AllowCleartextWithoutTLS lets an authenticator ask for a cleartext
	// secret over a connection without TLS. Default false.
	AllowCleartextWithoutTLS envBool `yaml:"allow_cleartext_without_tls"`
}

// userConfig is one static user. Give either Password or SCRAM.
type userConfig struct {
	Name envString `yaml:"name"`
	// Password is turned into a SCRAM verifier when the proxy is built.
	Password envSecret `yaml:"password"`
	// SCRAM is a SCRAM-SHA-256 verifier (see `pgwarden hash-password`).
	SCRAM  envString   `yaml:"scram"`
	Groups []envString `yaml:"groups"`
}

// oidcConfig maps onto auth.OIDCConfig.
type oidcConfig struct {
	// Issuer is the IdP's issuer URL (https, or http on loopback). Required.
	Issuer envString `yaml:"issuer"`
	// Audience is the name the IdP gives this gateway. Required.
	Audience envString `yaml:"audience"`
	// Algorithms are the accepted signature algorithms; default RS*, PS*,
	// ES* and EdDSA. none and HS* are refused.
	Algorithms []envString `yaml:"algorithms"`
	// ClockSkew tolerates clocks that disagree. Default 30s, at most 5m.
	ClockSkew envDuration `yaml:"clock_skew"`
	// ExpiryGrace lets a session outlive its token. Default 0: the session
	// ends when the token expires.
	ExpiryGrace envDuration `yaml:"expiry_grace"`
	// MaxTokenSize is the longest token accepted. Default 16KiB.
	MaxTokenSize envSize `yaml:"max_token_size"`
	// OAuthBearer is auto (default: when the client asks with
	// pgwarden.auth=oauthbearer), always or never.
	OAuthBearer envString `yaml:"oauth_bearer"`
	// Claims names the claims that hold the identity.
	Claims claimsConfig `yaml:"claims"`
	// Introspection checks tokens with the IdP (RFC 7662) at login and
	// periodically.
	Introspection *introspectionConfig `yaml:"introspection"`
}

// claimsConfig maps onto auth.ClaimNames (dotted paths reach nested claims).
type claimsConfig struct {
	Subject envString `yaml:"subject"` // default sub
	Name    envString `yaml:"name"`    // default name
	Email   envString `yaml:"email"`   // default email
	Groups  envString `yaml:"groups"`  // default groups
}

// introspectionConfig maps onto auth.Introspection.
type introspectionConfig struct {
	// URL defaults to the endpoint the issuer's discovery document names.
	URL          envString   `yaml:"url"`
	ClientID     envString   `yaml:"client_id"`
	ClientSecret envSecret   `yaml:"client_secret"`
	Interval     envDuration `yaml:"interval"` // default 1m
}

// clientCertsConfig maps onto auth.ClientCertConfig; it needs the tls
// section.
type clientCertsConfig struct {
	// CA is a PEM bundle of the authorities that issue client
	// certificates. Required. Relative to the config file.
	CA envString `yaml:"ca"`
	// Subject is "" (SPIFFE ID, else common name), spiffe or cn.
	Subject envString `yaml:"subject"`
	// TrustDomains limit the accepted SPIFFE trust domains.
	TrustDomains []envString `yaml:"trust_domains"`
	// GroupsFromOU makes the certificate's OUs the identity's groups.
	GroupsFromOU envBool `yaml:"groups_from_ou"`
}

// samlConfig maps onto auth.SAMLConfig.
type samlConfig struct {
	// IdPMetadata is the IdP's metadata XML file. Required. Relative to the
	// config file.
	IdPMetadata envString `yaml:"idp_metadata"`
	// Audience is this gateway's SAML entity id. Required.
	Audience envString `yaml:"audience"`
	// Recipient is the assertion's expected recipient; default Audience.
	Recipient envString `yaml:"recipient"`
	// Attributes name the SAML attributes that hold the identity.
	Attributes claimsConfig `yaml:"attributes"`
	// ClockSkew default 1m.
	ClockSkew envDuration `yaml:"clock_skew"`
}

// credentialsConfig is the database credential section. With both static
// and dynamic credentials, the static entries are tried first and the
// dynamic templates only for identities no static entry matches.
type credentialsConfig struct {
	// Static entries: a session gets the first whose groups or subjects
	// match its identity; one with neither matches everybody.
	Static []credentialConfig `yaml:"static"`
	// Dynamic issues a just-in-time role per session (credstore.Dynamic).
	Dynamic *dynamicConfig `yaml:"dynamic"`
}

// dynamicConfig maps onto credstore.DynamicConfig.
type dynamicConfig struct {
	// AdminDSN is the connection string (libpq keyword/value or URL) of a
	// role with CREATEROLE on the upstream server. Required; a secret.
	AdminDSN envSecret `yaml:"admin_dsn"`
	// Templates map identities to the roles a session's role is made a
	// member of; the first that matches decides. Required.
	Templates []templateConfig `yaml:"templates"`
	// TTL is how long a lease lives at most. Absent: 1h; at least 1s.
	TTL *envDuration `yaml:"ttl"`
	// Prefix starts every role name. Default pgw_.
	Prefix envString `yaml:"prefix"`
	// ConnectionLimit is each role's CONNECTION LIMIT. Default (and 0) 1.
	ConnectionLimit envInt `yaml:"connection_limit"`
	// GatewayID names this gateway in the leases. Default: the host name.
	GatewayID envString `yaml:"gateway_id"`
	// LeaseStore says where leases are kept. Absent: the table
	// pgwarden_leases in the admin connection's database.
	LeaseStore *leaseStoreConfig `yaml:"lease_store"`
	// AllowPrivilegedTemplates lets template roles escalate (superuser,
	// CREATEROLE, ...). Default false; true is warned about.
	AllowPrivilegedTemplates envBool `yaml:"allow_privileged_templates"`
	// SweepInterval is how often expired leases are ended. Default 1m.
	SweepInterval envDuration `yaml:"sweep_interval"`
}

// templateConfig maps onto credstore.Template.
type templateConfig struct {
	Groups   []envString `yaml:"groups"`
	Subjects []envString `yaml:"subjects"`
	// Roles are the template roles (at least one).
	Roles []envString `yaml:"roles"`
}

// leaseStoreConfig chooses the lease store.
type leaseStoreConfig struct {
	// File is a JSON file (credstore.FileLeases), relative to the config
	// file; its directory must exist. Required in the section.
	File envString `yaml:"file"`
}

// adminConfig is the admin HTTP API section.
type adminConfig struct {
	// Listen is the API's TCP address. Default 127.0.0.1:6480.
	Listen envString `yaml:"listen"`
	// Token is the bearer token every request must carry. Required; at
	// least minAdminToken characters.
	Token envSecret `yaml:"token"`
	// RevocationsFile keeps the revocations made through the API (JSON),
	// so that they survive a restart; relative to the config file, its
	// directory must exist. Absent: they are kept in memory only.
	RevocationsFile envString `yaml:"revocations_file"`
}

// Values of recording.fail.
const (
	// recordingFailClosed: an event that cannot be recorded ends its
	// session (the statement is not forwarded). The default.
	recordingFailClosed = "closed"
	// recordingFailBestEffort: the session goes on unrecorded, and the
	// failure is logged.
	recordingFailBestEffort = "best_effort"
)

// recordingConfig is the recording section: the stores that keep every
// session's events, each session as a ledger (a keyed hash chain, see
// session.VerifyLedger). Give dir, postgres or both (then every event is
// recorded to both, and a failure of either counts).
type recordingConfig struct {
	// Dir is the file store's directory (session/journal); relative to
	// the config file. Its parent directory must exist.
	Dir envString `yaml:"dir"`
	// Postgres is the connection string (libpq keyword/value or URL) of
	// the PostgreSQL store (session/pgstore); a secret.
	Postgres envSecret `yaml:"postgres"`
	// Key is the ledger's MAC key: required, at least minRecordingKey
	// characters. The same key verifies the recordings later: keep it.
	Key envSecret `yaml:"key"`
	// Fail is closed (default) or best_effort: see recordingFailClosed.
	Fail envString `yaml:"fail"`
}

// telemetryConfig is the telemetry section: OpenTelemetry traces and
// metrics of the proxy, under the service name "pgwarden".
type telemetryConfig struct {
	// OTLP, when present, exports traces and metrics with OTLP/HTTP.
	OTLP *otlpConfig `yaml:"otlp"`
	// Prometheus, when present and enabled, serves the metrics at
	// /metrics on the admin listener.
	Prometheus *prometheusConfig `yaml:"prometheus"`
}

// otlpConfig is telemetry.otlp: an OTLP/HTTP collector.
type otlpConfig struct {
	// Endpoint is the collector's host:port (traces go to /v1/traces,
	// metrics to /v1/metrics). Required.
	Endpoint envString `yaml:"endpoint"`
	// Insecure sends plain HTTP instead of HTTPS. Default false.
	Insecure envBool `yaml:"insecure"`
}

// prometheusConfig is telemetry.prometheus: the metrics in the
// Prometheus text format on the admin listener (it needs the admin
// section).
type prometheusConfig struct {
	// Enabled serves GET /metrics. Default false.
	Enabled envBool `yaml:"enabled"`
	// RequireToken makes /metrics ask for the admin token like the rest
	// of the admin API. Absent: true; false lets a scraper in without it.
	RequireToken *envBool `yaml:"require_token"`
}

// requireToken reports whether /metrics needs the admin token.
func (p *prometheusConfig) requireToken() bool {
	return p.RequireToken == nil || bool(*p.RequireToken)
}

// prometheusEnabled reports whether /metrics is served.
func (c *config) prometheusEnabled() bool {
	return c.Telemetry != nil && c.Telemetry.Prometheus != nil && bool(c.Telemetry.Prometheus.Enabled)
}

// Values of approvals.store.
const (
	approvalsMemory   = "memory"
	approvalsPostgres = "postgres"
)

// approvalsConfig is the approvals section: where the approval requests
// are kept (policy/approval), and the webhook that hears of them.
type approvalsConfig struct {
	// Store is memory (the default without postgres: requests live in
	// this process) or postgres (the default with postgres).
	Store envString `yaml:"store"`
	// Postgres is the connection string (libpq keyword/value or URL) of
	// the database that keeps the requests, shared by every gateway that
	// names it; a secret.
	Postgres envSecret `yaml:"postgres"`
	// Table is the requests table ("name" or "schema.name"); grants go in
	// Table + "_grants". Default pgwarden_approvals.
	Table envString `yaml:"table"`
	// Webhook, when present, is told of every request filed, decided or
	// withdrawn by this gateway.
	Webhook *webhookConfig `yaml:"webhook"`
}

// webhookConfig is approvals.webhook.
type webhookConfig struct {
	// URL receives a POST with the approval record as JSON: https (http
	// only on loopback). A secret: webhook URLs often carry a token.
	URL envSecret `yaml:"url"`
	// Headers are sent with every POST (such as Authorization); their
	// values are secrets.
	Headers map[string]envSecret `yaml:"headers"`
	// Timeout bounds one POST. Default 5s.
	Timeout envDuration `yaml:"timeout"`
}

// credentialConfig is one static database credential.
type credentialConfig struct {
	User     envString   `yaml:"user"`
	Password envSecret   `yaml:"password"`
	Groups   []envString `yaml:"groups"`
	Subjects []envString `yaml:"subjects"`
}

// limitsConfig maps onto proxy.Limits. Zero or absent means the proxy's
// default.
type limitsConfig struct {
	MaxSessions            envInt      `yaml:"max_sessions"`
	MaxMessageSize         envSize     `yaml:"max_message_size"`
	MaxUpstreamMessageSize envSize     `yaml:"max_upstream_message_size"`
	StartupTimeout         envDuration `yaml:"startup_timeout"`
	AuthTimeout            envDuration `yaml:"auth_timeout"`
	// IdleTimeout: zero means no idle timeout.
	IdleTimeout envDuration `yaml:"idle_timeout"`
}

// logConfig is the logging section.
type logConfig struct {
	// Level is debug, info (default), warn or error.
	Level envString `yaml:"level"`
	// Format is text (default) or json.
	Format envString `yaml:"format"`
}

// defaultListen is where the gateway listens when listen is not set.
const defaultListen = "127.0.0.1:6432"

// defaultAdminListen is where the admin API listens when admin.listen is
// not set.
const defaultAdminListen = "127.0.0.1:6480"

// loadConfig reads, decodes, checks and completes the configuration file
// at path. Its errors name the file, and, for problems in the file, the
// line and the key path; they never contain a secret.
func loadConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseConfig(data, path)
}

// parseConfig is loadConfig on data already read from file; relative paths
// in it are resolved against file's directory.
func parseConfig(data []byte, file string) (*config, error) {
	fail := func(ps ...problem) error { return &configError{File: file, Problems: ps} }

	// The document tree gives lines for the problems found later.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fail(newLocator(nil).decodeProblems(err)...)
	}
	loc := newLocator(&root)

	cfg := &config{file: file, loc: loc}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fail(loc.decodeProblems(err)...)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fail(problem{Line: next.Line, Err: errors.New("only one YAML document is allowed")})
	}

	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	if ps := cfg.validate(); len(ps) > 0 {
		return nil, fail(ps...)
	}
	cfg.complete(dir)
	return cfg, nil
}

// complete fills in defaults and makes file paths absolute. It runs after
// validate.
func (c *config) complete(dir string) {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	resolve := func(p *envString) {
		if *p != "" && !filepath.IsAbs(string(*p)) {
			*p = envString(filepath.Join(dir, string(*p)))
		}
	}
	if c.TLS != nil {
		resolve(&c.TLS.Cert)
		resolve(&c.TLS.Key)
	}
	resolve(&c.Upstream.CA)
	if c.Auth.ClientCerts != nil {
		resolve(&c.Auth.ClientCerts.CA)
	}
	if c.Auth.SAML != nil {
		resolve(&c.Auth.SAML.IdPMetadata)
	}
	if d := c.Credentials.Dynamic; d != nil && d.LeaseStore != nil {
		resolve(&d.LeaseStore.File)
	}
	if c.Admin != nil {
		if c.Admin.Listen == "" {
			c.Admin.Listen = defaultAdminListen
		}
		resolve(&c.Admin.RevocationsFile)
	}
	if a := c.Approvals; a != nil && a.Store == "" {
		a.Store = approvalsMemory
		if !a.Postgres.IsZero() {
			a.Store = approvalsPostgres
		}
	}
	if r := c.Recording; r != nil {
		resolve(&r.Dir)
		if r.Fail == "" {
			r.Fail = recordingFailClosed
		}
	}
	if c.Upstream.TLS == "" {
		c.Upstream.TLS = upstreamTLSVerifyFull
		if isLocalAddress(string(c.Upstream.Address)) {
			c.Upstream.TLS = upstreamTLSDisable
		}
	}
	if c.Policy == nil {
		c.Policy = &policyConfig{RuleSet: policy.RuleSet{Default: "block"}}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// problemAt returns an error about the key path p in the file, for checks
// made after loading (such as reading the files the config names).
func (c *config) problemAt(p keyPath, format string, args ...any) error {
	return &configError{File: c.file, Problems: []problem{c.loc.problemAt(p, format, args...)}}
}
