package credstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Querier runs a query: a *pgx.Conn, a *pgxpool.Pool or a pgx.Tx.
type Querier interface {
	// Query runs sql with args, as pgx does.
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// RolePrivileges is what a database role can do beyond reading and
// writing the tables it was granted, read from the catalog: its own
// attributes, those of every role it is a member of (directly or not),
// membership in the predefined roles that reach the server's files and
// programs, and the objects it owns.
type RolePrivileges struct {
	// Role is the role's name.
	Role string `json:"role"`
	// Exists is false when there is no such role.
	Exists bool `json:"exists"`
	// Superuser, CreateRole, CreateDB, BypassRLS and Replication are the
	// role's attributes, its own or those of a role it is a member of.
	Superuser   bool `json:"superuser"`
	CreateRole  bool `json:"createrole"`
	CreateDB    bool `json:"createdb"`
	BypassRLS   bool `json:"bypassrls"`
	Replication bool `json:"replication"`
	// Via names, for each attribute above that comes from a role the role
	// is a member of, that role ("superuser": "admins").
	Via map[string]string `json:"via,omitempty"`
	// ServerAccess are the predefined roles it is a member of that reach
	// the server's files or programs (pg_execute_server_program,
	// pg_read_server_files, pg_write_server_files).
	ServerAccess []string `json:"server_access,omitempty"`
	// OwnedObjects counts the objects it owns, in every database.
	OwnedObjects int `json:"owned_objects"`
}

// serverAccessRoles are predefined roles that reach outside the database.
var serverAccessRoles = []string{"pg_execute_server_program", "pg_read_server_files", "pg_write_server_files"}

// Escalations lists what makes the role more than least privilege (an
// attribute, through which role, server access); empty means none. Owning
// objects is reported by Excessive, not here: template roles often own
// nothing, and leases should not.
func (p RolePrivileges) Escalations() []string {
	var out []string
	add := func(attr string, has bool) {
		if !has {
			return
		}
		if via := p.Via[attr]; via != "" {
			attr += " (through " + via + ")"
		}
		out = append(out, attr)
	}
	add("superuser", p.Superuser)
	add("createrole", p.CreateRole)
	add("bypassrls", p.BypassRLS)
	add("replication", p.Replication)
	for _, r := range p.ServerAccess {
		out = append(out, "member of "+r)
	}
	return out
}

// Excessive lists every reason the role exceeds least privilege, for
// access reviews: its escalations, CREATEDB, and owning objects.
func (p RolePrivileges) Excessive() []string {
	out := p.Escalations()
	if p.CreateDB {
		if via := p.Via["createdb"]; via != "" {
			out = append(out, "createdb (through "+via+")")
		} else {
			out = append(out, "createdb")
		}
	}
	if p.OwnedObjects > 0 {
		out = append(out, fmt.Sprintf("owns %d objects", p.OwnedObjects))
	}
	return out
}

// privilegesQuery reads, for one role, itself and every role it is a
// member of, with their attributes, and the objects it owns.
const privilegesQuery = `WITH RECURSIVE up(oid, depth) AS (
	SELECT oid, 0 FROM pg_catalog.pg_roles WHERE rolname = $1
	UNION
	SELECT m.roleid, up.depth + 1 FROM pg_catalog.pg_auth_members m JOIN up ON m.member = up.oid WHERE up.depth < 64
)
SELECT r.rolname, min(up.depth), r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication,
	(SELECT count(*) FROM pg_catalog.pg_shdepend d
	 WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND d.refobjid = r.oid AND d.deptype = 'o')
FROM up JOIN pg_catalog.pg_roles r ON r.oid = up.oid
GROUP BY r.oid, r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication
ORDER BY 2, 1`

// CheckPrivileges reads the privileges of each role from the catalog.
func CheckPrivileges(ctx context.Context, q Querier, roles ...string) ([]RolePrivileges, error) {
	out := make([]RolePrivileges, 0, len(roles))
	for _, role := range roles {
		p := RolePrivileges{Role: role}
		rows, err := q.Query(ctx, privilegesQuery, role)
		if err != nil {
			return nil, fmt.Errorf("credstore: reading the privileges of %q: %w", role, err)
		}
		for rows.Next() {
			var name string
			var depth, owned int64
			var super, createRole, createDB, bypass, repl bool
			if err := rows.Scan(&name, &depth, &super, &createRole, &createDB, &bypass, &repl, &owned); err != nil {
				rows.Close()
				return nil, err
			}
			via := ""
			if depth == 0 {
				p.Exists, p.OwnedObjects = true, int(owned)
			} else {
				via = name
			}
			set := func(attr string, field *bool, has bool) {
				if has && !*field {
					*field = true
					if via != "" {
						if p.Via == nil {
							p.Via = map[string]string{}
						}
						p.Via[attr] = via
					}
				}
			}
			set("superuser", &p.Superuser, super)
			set("createrole", &p.CreateRole, createRole)
			set("createdb", &p.CreateDB, createDB)
			set("bypassrls", &p.BypassRLS, bypass)
			set("replication", &p.Replication, repl)
			if slices.Contains(serverAccessRoles, name) {
				p.ServerAccess = append(p.ServerAccess, name)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("credstore: reading the privileges of %q: %w", role, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// escalationError describes template roles that would give a lease more
// than least privilege.
func escalationError(ps []RolePrivileges) error {
	var bad []string
	for _, p := range ps {
		if !p.Exists {
			bad = append(bad, fmt.Sprintf("%q does not exist", p.Role))
		} else if e := p.Escalations(); len(e) > 0 {
			bad = append(bad, fmt.Sprintf("%q is %s", p.Role, strings.Join(e, ", ")))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("credstore: template roles refused: %s (set AllowPrivilegedTemplates to allow privileged ones)", strings.Join(bad, "; "))
}
