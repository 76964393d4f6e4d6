package main

import (
	"github.com/pgwarden/pgwarden/policy"

	"errors"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pgwarden/pgwarden/auth"
)

// validate checks the decoded configuration and returns every problem it
// finds, each with its key path and line. It also records warnings for
// settings that are allowed but probably unintended. Messages never quote
// a value from the file: a value in the wrong place may be a password, and
// the line and key path are enough to find it.
func (c *config) validate() []problem {
	v := &validator{loc: c.loc}
	c.validateListen(v)
	c.validateTLS(v)
	c.validateUpstream(v)
	c.validateAuth(v)
	c.validateCredentials(v)
	c.validatePolicy(v)
	c.validateStartupParameters(v)
	c.validateLimits(v)
	c.validateLog(v)
	c.validateAdmin(v)
	c.validateRecording(v)
	c.validateTelemetry(v)
	c.validateApprovals(v)
	c.warnings = v.warnings
	return v.problems
}

// validator collects problems and warnings.
type validator struct {
	loc      *locator
	problems []problem
	warnings []string
}

// fail records a problem at p.
func (v *validator) fail(p keyPath, format string, args ...any) {
	v.problems = append(v.problems, v.loc.problemAt(p, format, args...))
}

// warn records a warning about p.
func (v *validator) warn(p keyPath, format string, args ...any) {
	v.warnings = append(v.warnings, v.loc.problemAt(p, format, args...).String())
}

func (c *config) validateListen(v *validator) {
	if c.Listen == "" {
		return
	}
	if err := checkHostPort(string(c.Listen), true); err != nil {
		v.fail("listen", "%w", err)
		return
	}
	if c.TLS == nil && !isLocalAddress(string(c.Listen)) {
		v.warn("listen", "clients connect from the network without TLS (no tls section); passwords are safe with SCRAM, statements and results are not")
	}
}

func (c *config) validateTLS(v *validator) {
	if c.TLS == nil {
		return
	}
	if c.TLS.Cert == "" {
		v.fail("tls.cert", "is required when the tls section is present")
	}
	if c.TLS.Key == "" {
		v.fail("tls.key", "is required when the tls section is present")
	}
	if c.TLS.AllowPlaintext {
		v.warn("tls.allow_plaintext", "clients may connect without TLS")
	}
}

func (c *config) validateUpstream(v *validator) {
	u := &c.Upstream
	addr := string(u.Address)
	switch {
	case addr == "":
		v.fail("upstream.address", "is required (host:port or /path/.s.PGSQL.5432)")
		return
	case strings.HasPrefix(addr, "/"):
		if _, err := socketPort(addr); err != nil {
			v.fail("upstream.address", "%w", err)
			return
		}
	default:
		if err := checkHostPort(addr, false); err != nil {
			v.fail("upstream.address", "%w", err)
			return
		}
	}
	mode := string(u.TLS)
	switch mode {
	case "":
		mode = upstreamTLSVerifyFull
		if isLocalAddress(addr) {
			mode = upstreamTLSDisable
		}
	case upstreamTLSDisable, upstreamTLSRequire, upstreamTLSVerifyFull:
	default:
		v.fail("upstream.tls", "must be disable, require or verify-full")
		return
	}
	if strings.HasPrefix(addr, "/") && mode != upstreamTLSDisable {
		v.fail("upstream.tls", "must be disable for a Unix socket (PostgreSQL has no TLS on Unix sockets)")
	}
	if u.CA != "" && mode != upstreamTLSVerifyFull {
		v.fail("upstream.ca", "is only used with upstream.tls: verify-full (upstream.tls is %s)", mode)
	}
	switch {
	case mode == upstreamTLSDisable && !isLocalAddress(addr):
		v.warn("upstream.tls", "is disable for a server that is not on this host: statements and results cross the network in clear")
	case mode == upstreamTLSRequire:
		v.warn("upstream.tls", "is require: the connection is encrypted but the server's identity is not checked")
	}
}

func (c *config) validateAuth(v *validator) {
	users := keyPath("auth.users")
	if len(c.Auth.Users) == 0 && c.Auth.OIDC == nil && c.Auth.ClientCerts == nil && c.Auth.SAML == nil {
		v.fail("auth", "no users, oidc, client_certs or saml are configured, so nobody could log in")
		return
	}
	c.validateOIDC(v)
	c.validateClientCerts(v)
	c.validateSAML(v)
	first := map[string]int{}
	for i, u := range c.Auth.Users {
		p := users.index(i)
		name := string(u.Name)
		switch {
		case name == "":
			v.fail(p.key("name"), "is required")
		case strings.ContainsRune(name, 0):
			v.fail(p.key("name"), "contains a NUL character")
		default:
			if j, dup := first[name]; dup {
				v.fail(p.key("name"), "this user is already listed at %s", users.index(j))
			} else {
				first[name] = i
			}
		}
		switch {
		case !u.Password.IsZero() && u.SCRAM != "":
			v.fail(p, "give either password or scram, not both")
		case u.Password.IsZero() && u.SCRAM == "":
			v.fail(p, "password or scram is required")
		case u.SCRAM != "":
			// NewStatic checks the verifier's format; its error does not
			// repeat the verifier.
			if _, err := auth.NewStatic(auth.User{Name: "check", Verifier: string(u.SCRAM)}); err != nil {
				v.fail(p.key("scram"), "is not a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>); make one with `pgwarden hash-password`")
			}
		}
		checkNames(v, p.key("groups"), u.Groups)
		if c.hasCredentials() && !c.credentialFor(name, u.Groups) {
			v.warn(p, "this user matches no credentials.static entry or credentials.dynamic template and will be refused")
		}
	}
}

// credentialMatches reports whether the static credential e is for the
// user name with groups, as credstore.Static decides.
func credentialMatches(e credentialConfig, name string, groups []envString) bool {
	if len(e.Groups) == 0 && len(e.Subjects) == 0 {
		return true
	}
	if slices.Contains(e.Subjects, envString(name)) {
		return true
	}
	return slices.ContainsFunc(e.Groups, func(g envString) bool { return slices.Contains(groups, g) })
}

// hasCredentials reports whether any database credential is configured.
func (c *config) hasCredentials() bool {
	return len(c.Credentials.Static) > 0 || c.Credentials.Dynamic != nil
}

// credentialFor reports whether a static entry or a dynamic template is
// for the user name with groups.
func (c *config) credentialFor(name string, groups []envString) bool {
	if slices.ContainsFunc(c.Credentials.Static, func(e credentialConfig) bool {
		return credentialMatches(e, name, groups)
	}) {
		return true
	}
	if d := c.Credentials.Dynamic; d != nil {
		return slices.ContainsFunc(d.Templates, func(t templateConfig) bool {
			return credentialMatches(credentialConfig{Groups: t.Groups, Subjects: t.Subjects}, name, groups)
		})
	}
	return false
}

func (c *config) validateCredentials(v *validator) {
	static := keyPath("credentials.static")
	if !c.hasCredentials() {
		v.fail(static, "no database credentials are configured (credentials.static or credentials.dynamic), so every client would be refused")
		return
	}
	c.validateDynamic(v)
	for i, e := range c.Credentials.Static {
		p := static.index(i)
		if e.User == "" {
			v.fail(p.key("user"), "is required")
		}
		if e.Password.IsZero() {
			v.fail(p.key("password"), "is required")
		}
		checkNames(v, p.key("groups"), e.Groups)
		checkNames(v, p.key("subjects"), e.Subjects)
		if c.Credentials.Dynamic != nil && len(e.Groups) == 0 && len(e.Subjects) == 0 {
			v.warn(p, "this entry matches every identity, so credentials.dynamic is never used (static entries are tried first)")
		}
	}
}

func (c *config) validatePolicy(v *validator) {
	if c.Policy == nil {
		v.warn("policy", "no policy section: every statement is refused (set policy.default to allow or block)")
		return
	}
	c.validateMasks(v)
	if _, err := c.Policy.Policy(); err != nil {
		if rse, ok := err.(*policy.RuleSetError); ok {
			for _, p := range rse.Problems {
				v.fail(keyPath("policy."+p.Path), "%s", p.Message)
			}
			return
		}
		v.fail("policy", "%v", err)
	}
}

func (c *config) validateStartupParameters(v *validator) {
	for i, name := range c.StartupParameters {
		p := keyPath("startup_parameters").index(i)
		switch n := strings.ToLower(string(name)); {
		case n == "":
			v.fail(p, "is empty")
		case n == "user" || n == "database" || n == "replication":
			v.fail(p, "user, database and replication cannot be allowed here: the gateway handles them itself")
		case strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789_.") != "":
			v.fail(p, "is not a setting name")
		}
	}
}

func (c *config) validateLimits(v *validator) {
	l := &c.Limits
	if l.MaxSessions < 0 {
		v.fail("limits.max_sessions", "must not be negative")
	}
	// A protocol message's length is a signed 32-bit integer.
	if l.MaxMessageSize > math.MaxInt32 {
		v.fail("limits.max_message_size", "must be at most 2GiB-1 (a message's length is a 32-bit integer)")
	}
	if l.MaxUpstreamMessageSize > math.MaxInt32 {
		v.fail("limits.max_upstream_message_size", "must be at most 2GiB-1 (a message's length is a 32-bit integer)")
	}
}

func (c *config) validateLog(v *validator) {
	switch l := string(c.Log.Level); l {
	case "", "debug", "info", "warn", "error":
	default:
		v.fail("log.level", "must be debug, info, warn or error")
	}
	switch f := string(c.Log.Format); f {
	case "", "text", "json":
	default:
		v.fail("log.format", "must be text or json")
	}
}

// checkNames checks a list of group or subject names.
func checkNames(v *validator, p keyPath, names []envString) {
	for i, n := range names {
		if n == "" {
			v.fail(p.index(i), "is empty")
		}
	}
}

// checkHostPort checks a host:port address; the port may be 0 (any free
// port) only when zeroPort is set.
func checkHostPort(addr string, zeroPort bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if host == "" && !zeroPort {
		return errors.New("has no host")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (n == 0 && !zeroPort) {
		return errors.New("has an invalid port")
	}
	return nil
}

// socketPort returns the port of a Unix socket path of the form
// /dir/.s.PGSQL.<port>.
func socketPort(path string) (uint16, error) {
	_, file := filepath.Split(path)
	if p, ok := strings.CutPrefix(file, ".s.PGSQL."); ok {
		if port, err := strconv.ParseUint(p, 10, 16); err == nil && port > 0 {
			return uint16(port), nil
		}
	}
	return 0, errors.New("is not a socket path of the form /dir/.s.PGSQL.<port>")
}

// isLocalAddress reports whether addr stays on this host: a Unix socket
// path, or host:port with localhost or a loopback IP.
func isLocalAddress(addr string) bool {
	if strings.HasPrefix(addr, "/") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
