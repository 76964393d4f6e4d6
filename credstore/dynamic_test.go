package credstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// A lease is a fresh login role: the prefix and random name, LOGIN,
// INHERIT, CONNECTION LIMIT, VALID UNTIL now+TTL, member of exactly the
// template roles (and the admin role a member of it), a SCRAM verifier in
// pg_authid, and nothing more. It logs in and reads orders through the
// template, and nothing else. Its password is nowhere but in the
// credential: not in pg_authid, the lease table, or the logs.
func TestDynamicIssuesALeastPrivilegeRole(t *testing.T) {
	su := setup(t)
	ctx := testContext(t)
	const ttl = 10 * time.Minute
	d := newDynamic(t, credstore.DynamicConfig{
		Templates:       []credstore.Template{{Groups: []string{"analysts"}, Roles: []string{"app_reader"}}},
		TTL:             ttl,
		Prefix:          "pgwt_issue_",
		ConnectionLimit: 2,
	})
	before := time.Now()
	info := infoFor("alice", "analysts")
	info.Identity.Chain = []session.Actor{{Subject: "agent-7", Issuer: "test"}}
	cred := issue(t, d, info)
	after := time.Now()
	password := cred.Password.Reveal()

	if !strings.HasPrefix(cred.User, "pgwt_issue_") || len(cred.User) != len("pgwt_issue_")+20 {
		t.Errorf("role name %q: want the prefix and 20 random hex digits", cred.User)
	}
	if cred.Lease != cred.User {
		t.Errorf("Lease %q, want the role's name %q", cred.Lease, cred.User)
	}
	if cred.Release == nil {
		t.Fatal("no Release hook")
	}
	if lo, hi := before.Add(ttl-time.Second), after.Add(ttl); cred.ExpiresAt.Before(lo) || cred.ExpiresAt.After(hi) {
		t.Errorf("ExpiresAt %v, want now+TTL (%v .. %v)", cred.ExpiresAt, lo, hi)
	}

	r, ok := lookupRole(t, cred.User)
	if !ok {
		t.Fatalf("no role %q in pg_roles", cred.User)
	}
	if !r.Login || !r.Inherit || r.ConnLimit != 2 {
		t.Errorf("role %+v: want LOGIN INHERIT CONNECTION LIMIT 2", r)
	}
	if r.Super || r.CreateRole || r.CreateDB || r.BypassRLS || r.Replication {
		t.Errorf("role %+v has attributes a lease must not have", r)
	}
	if r.ValidUntil == nil {
		t.Error("no VALID UNTIL")
	} else if diff := r.ValidUntil.Sub(cred.ExpiresAt); diff < -time.Second || diff > time.Second {
		t.Errorf("VALID UNTIL %v, want the credential's ExpiresAt %v", r.ValidUntil, cred.ExpiresAt)
	} else if lo, hi := before.Add(ttl-2*time.Second), after.Add(ttl+time.Second); r.ValidUntil.Before(lo) || r.ValidUntil.After(hi) {
		t.Errorf("VALID UNTIL %v, want now+TTL", r.ValidUntil)
	}
	if got := memberOf(t, cred.User); !slices.Equal(got, []string{"app_reader"}) {
		t.Errorf("member of %v, want [app_reader]", got)
	}
	if got := membersOf(t, cred.User); !slices.Equal(got, []string{adminRole}) {
		t.Errorf("members %v, want [%s] (so it can reassign what the lease owns)", got, adminRole)
	}

	var verifier string
	if err := su.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", cred.User).Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(verifier, "SCRAM-SHA-256$4096:") {
		t.Errorf("pg_authid holds %.20q..., want a SCRAM-SHA-256 verifier", verifier)
	}
	checkNoSecret(t, "pg_authid", verifier, password)

	conn, err := login(ctx, cred, "app")
	if err != nil {
		t.Fatalf("logging in as the lease: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var user string
	var n int
	if err := conn.QueryRow(ctx, "SELECT current_user, (SELECT count(*) FROM orders)").Scan(&user, &n); err != nil {
		t.Fatalf("reading orders through app_reader: %v", err)
	}
	if user != cred.User || n != 2 {
		t.Errorf("current_user %q read %d orders, want %q and 2", user, n, cred.User)
	}
	_, err = conn.Exec(ctx, "INSERT INTO orders VALUES (3, 'plum')")
	if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("a reader's INSERT: %v, want insufficient_privilege", err)
	}
	conn.Close(ctx)

	l := leaseOf(t, d.Dynamic, cred.User)
	if !l.Active() || l.Gateway != "gw-"+t.Name() || l.Database != "app" || l.Identity.Subject != "alice" ||
		!slices.Equal(l.Templates, []string{"app_reader"}) || !l.ExpiresAt.Equal(cred.ExpiresAt) ||
		len(l.Identity.Chain) != 1 || l.Identity.Chain[0].Subject != "agent-7" {
		t.Errorf("lease %+v does not describe the credential", l)
	}
	var table string
	if err := su.QueryRow(ctx, "SELECT string_agg(role || gateway || lease::text, ' ') FROM pgwarden_leases").Scan(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, cred.User) {
		t.Error("the lease table does not hold the lease")
	}
	checkNoSecret(t, "the lease table", table, password)

	ps, err := d.Privileges(ctx, cred.User)
	if err != nil || len(ps) != 1 || !ps[0].Exists || len(ps[0].Excessive()) != 0 {
		t.Errorf("Privileges(lease) = %+v, %v; want an existing role with nothing excessive", ps, err)
	}

	if err := cred.Release(ctx, session.EndClientExit); err != nil {
		t.Errorf("Release: %v", err)
	}
	logs := d.logs.String()
	if !strings.Contains(logs, cred.User) {
		t.Error("the logs do not name the lease (is the logger captured?)")
	}
	checkNoSecret(t, "the logs", logs, password)
}

// Release ends the lease: the role is dropped, the session using it is
// terminated, what it created is given to the admin role, and the lease
// is recorded as ended by the session.
func TestDynamicReleaseEndsTheLease(t *testing.T) {
	su := setup(t)
	ctx := testContext(t)
	d := newDynamic(t, credstore.DynamicConfig{
		Templates: []credstore.Template{{Roles: []string{"app_writer"}}},
		Prefix:    "pgwt_release_",
		Leases:    credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json")),
	})
	cred := issue(t, d, infoFor("bob", "ops"))
	conn, err := login(ctx, cred, "app")
	if err != nil {
		t.Fatalf("logging in as the lease: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	table := "made_by_" + cred.User
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (id int); INSERT INTO "+table+" VALUES (1)"); err != nil {
		t.Fatalf("the lease creating a table: %v", err)
	}
	pid := conn.PgConn().PID()

	issued := time.Now()
	if err := cred.Release(ctx, session.EndClientExit); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if roleExists(t, cred.User) {
		t.Error("the role still exists after Release")
	}
	waitNoBackend(t, cred.User)
	var alive bool
	if err := su.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&alive); err != nil || alive {
		t.Errorf("the lease's backend %d is alive (%v)", pid, err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the lease's session still runs queries after Release")
	}
	var owner string
	var rows int
	if err := su.QueryRow(ctx, "SELECT tableowner, (SELECT count(*) FROM "+table+") FROM pg_tables WHERE tablename = $1", table).Scan(&owner, &rows); err != nil {
		t.Fatalf("the table the lease created: %v", err)
	}
	if owner != adminRole || rows != 1 {
		t.Errorf("the lease's table is owned by %q with %d rows, want %q and its row kept", owner, rows, adminRole)
	}

	l := leaseOf(t, d.Dynamic, cred.User)
	if l.Active() || l.EndReason != "session-ended" || l.EndedAt.Before(issued.Add(-time.Second)) {
		t.Errorf("lease after Release: ended %v, reason %q; want ended now, session-ended", l.EndedAt, l.EndReason)
	}
	// Ending an ended lease does nothing.
	if err := d.EndLease(ctx, cred.User, "revoked"); err != nil {
		t.Errorf("EndLease of an ended lease: %v", err)
	}
	if l := leaseOf(t, d.Dynamic, cred.User); l.EndReason != "session-ended" {
		t.Errorf("ending it again changed the reason to %q", l.EndReason)
	}
	checkNoSecret(t, "the logs", d.logs.String(), cred.Password.Reveal())
}

// A template that escalates (superuser, CREATEROLE, membership of a
// superuser or of pg_execute_server_program) is refused at start unless
// AllowPrivilegedTemplates; so is one that does not exist.
func TestDynamicRefusesPrivilegedTemplates(t *testing.T) {
	setup(t)
	for _, tc := range []struct {
		roles []string
		bad   string // the role the error must name
		why   string
	}{
		{[]string{"danger_admin"}, "danger_admin", "createrole"},
		{[]string{"danger_member"}, "danger_member", "pg_execute_server_program"},
		{[]string{"super_role"}, "super_role", "superuser"},
		{[]string{"danger_super_member"}, "danger_super_member", "superuser (through super_role)"},
		{[]string{"app_reader", "priv_chain"}, "priv_chain", "createrole (through danger_admin)"},
		{[]string{"priv_via_bypass"}, "priv_via_bypass", "bypassrls"},
		{[]string{"priv_repl"}, "priv_repl", "replication"},
		{[]string{"priv_files"}, "priv_files", "pg_read_server_files"},
	} {
		t.Run(tc.bad, func(t *testing.T) {
			cfg := credstore.DynamicConfig{Templates: []credstore.Template{{Roles: tc.roles}}}
			fillConfig(t, &cfg)
			d, err := credstore.NewDynamic(testContext(t), cfg)
			if err == nil {
				d.Close()
				t.Fatalf("NewDynamic accepted the template %v", tc.roles)
			}
			for _, want := range []string{tc.bad, tc.why, "AllowPrivilegedTemplates"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			cfg.AllowPrivilegedTemplates = true
			d, err = credstore.NewDynamic(testContext(t), cfg)
			if err != nil {
				t.Fatalf("with AllowPrivilegedTemplates: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		cfg := credstore.DynamicConfig{Templates: []credstore.Template{{Roles: []string{"app_reader"}}, {Roles: []string{"no_such_role"}}},
			AllowPrivilegedTemplates: true}
		fillConfig(t, &cfg)
		d, err := credstore.NewDynamic(testContext(t), cfg)
		if err == nil {
			d.Close()
			t.Fatal("NewDynamic accepted a template role that does not exist")
		}
		if !strings.Contains(err.Error(), "no_such_role") || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("error %q does not name the missing role", err)
		}
	})
}

// Template roles are checked at every Credential: one that became
// privileged after start gets no lease (SQLSTATE 28000), and no role or
// lease is created; back to least privilege, it works again.
func TestDynamicRefusesATemplateThatBecamePrivileged(t *testing.T) {
	setup(t)
	ctx := testContext(t)
	const prefix = "pgwt_mutable_"
	d := newDynamic(t, credstore.DynamicConfig{
		Templates: []credstore.Template{{Roles: []string{"app_mutable"}}},
		Prefix:    prefix,
		Leases:    credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json")),
	})
	cred := issue(t, d, infoFor("alice"))
	if err := cred.Release(ctx, session.EndClientExit); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ name, escalate, undo string }{
		{"createrole", "ALTER ROLE app_mutable CREATEROLE", "ALTER ROLE app_mutable NOCREATEROLE"},
		{"pg_execute_server_program", "GRANT pg_execute_server_program TO app_mutable", "REVOKE pg_execute_server_program FROM app_mutable"},
		{"superuser", "GRANT super_role TO app_mutable", "REVOKE super_role FROM app_mutable"},
	} {
		t.Run(step.name, func(t *testing.T) {
			if err := pg.Exec(ctx, "postgres", step.escalate); err != nil {
				t.Fatal(err)
			}
			undone := false
			undo := func() {
				if !undone {
					undone = true
					if err := pg.Exec(ctx, "postgres", step.undo); err != nil {
						t.Fatal(err)
					}
				}
			}
			t.Cleanup(undo)
			before, err := d.Leases(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cred, err := d.Credential(ctx, infoFor("alice"))
			var se *session.Error
			if !errors.As(err, &se) || se.Code != session.CodeInvalidAuthorization || errors.Is(err, credstore.ErrNoCredential) {
				t.Errorf("Credential with a privileged template: %v, want a *session.Error 28000", err)
			}
			if cred.Release != nil || cred.User != "" {
				t.Error("a refused Credential returned a credential")
				if cred.Release != nil {
					cred.Release(ctx, session.EndClientExit)
				}
			}
			after, err := d.Leases(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("a refused Credential recorded a lease (%d, then %d)", len(before), len(after))
			}
			if got := rolesLike(t, prefix); len(got) != 0 {
				t.Errorf("roles left: %v", got)
			}
			if !strings.Contains(d.logs.String(), step.name) {
				t.Errorf("the logs do not say why the template was refused (%s)", step.name)
			}
			undo()
			cred = issue(t, d, infoFor("alice"))
			if err := cred.Release(ctx, session.EndClientExit); err != nil {
				t.Error(err)
			}
		})
	}
}

// The first template that matches the identity (by group or subject)
// decides the lease's roles; an identity that matches none gets
// ErrNoCredential and no role.
func TestDynamicMapsIdentitiesToTemplates(t *testing.T) {
	setup(t)
	ctx := testContext(t)
	const prefix = "pgwt_map_"
	d := newDynamic(t, credstore.DynamicConfig{
		Templates: []credstore.Template{
			{Groups: []string{"analysts"}, Roles: []string{"app_reader"}},
			{Subjects: []string{"carol"}, Roles: []string{"app_writer"}},
			{Groups: []string{"ops", "sre"}, Roles: []string{"app_reader", "app_writer"}},
		},
		Prefix: prefix,
		Leases: credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json")),
	})
	for _, tc := range []struct {
		info *session.Info
		want []string
	}{
		{infoFor("alice", "analysts"), []string{"app_reader"}},
		{infoFor("carol"), []string{"app_writer"}},
		{infoFor("carol", "analysts"), []string{"app_reader"}}, // the first match wins
		{infoFor("dan", "sre"), []string{"app_reader", "app_writer"}},
	} {
		cred := issue(t, d, tc.info)
		if got := memberOf(t, cred.User); !slices.Equal(got, tc.want) {
			t.Errorf("%s %v: member of %v, want %v", tc.info.Identity.Subject, tc.info.Identity.Groups, got, tc.want)
		}
		if l := leaseOf(t, d.Dynamic, cred.User); !slices.Equal(l.Templates, tc.want) || l.Identity.Subject != tc.info.Identity.Subject {
			t.Errorf("lease %+v, want templates %v for %s", l, tc.want, tc.info.Identity.Subject)
		}
		if err := cred.Release(ctx, session.EndClientExit); err != nil {
			t.Error(err)
		}
	}
	before, _ := d.Leases(ctx)
	cred, err := d.Credential(ctx, infoFor("mallory", "guests"))
	if !errors.Is(err, credstore.ErrNoCredential) || cred.Release != nil {
		t.Errorf("an identity no template matches: %v", err)
	}
	if after, _ := d.Leases(ctx); len(after) != len(before) {
		t.Error("an identity without a template got a lease")
	}
	if got := rolesLike(t, prefix); len(got) != 0 {
		t.Errorf("roles left: %v", got)
	}
}

// A gateway that crashed (no Close, no Release) leaves its roles behind;
// the next start with the same GatewayID and lease store drops them
// (reason leftover) and terminates their sessions, and leaves another
// gateway's leases alone.
func TestDynamicRestartDropsLeftoverRoles(t *testing.T) {
	for _, store := range []string{"file", "table"} {
		t.Run(store, func(t *testing.T) {
			ctx := testContext(t)
			var leases credstore.LeaseStore // nil: the table
			file := filepath.Join(t.TempDir(), "leases.json")
			if store == "file" {
				leases = credstore.NewFileLeases(file)
			}
			gw := "gw-crash-" + store
			crashed := newDynamic(t, credstore.DynamicConfig{GatewayID: gw, Leases: leases, Prefix: "pgwt_crash_"})
			other := newDynamic(t, credstore.DynamicConfig{GatewayID: "gw-other-" + store, Leases: leases, Prefix: "pgwt_crash_"})
			left := issue(t, crashed, infoFor("alice"))
			kept := issue(t, other, infoFor("bob"))
			conn, err := login(ctx, left, "app")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.WithoutCancel(ctx))

			// The restart: a new store with the crashed one's identity.
			restarted := newDynamic(t, credstore.DynamicConfig{GatewayID: gw, Leases: leases, Prefix: "pgwt_crash_"})
			if roleExists(t, left.User) {
				t.Error("the crashed gateway's role survived the restart")
			}
			waitNoBackend(t, left.User)
			if l := leaseOf(t, restarted.Dynamic, left.User); l.Active() || l.EndReason != "leftover" {
				t.Errorf("the crashed gateway's lease: ended %v, reason %q; want leftover", l.EndedAt, l.EndReason)
			}
			if !roleExists(t, kept.User) {
				t.Error("the restart dropped another gateway's role")
			}
			if l := leaseOf(t, restarted.Dynamic, kept.User); !l.Active() {
				t.Errorf("the restart ended another gateway's lease (%q)", l.EndReason)
			}
			if err := verifyLogin(ctx, kept); err != nil {
				t.Errorf("another gateway's credential stopped working: %v", err)
			}
			if store == "file" {
				checkFileHasNoSecrets(t, file, left, kept)
			}

			if err := kept.Release(ctx, session.EndClientExit); err != nil {
				t.Error(err)
			}
			// The crashed process is gone in real life; here it still
			// holds its pool and sweeper, closed when the test ends.
		})
	}
}

// A lease past its TTL is ended by Sweep (reason expired), and by the
// background sweeper; Sweep leaves live leases alone, and Release after
// the sweep does nothing.
func TestDynamicSweepEndsExpiredLeases(t *testing.T) {
	setup(t)
	ctx := testContext(t)
	const ttl = 2 * time.Second
	manual := newDynamic(t, credstore.DynamicConfig{TTL: ttl, Prefix: "pgwt_ttl_",
		Leases: credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json"))})
	auto := newDynamic(t, credstore.DynamicConfig{TTL: ttl, Prefix: "pgwt_ttl_", SweepInterval: 200 * time.Millisecond,
		GatewayID: "gw-" + t.Name() + "-auto", Leases: credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json"))})
	cred := issue(t, manual, infoFor("alice"))
	autoCred := issue(t, auto, infoFor("bob"))
	if err := verifyLogin(ctx, cred); err != nil {
		t.Fatalf("a fresh lease does not log in: %v", err)
	}
	if n, err := manual.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("Sweep before the TTL ended %d leases (%v)", n, err)
	}
	if !roleExists(t, cred.User) {
		t.Fatal("Sweep before the TTL dropped the role")
	}

	time.Sleep(time.Until(cred.ExpiresAt) + 100*time.Millisecond)
	n, err := manual.Sweep(ctx)
	if n != 1 || err != nil {
		t.Errorf("Sweep after the TTL ended %d leases (%v), want 1", n, err)
	}
	if roleExists(t, cred.User) {
		t.Error("the expired lease's role still exists")
	}
	if l := leaseOf(t, manual.Dynamic, cred.User); l.Active() || l.EndReason != "expired" {
		t.Errorf("expired lease: ended %v, reason %q; want expired", l.EndedAt, l.EndReason)
	}
	if err := cred.Release(ctx, session.EndClientExit); err != nil {
		t.Errorf("Release after the sweep: %v", err)
	}
	if l := leaseOf(t, manual.Dynamic, cred.User); l.EndReason != "expired" {
		t.Errorf("Release after the sweep changed the reason to %q", l.EndReason)
	}

	deadline := time.Now().Add(5 * time.Second)
	for roleExists(t, autoCred.User) {
		if time.Now().After(deadline) {
			t.Fatal("the background sweeper did not end the expired lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for l := leaseOf(t, auto.Dynamic, autoCred.User); l.EndReason != "expired"; l = leaseOf(t, auto.Dynamic, autoCred.User) {
		if time.Now().After(deadline) {
			t.Fatalf("the background sweeper's lease: reason %q, want expired", l.EndReason)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NewDynamic checks its configuration, and its errors never show the
// admin connection string's password.
func TestNewDynamicChecksItsConfig(t *testing.T) {
	setup(t)
	const wrong = "not-the-admin-password-4d1e"
	for _, tc := range []struct {
		name string
		cfg  credstore.DynamicConfig
		want string
	}{
		{"no DSN", credstore.DynamicConfig{Templates: []credstore.Template{{Roles: []string{"app_reader"}}}}, "admin connection string"},
		{"no templates", credstore.DynamicConfig{AdminDSN: adminDSN()}, "template"},
		{"template without roles", credstore.DynamicConfig{AdminDSN: adminDSN(), Templates: []credstore.Template{{Groups: []string{"x"}}}}, "no roles"},
		{"uppercase prefix", credstore.DynamicConfig{AdminDSN: adminDSN(), Templates: []credstore.Template{{Roles: []string{"app_reader"}}}, Prefix: "Pgw_"}, "prefix"},
		{"prefix with a quote", credstore.DynamicConfig{AdminDSN: adminDSN(), Templates: []credstore.Template{{Roles: []string{"app_reader"}}}, Prefix: `p"; DROP ROLE x; --`}, "prefix"},
		{"prefix starting with a digit", credstore.DynamicConfig{AdminDSN: adminDSN(), Templates: []credstore.Template{{Roles: []string{"app_reader"}}}, Prefix: "1pgw_"}, "prefix"},
		{"long prefix", credstore.DynamicConfig{AdminDSN: adminDSN(), Templates: []credstore.Template{{Roles: []string{"app_reader"}}}, Prefix: strings.Repeat("p", 41)}, "prefix"},
		{"wrong password", credstore.DynamicConfig{AdminDSN: session.NewSecret(pg.ConnString(adminRole, wrong, "app")),
			Templates: []credstore.Template{{Roles: []string{"app_reader"}}}}, "admin connection"},
		{"invalid DSN", credstore.DynamicConfig{AdminDSN: session.NewSecret("host=127.0.0.1 password=" + wrong + " port=notaport"),
			Templates: []credstore.Template{{Roles: []string{"app_reader"}}}}, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := credstore.NewDynamic(testContext(t), tc.cfg)
			if err == nil {
				d.Close()
				t.Fatal("NewDynamic accepted the configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			checkNoSecret(t, "the error", err.Error(), wrong)
			checkNoSecret(t, "the error", err.Error(), adminPassword)
		})
	}
}

// hookLeases is a LeaseStore that runs onActive (once) right after the
// first active lease is stored: the moment between Credential recording
// its lease and creating the role.
type hookLeases struct {
	credstore.LeaseStore
	once     sync.Once
	onActive atomic.Pointer[func(credstore.Lease)]
}

func (h *hookLeases) Put(ctx context.Context, l credstore.Lease) error {
	if err := h.LeaseStore.Put(ctx, l); err != nil {
		return err
	}
	if f := h.onActive.Load(); f != nil && l.Active() {
		h.once.Do(func() { (*f)(l) })
	}
	return nil
}

// TestSweepDuringCredentialLeavesTheNewLease: a sweep that runs while a
// credential is being issued (its lease is in the store, its role not yet
// created) must not take the new lease for a leftover.
func TestSweepDuringCredentialLeavesTheNewLease(t *testing.T) {
	ctx := testContext(t)
	hook := &hookLeases{LeaseStore: credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json"))}
	gw := "gw-" + t.Name()
	d := newDynamic(t, credstore.DynamicConfig{GatewayID: gw, Prefix: "pgwt_race_", Leases: hook})
	sweep := func(credstore.Lease) {
		if _, err := d.Sweep(ctx); err != nil {
			t.Errorf("Sweep: %v", err)
		}
	}
	hook.onActive.Store(&sweep)

	cred := issue(t, d, infoFor("alice"))
	t.Cleanup(func() {
		if err := cred.Release(context.Background(), session.EndClientExit); err != nil {
			t.Errorf("Release: %v", err)
		}
	})
	exists := roleExists(t, cred.User)
	l := leaseOf(t, d.Dynamic, cred.User)
	t.Logf("after Credential: role exists %v; lease active %v (reason %q)", exists, l.Active(), l.EndReason)
	if !exists {
		t.Errorf("Credential returned a credential for a role that does not exist")
	}
	if !l.Active() {
		t.Errorf("Credential returned a live credential whose lease the store records as ended (%q)", l.EndReason)
	}

	// The consequence: the gateway crashes, restarts, and its cleanup
	// leaves the role alive.
	newDynamic(t, credstore.DynamicConfig{GatewayID: gw, Prefix: "pgwt_race_", Leases: hook})
	if roleExists(t, cred.User) {
		t.Errorf("after a crash and restart the role %s still exists (leaked until VALID UNTIL, then forever as NOLOGIN)", cred.User)
	}
}

// TestFailedDropIsRetriedByTheNextSweep: when a lease's role cannot be
// dropped at its end, the next sweep tries again (not only after the TTL).
func TestFailedDropIsRetriedByTheNextSweep(t *testing.T) {
	ctx := testContext(t)
	d := newDynamic(t, credstore.DynamicConfig{Prefix: "pgwt_retry_", Leases: credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json"))})
	cred := issue(t, d, infoFor("alice"))
	// Something the lease owns where the admin role cannot connect: the
	// drop fails until the admin may connect there.
	ident := pgx.Identifier{cred.User}.Sanitize()
	if err := pg.Exec(ctx, lockedDB, "CREATE TABLE "+ident+" (id int); ALTER TABLE "+ident+" OWNER TO "+ident); err != nil {
		t.Fatal(err)
	}
	if err := cred.Release(ctx, session.EndClientExit); err == nil {
		t.Fatal("Release succeeded although the admin role cannot reach the lease's table")
	}
	if !roleExists(t, cred.User) {
		t.Fatal("the role was dropped")
	}
	if l := leaseOf(t, d.Dynamic, cred.User); !l.Active() {
		t.Errorf("a lease whose role was not dropped is recorded as ended (%q)", l.EndReason)
	}
	if r, _ := lookupRole(t, cred.User); r.Login {
		t.Error("the role that could not be dropped can still log in")
	}

	// The obstacle goes away; the next sweep should finish the job.
	if err := pg.Exec(ctx, "postgres", "GRANT CONNECT ON DATABASE "+lockedDB+" TO "+adminRole); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.EndLease(context.Background(), cred.User, "test-cleanup"); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
		if err := pg.Exec(context.Background(), "postgres", "REVOKE CONNECT ON DATABASE "+lockedDB+" FROM "+adminRole); err != nil {
			t.Error(err)
		}
	})
	n, err := d.Sweep(ctx)
	t.Logf("Sweep: %d, %v", n, err)
	if roleExists(t, cred.User) {
		t.Errorf("the next sweep did not retry dropping %s (it waits for the lease's TTL)", cred.User)
	}
}

// TestSharedObjectPrivilegesDoNotBlockTheDrop: privileges on shared
// objects (a database) have no database in pg_shdepend; the lease's end
// revokes them (DROP OWNED in the session's database) so that the role can
// be dropped. The admin role granted them here: a non-superuser admin
// cannot revoke what a superuser granted to a lease directly.
func TestSharedObjectPrivilegesDoNotBlockTheDrop(t *testing.T) {
	ctx := testContext(t)
	d := newDynamic(t, credstore.DynamicConfig{Prefix: "pgwt_shared_", Leases: credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json"))})
	cred := issue(t, d, infoFor("alice"))
	ident := pgx.Identifier{cred.User}.Sanitize()
	admin := pgx.Identifier{adminRole}.Sanitize()
	if err := pg.Exec(ctx, "postgres", "GRANT CONNECT, TEMPORARY ON DATABASE app TO "+admin+" WITH GRANT OPTION; "+
		"SET ROLE "+admin+"; GRANT CONNECT, TEMPORARY ON DATABASE app TO "+ident+"; RESET ROLE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pg.Exec(context.Background(), "postgres", "REVOKE GRANT OPTION FOR CONNECT, TEMPORARY ON DATABASE app FROM "+admin+" CASCADE")
		if err := d.EndLease(context.Background(), cred.User, "test-cleanup"); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
	if err := cred.Release(ctx, session.EndClientExit); err != nil {
		t.Errorf("Release of a lease with a privilege on a database: %v", err)
	}
	if roleExists(t, cred.User) {
		t.Errorf("the role %s was not dropped", cred.User)
	}
}

// TestTemplateNamingAServerAccessRoleIsRefused: a template that is itself
// one of the predefined roles reaching the server's files and programs
// (pg_execute_server_program, ...) is refused like a member of one.
func TestTemplateNamingAServerAccessRoleIsRefused(t *testing.T) {
	setup(t)
	for _, r := range []string{"pg_execute_server_program", "pg_read_server_files", "pg_write_server_files"} {
		t.Run(r, func(t *testing.T) {
			cfg := credstore.DynamicConfig{Templates: []credstore.Template{{Roles: []string{r}}}, Prefix: "pgwt_direct_",
				Leases: credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json"))}
			fillConfig(t, &cfg)
			d, err := credstore.NewDynamic(testContext(t), cfg)
			if err != nil {
				if !strings.Contains(err.Error(), r) {
					t.Errorf("refused, but the error does not name %s: %v", r, err)
				}
				return
			}
			defer d.Close()
			t.Errorf("NewDynamic accepted a template naming %s", r)
			if r != "pg_execute_server_program" {
				return
			}
			ctx := testContext(t)
			cred, err := d.Credential(ctx, infoFor("alice"))
			if err != nil {
				t.Logf("Credential: %v", err)
				return
			}
			defer cred.Release(ctx, session.EndClientExit)
			conn, err := login(ctx, cred, "app")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "COPY (SELECT 1) TO PROGRAM 'cat >/dev/null'"); err == nil {
				t.Errorf("the lease %s ran a program on the database server", cred.User)
			} else {
				t.Logf("COPY TO PROGRAM as the lease: %v", err)
			}
		})
	}
}

// TestReservedPrefixIsRefused: PostgreSQL reserves role names starting
// with pg_; such a prefix is refused when the store is built.
func TestReservedPrefixIsRefused(t *testing.T) {
	setup(t)
	cfg := credstore.DynamicConfig{Prefix: "pg_", Leases: credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json"))}
	fillConfig(t, &cfg)
	d, err := credstore.NewDynamic(testContext(t), cfg)
	if err != nil {
		return // refused up front: fixed
	}
	defer d.Close()
	_, err = d.Credential(testContext(t), infoFor("alice"))
	t.Errorf("NewDynamic accepted the reserved prefix pg_; Credential then fails: %v", err)
}
