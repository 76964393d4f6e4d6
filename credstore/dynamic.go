package credstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgwarden/pgwarden/internal/scramhash"
	"github.com/pgwarden/pgwarden/session"
)

// Defaults of DynamicConfig.
const (
	DefaultLeaseTTL      = time.Hour
	DefaultRolePrefix    = "pgw_"
	DefaultSweepInterval = time.Minute
	// maxRolePrefix leaves room for 20 random hex digits in a 63-byte name.
	maxRolePrefix = 40
)

// Template maps identities to the roles a just-in-time role is made a
// member of. An identity matches when it is in any of Groups or its Subject
// is any of Subjects; a template with neither matches every identity.
type Template struct {
	Groups   []string
	Subjects []string
	// Roles are the template roles (at least one).
	Roles []string
}

func (t *Template) matches(id session.Identity) bool {
	if len(t.Groups) == 0 && len(t.Subjects) == 0 {
		return true
	}
	return slices.Contains(t.Subjects, id.Subject) || slices.ContainsFunc(t.Groups, id.InGroup)
}

// DynamicConfig configures a Dynamic store. AdminDSN and Templates are
// required; every other field has a safe zero value.
type DynamicConfig struct {
	// AdminDSN is a PostgreSQL connection string (libpq keyword/value or
	// URL) for a role with CREATEROLE on the protected server. Prefer a
	// role that is not a superuser.
	AdminDSN session.Secret
	// Templates map identities to template roles; the first that matches
	// decides, and an identity that matches none gets ErrNoCredential.
	Templates []Template
	// AllowPrivilegedTemplates lets template roles be superuser,
	// CREATEROLE, BYPASSRLS, REPLICATION, members of such roles, or of the
	// predefined roles that reach the server's files and programs. By
	// default such a template refuses the credential: a lease would
	// escalate the identity's privileges.
	AllowPrivilegedTemplates bool
	// TTL is how long a lease lives at most; the session ends then. Zero
	// means DefaultLeaseTTL.
	TTL time.Duration
	// Prefix starts every role name (a recognisable prefix; lowercase
	// letters, digits and underscores). Empty means DefaultRolePrefix.
	Prefix string
	// ConnectionLimit is the role's CONNECTION LIMIT. Zero means 1: one
	// session, one connection.
	ConnectionLimit int
	// GatewayID names this gateway in the leases, so that several gateways
	// can share a lease table and each cleans only its own. Empty means the
	// host name.
	GatewayID string
	// Leases keeps leases across restarts. nil means the table
	// pgwarden_leases in AdminDSN's database (created if missing).
	Leases LeaseStore
	// SweepInterval is how often leases past their TTL are ended (a
	// backstop: sessions end their lease themselves). Zero means
	// DefaultSweepInterval.
	SweepInterval time.Duration
	// Logger receives the store's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Dynamic is a Store that creates a short-lived login role for each
// session (just-in-time credentials): a random name with the configured
// prefix, a random password the gateway keeps in memory only (the server
// gets its SCRAM verifier), VALID UNTIL now + TTL, membership IN ROLE the
// templates the identity maps to, and a connection limit. The lease ends
// when the session ends or at its TTL: the role loses LOGIN, its backends
// are terminated, what it owns is reassigned to the admin role, and it is
// dropped. Leases are persisted before the role is created, so a gateway
// that restarts after a crash finds and drops the roles it left behind.
//
// A Dynamic is safe for concurrent use. Close it to stop its sweeper.
type Dynamic struct {
	cfg    DynamicConfig
	pool   *pgxpool.Pool
	admin  *pgx.ConnConfig
	leases LeaseStore
	log    *slog.Logger
	me     string // the admin role's name

	mu     sync.Mutex
	active map[string]Lease  // issued by this process, not yet ended
	failed map[string]string // leases whose end failed, with their end reason

	stop chan struct{}
	done chan struct{}
}

// NewDynamic connects to the admin database, checks the templates (they
// must exist and, unless allowed, not escalate), prepares the lease store,
// ends the leases this gateway left behind, and starts the sweeper.
func NewDynamic(ctx context.Context, cfg DynamicConfig) (*Dynamic, error) {
	if cfg.AdminDSN.IsZero() {
		return nil, errors.New("credstore: dynamic credentials need an admin connection string")
	}
	if len(cfg.Templates) == 0 {
		return nil, errors.New("credstore: dynamic credentials need at least one template")
	}
	for i, t := range cfg.Templates {
		if len(t.Roles) == 0 {
			return nil, fmt.Errorf("credstore: template %d has no roles", i+1)
		}
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultLeaseTTL
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRolePrefix
	}
	if len(cfg.Prefix) > maxRolePrefix || strings.TrimFunc(cfg.Prefix, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_'
	}) != "" || cfg.Prefix[0] >= '0' && cfg.Prefix[0] <= '9' {
		return nil, fmt.Errorf("credstore: role prefix must be lowercase letters, digits and underscores, starting with a letter, at most %d bytes", maxRolePrefix)
	}
	if strings.HasPrefix(cfg.Prefix, "pg_") {
		return nil, errors.New(`credstore: role prefix cannot start with "pg_", which PostgreSQL reserves`)
	}
	if cfg.ConnectionLimit <= 0 {
		cfg.ConnectionLimit = 1
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.GatewayID == "" {
		cfg.GatewayID, _ = os.Hostname()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	pc, err := pgxpool.ParseConfig(cfg.AdminDSN.Reveal())
	if err != nil {
		// pgx's parse errors can quote the string: say less.
		return nil, errors.New("credstore: the admin connection string is invalid")
	}
	pc.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("credstore: admin connection: %w", err)
	}
	d := &Dynamic{cfg: cfg, pool: pool, admin: pc.ConnConfig, log: log, active: map[string]Lease{}, failed: map[string]string{},
		stop: make(chan struct{}), done: make(chan struct{})}
	fail := func(err error) (*Dynamic, error) {
		pool.Close()
		return nil, err
	}
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&d.me); err != nil {
		return fail(fmt.Errorf("credstore: admin connection: %w", err))
	}
	for _, t := range cfg.Templates {
		if err := d.checkTemplates(ctx, t.Roles); err != nil {
			return fail(err)
		}
	}
	d.leases = cfg.Leases
	if d.leases == nil {
		if d.leases, err = newTableLeases(ctx, pool); err != nil {
			return fail(err)
		}
	}
	if _, err := d.Sweep(ctx); err != nil {
		return fail(err)
	}
	go d.sweeper()
	return d, nil
}

// checkTemplates refuses template roles that do not exist, or that
// escalate unless allowed.
func (d *Dynamic) checkTemplates(ctx context.Context, roles []string) error {
	ps, err := CheckPrivileges(ctx, d.pool, roles...)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if !p.Exists {
			return fmt.Errorf("credstore: template role %q does not exist", p.Role)
		}
	}
	if d.cfg.AllowPrivilegedTemplates {
		return nil
	}
	return escalationError(ps)
}

// Credential creates the session's role. The lease is persisted before the
// role exists; the password is never sent to the server in clear.
func (d *Dynamic) Credential(ctx context.Context, info *session.Info) (Credential, error) {
	if info == nil {
		return Credential{}, errors.New("credstore: no session info")
	}
	var tmpl *Template
	for i := range d.cfg.Templates {
		if t := &d.cfg.Templates[i]; t.matches(info.Identity) {
			tmpl = t
			break
		}
	}
	if tmpl == nil {
		return Credential{}, ErrNoCredential
	}
	// Template roles can change after start: check them every time.
	if err := d.checkTemplates(ctx, tmpl.Roles); err != nil {
		d.log.Error("pgwarden: template roles refused; no credential issued", "err", err)
		return Credential{}, &session.Error{Code: session.CodeInvalidAuthorization,
			Message: "the gateway refused to issue a database credential: its template roles are not least privilege"}
	}
	name, password, err := newRoleName(d.cfg.Prefix)
	if err != nil {
		return Credential{}, err
	}
	verifier, err := scramhash.Verifier(password)
	if err != nil {
		return Credential{}, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	id := info.Identity
	id.Claims = session.Claims{}
	l := Lease{Role: name, Gateway: d.cfg.GatewayID, Database: info.Database, Identity: id,
		Templates: slices.Clone(tmpl.Roles), IssuedAt: now, ExpiresAt: now.Add(d.cfg.TTL)}
	// Known to this process before it is in the store, so that a sweep
	// never takes it for a leftover.
	d.mu.Lock()
	d.active[name] = l
	d.mu.Unlock()
	forget := func() {
		d.mu.Lock()
		delete(d.active, name)
		d.mu.Unlock()
	}
	if err := d.leases.Put(ctx, l); err != nil {
		forget()
		return Credential{}, fmt.Errorf("credstore: recording the lease: %w", err)
	}
	members := make([]string, len(tmpl.Roles))
	for i, r := range tmpl.Roles {
		members[i] = pgx.Identifier{r}.Sanitize()
	}
	// INHERIT makes the templates' grants apply; the admin role becomes a
	// member (ROLE) so that it can reassign what the lease owns at its end.
	sql := fmt.Sprintf("CREATE ROLE %s LOGIN INHERIT PASSWORD %s VALID UNTIL %s CONNECTION LIMIT %d IN ROLE %s ROLE %s",
		pgx.Identifier{name}.Sanitize(), quoteLiteral(verifier), quoteLiteral(l.ExpiresAt.Format(time.RFC3339)),
		d.cfg.ConnectionLimit, strings.Join(members, ", "), pgx.Identifier{d.me}.Sanitize())
	if _, err := d.pool.Exec(ctx, sql); err != nil {
		forget()
		l.EndedAt, l.EndReason = time.Now().UTC(), "create-failed"
		if perr := d.leases.Put(context.WithoutCancel(ctx), l); perr != nil {
			d.log.Error("pgwarden: recording a failed lease", "role", name, "err", perr)
		}
		return Credential{}, fmt.Errorf("credstore: creating the session's role: %w", err)
	}
	d.log.Info("pgwarden: lease issued", "role", name, "subject", id.Subject, "templates", l.Templates, "expires", l.ExpiresAt)
	return Credential{User: name, Password: session.NewSecret(password), ExpiresAt: l.ExpiresAt, Lease: name,
		Release: func(ctx context.Context, reason session.EndReason) error {
			return d.EndLease(ctx, name, leaseEndReason(reason))
		}}, nil
}

// leaseEndReason is the lease's end reason for a session's.
func leaseEndReason(r session.EndReason) string {
	switch r {
	case session.EndRevoked:
		return "revoked"
	case session.EndExpired:
		return "expired"
	}
	return "session-ended"
}

// newRoleName returns prefix + 20 random hex digits, and a random password
// of 32 bytes (base64url).
func newRoleName(prefix string) (name, password string, err error) {
	b := make([]byte, 10+32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	return prefix + hex.EncodeToString(b[:10]), base64.RawURLEncoding.EncodeToString(b[10:]), nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// on, which the gateway requires; s has no backslash or NUL here).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// EndLease ends the lease of role: the role loses LOGIN, its backends are
// terminated (ending the sessions that use it), what it owns in the
// session's database is reassigned to the admin role, and it is dropped.
// Ending an ended or unknown lease does nothing. reason is recorded.
func (d *Dynamic) EndLease(ctx context.Context, role, reason string) error {
	d.mu.Lock()
	l, ok := d.active[role]
	delete(d.active, role)
	d.mu.Unlock()
	if !ok {
		return nil
	}
	return d.end(ctx, l, reason)
}

// end drops the lease's role and records the end. A role that cannot be
// dropped yet keeps its lease active in the store, for the next sweep.
func (d *Dynamic) end(ctx context.Context, l Lease, reason string) error {
	ctx = context.WithoutCancel(ctx) // a lease half-ended is worse than a slow end
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ident := pgx.Identifier{l.Role}.Sanitize()
	var errs []error
	if _, err := d.pool.Exec(ctx, "ALTER ROLE "+ident+" NOLOGIN"); err != nil && !isUndefinedRole(err) {
		errs = append(errs, err)
	}
	if _, err := d.pool.Exec(ctx, "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1", l.Role); err != nil {
		errs = append(errs, err)
	}
	if err := d.reassign(ctx, l); err != nil {
		errs = append(errs, err)
	}
	if _, err := d.pool.Exec(ctx, "DROP ROLE IF EXISTS "+ident); err != nil {
		errs = append(errs, err)
		d.log.Error("pgwarden: dropping a lease's role failed; the sweeper retries", "role", l.Role, "err", err)
		d.mu.Lock()
		d.failed[l.Role] = reason // retried by the next sweep
		d.mu.Unlock()
		return errors.Join(errs...)
	}
	d.mu.Lock()
	delete(d.failed, l.Role)
	d.mu.Unlock()
	l.EndedAt, l.EndReason = time.Now().UTC(), reason
	if err := d.leases.Put(ctx, l); err != nil {
		errs = append(errs, fmt.Errorf("recording the lease's end: %w", err))
	}
	d.log.Info("pgwarden: lease ended", "role", l.Role, "reason", reason)
	return errors.Join(errs...)
}

// reassign gives what the role owns to the admin role, and revokes what
// was granted to it, in every database where the catalog says it owns or
// was granted something (usually none: then nothing is connected to).
func (d *Dynamic) reassign(ctx context.Context, l Lease) error {
	// Privileges on shared objects (databases, tablespaces) have no
	// database (dbid 0): DROP OWNED in the session's database revokes them.
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT COALESCE(d.datname, $2) FROM pg_catalog.pg_shdepend s
		LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
		WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
		AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)`, l.Role, l.Database)
	if err != nil {
		return err
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	ident := pgx.Identifier{l.Role}.Sanitize()
	var errs []error
	for _, db := range dbs {
		cc := d.admin.Copy()
		cc.Database = db
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			errs = append(errs, fmt.Errorf("connecting to %s to clean up: %w", db, err))
			continue
		}
		_, err = conn.Exec(ctx, "REASSIGN OWNED BY "+ident+" TO "+pgx.Identifier{d.me}.Sanitize()+"; DROP OWNED BY "+ident)
		conn.Close(context.WithoutCancel(ctx))
		if err != nil && !isUndefinedRole(err) {
			errs = append(errs, fmt.Errorf("cleaning up in %s: %w", db, err))
		}
	}
	return errors.Join(errs...)
}

func isUndefinedRole(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLSTATE 42704")
}

// Sweep ends this gateway's leases that are past their TTL, and those in
// the lease store that this process did not issue (left behind by a
// gateway that stopped without ending them). It returns how many it ended.
func (d *Dynamic) Sweep(ctx context.Context) (int, error) {
	ls, err := d.leases.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("credstore: reading leases: %w", err)
	}
	now := time.Now()
	n := 0
	var errs []error
	for _, l := range ls {
		if !l.Active() || l.Gateway != d.cfg.GatewayID {
			continue
		}
		d.mu.Lock()
		_, mine := d.active[l.Role]
		retry, failed := d.failed[l.Role]
		if mine && !now.After(l.ExpiresAt) {
			d.mu.Unlock()
			continue
		}
		delete(d.active, l.Role)
		d.mu.Unlock()
		reason := "expired"
		switch {
		case failed:
			reason = retry
		case !mine:
			reason = "leftover"
		}
		if err := d.end(ctx, l, reason); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (d *Dynamic) sweeper() {
	defer close(d.done)
	t := time.NewTicker(d.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			if _, err := d.Sweep(context.Background()); err != nil {
				d.log.Error("pgwarden: sweeping leases", "err", err)
			}
		}
	}
}

// Leases lists the leases in the store, active and ended, oldest first,
// with the delegation chain of each (for access reviews).
func (d *Dynamic) Leases(ctx context.Context) ([]Lease, error) {
	ls, err := d.leases.List(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(ls, func(a, b Lease) int { return a.IssuedAt.Compare(b.IssuedAt) })
	return ls, nil
}

// Privileges reads the catalog privileges of roles through the admin
// connection (see CheckPrivileges).
func (d *Dynamic) Privileges(ctx context.Context, roles ...string) ([]RolePrivileges, error) {
	return CheckPrivileges(ctx, d.pool, roles...)
}

// Close stops the sweeper, ends the leases this process still holds, and
// closes the admin connections.
func (d *Dynamic) Close() error {
	select {
	case <-d.stop:
		return nil
	default:
	}
	close(d.stop)
	<-d.done
	d.mu.Lock()
	roles := make([]string, 0, len(d.active))
	for r := range d.active {
		roles = append(roles, r)
	}
	d.mu.Unlock()
	var errs []error
	for _, r := range roles {
		errs = append(errs, d.EndLease(context.Background(), r, "gateway-closed"))
	}
	d.pool.Close()
	return errors.Join(errs...)
}
