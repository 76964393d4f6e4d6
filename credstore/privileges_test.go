package credstore_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/credstore"
)

// adminConn connects to the app database as the admin role (not a
// superuser: CheckPrivileges must work with what a gateway has).
func adminConn(t testing.TB) *pgx.Conn {
	t.Helper()
	setup(t)
	conn, err := pgx.Connect(testContext(t), adminDSN().Reveal())
	if err != nil {
		t.Fatalf("connecting as %s: %v", adminRole, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CheckPrivileges reads each escalating attribute set on the role itself
// and through a membership (Via names the role it comes from), the
// server-access predefined roles it is a member of, the objects it owns in
// every database, and Exists=false for a role that does not exist. The
// results come in the order asked.
func TestCheckPrivileges(t *testing.T) {
	conn := adminConn(t)
	roles := []string{"app_reader", "super_role", "danger_super_member", "danger_admin", "priv_chain",
		"priv_bypass", "priv_via_bypass", "priv_repl", "priv_via_repl", "priv_createdb",
		"danger_member", "priv_files", "priv_owner", "no_such_role"}
	ps, err := credstore.CheckPrivileges(testContext(t), conn, roles...)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != len(roles) {
		t.Fatalf("%d results for %d roles", len(ps), len(roles))
	}
	got := map[string]credstore.RolePrivileges{}
	for i, p := range ps {
		if p.Role != roles[i] {
			t.Errorf("result %d is for %q, want %q", i, p.Role, roles[i])
		}
		got[p.Role] = p
	}
	for _, tc := range []struct {
		role        string
		check       func(p credstore.RolePrivileges) bool
		escalations []string
		excessive   []string
	}{
		{"app_reader", func(p credstore.RolePrivileges) bool { return p.Exists && p.Via == nil }, nil, nil},
		{"super_role", func(p credstore.RolePrivileges) bool { return p.Superuser && p.Via["superuser"] == "" },
			[]string{"superuser"}, []string{"superuser"}},
		{"danger_super_member", func(p credstore.RolePrivileges) bool {
			return p.Superuser && p.Via["superuser"] == "super_role"
		}, []string{"superuser (through super_role)"}, nil},
		{"danger_admin", func(p credstore.RolePrivileges) bool { return p.CreateRole && p.Via["createrole"] == "" },
			[]string{"createrole"}, nil},
		{"priv_chain", func(p credstore.RolePrivileges) bool { return p.CreateRole && p.Via["createrole"] == "danger_admin" },
			[]string{"createrole (through danger_admin)"}, nil},
		{"priv_bypass", func(p credstore.RolePrivileges) bool { return p.BypassRLS }, []string{"bypassrls"}, nil},
		{"priv_via_bypass", func(p credstore.RolePrivileges) bool { return p.BypassRLS && p.Via["bypassrls"] == "priv_bypass" },
			[]string{"bypassrls (through priv_bypass)"}, nil},
		{"priv_repl", func(p credstore.RolePrivileges) bool { return p.Replication }, []string{"replication"}, nil},
		{"priv_via_repl", func(p credstore.RolePrivileges) bool { return p.Replication && p.Via["replication"] == "priv_repl" },
			[]string{"replication (through priv_repl)"}, nil},
		{"priv_createdb", func(p credstore.RolePrivileges) bool { return p.CreateDB && !p.Superuser },
			nil, []string{"createdb"}},
		{"danger_member", func(p credstore.RolePrivileges) bool {
			return slices.Equal(p.ServerAccess, []string{"pg_execute_server_program"}) && !p.Superuser
		}, []string{"member of pg_execute_server_program"}, nil},
		{"priv_files", func(p credstore.RolePrivileges) bool {
			s := slices.Sorted(slices.Values(p.ServerAccess))
			return slices.Equal(s, []string{"pg_read_server_files", "pg_write_server_files"})
		}, nil, nil},
		{"priv_owner", func(p credstore.RolePrivileges) bool { return p.OwnedObjects == 2 }, nil, []string{"owns 2 objects"}},
		{"no_such_role", func(p credstore.RolePrivileges) bool { return !p.Exists && !p.Superuser && p.OwnedObjects == 0 }, nil, nil},
	} {
		p := got[tc.role]
		if tc.role != "no_such_role" && !p.Exists {
			t.Errorf("%s: Exists is false", tc.role)
		}
		if !tc.check(p) {
			t.Errorf("%s: %+v", tc.role, p)
		}
		esc := p.Escalations()
		if tc.escalations != nil && !slices.Equal(esc, tc.escalations) {
			t.Errorf("%s: Escalations() = %q, want %q", tc.role, esc, tc.escalations)
		}
		if tc.escalations == nil && tc.role != "priv_files" && len(esc) != 0 {
			t.Errorf("%s: Escalations() = %q, want none", tc.role, esc)
		}
		exc := p.Excessive()
		for _, want := range append(slices.Clone(tc.escalations), tc.excessive...) {
			if !slices.Contains(exc, want) {
				t.Errorf("%s: Excessive() = %q, want it to hold %q", tc.role, exc, want)
			}
		}
	}
	if esc := got["priv_files"].Escalations(); !slices.Contains(esc, "member of pg_read_server_files") ||
		!slices.Contains(esc, "member of pg_write_server_files") {
		t.Errorf("priv_files: Escalations() = %q", esc)
	}
	if exc := got["app_reader"].Excessive(); len(exc) != 0 {
		t.Errorf("app_reader (SELECT on one table) is flagged: %q", exc)
	}
	if exc := got["priv_createdb"].Escalations(); len(exc) != 0 {
		t.Errorf("CREATEDB (not inherited, cannot escalate) is an escalation: %q", exc)
	}
}

// A cancelled context is an error, not an empty result.
func TestCheckPrivilegesCancelled(t *testing.T) {
	conn := adminConn(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ps, err := credstore.CheckPrivileges(ctx, conn, "super_role"); err == nil {
		t.Errorf("a cancelled context returned %+v", ps)
	}
}

// Dynamic.Privileges reads through the admin connection.
func TestDynamicPrivileges(t *testing.T) {
	d := newDynamic(t, credstore.DynamicConfig{Leases: credstore.NewFileLeases(t.TempDir() + "/leases.json")})
	ps, err := d.Privileges(testContext(t), "danger_super_member", "app_reader")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || !ps[0].Superuser || ps[0].Via["superuser"] != "super_role" || len(ps[1].Escalations()) != 0 {
		t.Errorf("Privileges = %+v", ps)
	}
	if e := strings.Join(ps[0].Escalations(), ","); !strings.Contains(e, "super_role") {
		t.Errorf("Escalations %q do not name the role it comes through", e)
	}
}

// TestExcessiveSaysWhereCreateDBComesFrom: like the escalations, CREATEDB
// names the role it comes through.
func TestExcessiveSaysWhereCreateDBComesFrom(t *testing.T) {
	p := credstore.RolePrivileges{Role: "pgw_x", Exists: true, CreateDB: true, Via: map[string]string{"createdb": "app_build"}}
	if got := p.Excessive(); !slices.Equal(got, []string{"createdb (through app_build)"}) {
		t.Errorf("Excessive() = %q, want [createdb (through app_build)]", got)
	}
}
