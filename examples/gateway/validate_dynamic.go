package main

import (
	"cmp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// Limits of credentials.dynamic and admin.
const (
	// maxRolePrefix is credstore's limit: 20 random hex digits follow the
	// prefix in a 63-byte role name.
	maxRolePrefix = 40
	// minLeaseTTL is the shortest lease: VALID UNTIL has whole seconds.
	minLeaseTTL = time.Second
	// minAdminToken is the shortest admin token accepted, in characters.
	minAdminToken = 16
)

// validateDynamic checks credentials.dynamic. NewDynamic checks again
// when the gateway is built (and the template roles then, against the
// server); these checks name the key at fault, without connecting.
func (c *config) validateDynamic(v *validator) {
	d := c.Credentials.Dynamic
	if d == nil {
		return
	}
	p := keyPath("credentials.dynamic")
	if d.AdminDSN.IsZero() {
		v.fail(p.key("admin_dsn"), "is required: a connection string for a role with CREATEROLE on the upstream server")
	} else if _, err := pgconn.ParseConfig(d.AdminDSN.Reveal()); err != nil {
		// pgconn's errors may quote the string, and with it the password.
		v.fail(p.key("admin_dsn"), "is not a valid connection string (libpq keyword=value or postgres:// URL), or names a file that cannot be read")
	}
	if len(d.Templates) == 0 {
		v.fail(p.key("templates"), "at least one template is required: {groups, subjects, roles}")
	}
	for i, t := range d.Templates {
		tp := p.key("templates").index(i)
		if len(t.Roles) == 0 {
			v.fail(tp.key("roles"), "at least one role is required")
		}
		checkNames(v, tp.key("roles"), t.Roles)
		checkNames(v, tp.key("groups"), t.Groups)
		checkNames(v, tp.key("subjects"), t.Subjects)
		if len(t.Groups) == 0 && len(t.Subjects) == 0 && i < len(d.Templates)-1 {
			v.warn(tp, "this template matches every identity, so the templates after it are never used")
		}
	}
	if d.TTL != nil && time.Duration(*d.TTL) < minLeaseTTL {
		v.fail(p.key("ttl"), "must be at least %s (absent: 1h)", minLeaseTTL)
	}
	if prefix := string(d.Prefix); prefix != "" {
		switch {
		case len(prefix) > maxRolePrefix:
			v.fail(p.key("prefix"), "must be at most %d bytes", maxRolePrefix)
		case prefix[0] < 'a' || prefix[0] > 'z':
			v.fail(p.key("prefix"), "must start with a lowercase letter")
		case strings.Trim(prefix, "abcdefghijklmnopqrstuvwxyz0123456789_") != "":
			v.fail(p.key("prefix"), "must be lowercase letters, digits and underscores")
		case strings.HasPrefix(prefix, "pg_"):
			v.fail(p.key("prefix"), "must not start with pg_ (PostgreSQL reserves those role names)")
		}
	}
	if d.ConnectionLimit < 0 {
		v.fail(p.key("connection_limit"), "must not be negative (0 or absent: 1)")
	}
	if strings.ContainsRune(string(d.GatewayID), 0) {
		v.fail(p.key("gateway_id"), "contains a NUL character")
	}
	if d.LeaseStore != nil && d.LeaseStore.File == "" {
		v.fail(p.key("lease_store.file"), "is required in lease_store (absent lease_store: a table in the admin database)")
	}
	if d.AllowPrivilegedTemplates {
		v.warn(p.key("allow_privileged_templates"), "template roles may be superuser, CREATEROLE, BYPASSRLS or REPLICATION: a lease can then escalate its identity's privileges")
	}
}

// validateAdmin checks the admin section.
func (c *config) validateAdmin(v *validator) {
	a := c.Admin
	if a == nil {
		return
	}
	p := keyPath("admin")
	listen, proxyListen := cmp.Or(string(a.Listen), defaultAdminListen), cmp.Or(string(c.Listen), defaultListen)
	if err := checkHostPort(listen, true); err != nil {
		v.fail(p.key("listen"), "%w", err)
	} else {
		if !isLocalAddress(listen) {
			v.warn(p.key("listen"), "the admin API is not on loopback and has no TLS: its token and the session list cross the network in clear")
		}
		if listen == proxyListen && !strings.HasSuffix(listen, ":0") {
			v.fail(p.key("listen"), "is the same address as listen")
		}
	}
	if a.RevocationsFile == "" {
		v.warn(p, "no revocations_file: identities revoked through the admin API get back in when the gateway restarts")
	}
	token := a.Token.Reveal()
	switch {
	case token == "":
		v.fail(p.key("token"), "is required: the bearer token of the admin API (for example ${PGWARDEN_ADMIN_TOKEN})")
	case utf8.RuneCountInString(token) < minAdminToken:
		v.fail(p.key("token"), "must be at least %d characters", minAdminToken)
	case strings.ContainsFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		v.fail(p.key("token"), "must not contain spaces or control characters")
	case !utf8.ValidString(token):
		v.fail(p.key("token"), "is not valid UTF-8")
	}
}
