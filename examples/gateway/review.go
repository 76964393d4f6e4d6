package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// The access review answers "who can reach the database, as which role,
// with which privileges, and is it still in use?". It is built on demand
// (GET /leases on the admin API, `pgwarden review`) from:
//
//   - the dynamic store's leases, active and ended (the lease store keeps
//     ended file leases 30 days, table leases until deleted), each with
//     its identity and delegation chain, templates and times;
//   - the live sessions of this gateway: an active lease's session gives
//     its last statement time, and sessions on static credentials get rows
//     of their own;
//   - the static credentials (credentials.static), one row each.
//
// A row that is alive (an active lease, a live session) is stale when
// nothing was sent for longer than the threshold: since the last
// statement, or the session's start when it sent none, or the lease's
// issue when this gateway has no session for it. A row is over-privileged
// with the reasons of credstore.RolePrivileges.Excessive, read from the
// catalog now: for a lease, those of its role (active leases) and of its
// template roles; for static credentials and their sessions, those of the
// role. The catalog is read through the dynamic store's admin connection
// when there is one; without it (static credentials only), the gateway
// logs in as each static credential (to the database of one of its live
// sessions, else postgres, else template1) and reads its own role, which
// any role may do.

// reviewReport is the access review.
type reviewReport struct {
	GeneratedAt time.Time `json:"generated_at"`
	// StaleAfter is the staleness threshold, as a Go duration.
	StaleAfter string `json:"stale_after"`
	// Rows are the leases (oldest first), then the static credentials (in
	// configuration order), then the live sessions on static credentials
	// (oldest first).
	Rows []reviewRow `json:"rows"`
	// Grants are the just-in-time grants of approvals that are active
	// (see approvals).
	Grants []approval.Grant `json:"grants,omitempty"`
}

// Kinds of review rows.
const (
	rowLease   = "lease"   // a just-in-time lease
	rowStatic  = "static"  // a static credential
	rowSession = "session" // a live session that has no lease row
)

// reviewRow is one line of the access review.
type reviewRow struct {
	// Kind is lease, static or session.
	Kind string `json:"kind"`
	// Role is the database role: the lease's, the static credential's,
	// the session's.
	Role string `json:"role"`
	// Subject, Issuer and Chain are who the lease or session acts for.
	Subject string      `json:"subject,omitempty"`
	Issuer  string      `json:"issuer,omitempty"`
	Chain   []actorJSON `json:"chain,omitempty"`
	// Groups and Subjects are whom a static credential is for (neither:
	// everybody).
	Groups   []string `json:"groups,omitempty"`
	Subjects []string `json:"subjects,omitempty"`
	// Templates are a lease's template roles.
	Templates []string `json:"templates,omitempty"`
	Gateway   string   `json:"gateway,omitempty"`
	Database  string   `json:"database,omitempty"`
	// IssuedAt, ExpiresAt, EndedAt and EndReason are a lease's.
	IssuedAt  time.Time `json:"issued_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	EndReason string    `json:"end_reason,omitempty"`
	// Active is true for a lease not ended, a static credential (it is
	// configured) and a live session.
	Active bool `json:"active"`
	// Sessions counts the live sessions on a static credential.
	Sessions int `json:"sessions,omitempty"`
	// The live session of a lease, or of a session row.
	SessionID        string    `json:"session_id,omitempty"`
	SessionState     string    `json:"session_state,omitempty"`
	SessionStartedAt time.Time `json:"session_started_at,omitzero"`
	LastStatementAt  time.Time `json:"last_statement_at,omitzero"`
	// IdleFor is how long an alive row has been idle (see Stale).
	IdleFor string `json:"idle_for,omitempty"`
	// Stale: alive and idle for longer than the threshold.
	Stale bool `json:"stale"`
	// OverPrivileged: Reasons is not empty.
	OverPrivileged bool     `json:"over_privileged"`
	Reasons        []string `json:"over_privileged_reasons,omitempty"`
	// CheckError says why privileges could not be (fully) read.
	CheckError string `json:"privilege_check_error,omitempty"`
}

// review builds the access review at now, with the staleness threshold
// staleAfter.
func (g *gateway) review(ctx context.Context, staleAfter time.Duration, now time.Time) (*reviewReport, error) {
	live := g.proxy.Sessions()
	slices.SortFunc(live, func(x, y proxy.SessionStatus) int { return x.Info.StartedAt.Compare(y.Info.StartedAt) })
	byLease := make(map[string]proxy.SessionStatus)
	for _, s := range live {
		if s.Info.Lease != "" {
			byLease[s.Info.Lease] = s
		}
	}
	shown := make(map[string]bool) // sessions shown in a lease row
	var rows []reviewRow
	if g.dynamic != nil {
		leases, err := g.dynamic.Leases(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the leases: %w", err)
		}
		for _, l := range leases {
			row := reviewRow{Kind: rowLease, Role: l.Role, Subject: l.Identity.Subject, Issuer: l.Identity.Issuer,
				Chain: chainJSON(l.Identity), Templates: l.Templates, Gateway: l.Gateway, Database: l.Database,
				IssuedAt: utc(l.IssuedAt), ExpiresAt: utc(l.ExpiresAt), EndedAt: utc(l.EndedAt),
				EndReason: l.EndReason, Active: l.Active()}
			if row.Active {
				last := l.IssuedAt
				if s, ok := byLease[l.Role]; ok {
					shown[s.Info.ID] = true
					last = row.setSession(s)
				}
				row.markStale(last, now, staleAfter)
			}
			rows = append(rows, row)
		}
	}
	if g.static != nil {
		for _, e := range g.static.Entries {
			row := reviewRow{Kind: rowStatic, Role: e.User, Groups: e.Groups, Subjects: e.Subjects, Active: true}
			for _, s := range live {
				if s.Info.Lease == "" && s.Info.UpstreamUser == e.User {
					row.Sessions++
				}
			}
			rows = append(rows, row)
		}
	}
	for _, s := range live {
		if shown[s.Info.ID] || s.Info.UpstreamUser == "" {
			continue
		}
		id := s.Info.Identity
		row := reviewRow{Kind: rowSession, Role: s.Info.UpstreamUser, Subject: id.Subject, Issuer: id.Issuer,
			Chain: chainJSON(id), Database: s.Info.Database, Active: true}
		row.markStale(row.setSession(s), now, staleAfter)
		rows = append(rows, row)
	}
	g.checkPrivileges(ctx, rows, live)
	if rows == nil {
		rows = []reviewRow{}
	}
	report := &reviewReport{GeneratedAt: now.UTC(), StaleAfter: staleAfter.String(), Rows: rows}
	if g.approvals != nil {
		grants, err := g.approvals.Grants(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the approval grants: %w", err)
		}
		report.Grants = grants
	}
	return report, nil
}

// setSession fills in the row's session fields from s, and returns when
// the session was last active: its last statement, else its start.
func (r *reviewRow) setSession(s proxy.SessionStatus) time.Time {
	r.SessionID, r.SessionState = s.Info.ID, s.State
	r.SessionStartedAt, r.LastStatementAt = utc(s.Info.StartedAt), utc(s.LastStatement)
	if s.LastStatement.IsZero() {
		return s.Info.StartedAt
	}
	return s.LastStatement
}

// markStale sets IdleFor and Stale for a row last active at last.
func (r *reviewRow) markStale(last, now time.Time, staleAfter time.Duration) {
	idle := max(now.Sub(last), 0)
	r.IdleFor = idle.Round(time.Second).String()
	r.Stale = idle > staleAfter
}

// privilegeResult is a role's privileges, or why they could not be read.
type privilegeResult struct {
	p   credstore.RolePrivileges
	err error
}

// checkPrivileges reads the privileges of the rows' roles (see the
// comment at the top of this file) and sets OverPrivileged, Reasons and
// CheckError.
func (g *gateway) checkPrivileges(ctx context.Context, rows []reviewRow, live []proxy.SessionStatus) {
	var roles []string
	for _, r := range rows {
		if r.Kind != rowLease || r.Active {
			roles = append(roles, r.Role)
		}
		roles = append(roles, r.Templates...)
	}
	slices.Sort(roles)
	roles = slices.Compact(roles)
	results := make(map[string]privilegeResult, len(roles))
	switch {
	case g.dynamic != nil:
		for _, role := range roles {
			ps, err := g.dynamic.Privileges(ctx, role)
			if err == nil && len(ps) != 1 {
				err = errors.New("no answer")
			}
			if err != nil {
				results[role] = privilegeResult{err: err}
				continue
			}
			results[role] = privilegeResult{p: ps[0]}
		}
	case g.static != nil:
		for _, e := range g.static.Entries {
			if _, done := results[e.User]; done {
				continue // the first entry with this role answers
			}
			var dbs []string
			for _, s := range live {
				if s.Info.UpstreamUser == e.User && s.Info.Database != "" {
					dbs = append(dbs, s.Info.Database)
				}
			}
			p, err := g.loginPrivileges(ctx, e, append(dbs, "postgres", "template1"))
			results[e.User] = privilegeResult{p: p, err: err}
		}
	}
	for i := range rows {
		r := &rows[i]
		var problems []string
		addReasons := func(role, prefix string, skip []string) {
			res, ok := results[role]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s%q: not checked", prefix, role))
			case res.err != nil:
				problems = append(problems, fmt.Sprintf("%s%q: %v", prefix, role, res.err))
			case !res.p.Exists:
				problems = append(problems, fmt.Sprintf("%s%q does not exist", prefix, role))
			default:
				for _, reason := range res.p.Excessive() {
					// A template's attribute shows on the lease's role
					// too, as "(through template)".
					if !slices.Contains(skip, reason) && !slices.Contains(skip, reason+" (through "+role+")") {
						r.Reasons = append(r.Reasons, prefix+reason)
					}
				}
			}
		}
		if r.Kind != rowLease || r.Active {
			addReasons(r.Role, "", nil)
		}
		own := slices.Clone(r.Reasons)
		for _, t := range r.Templates {
			addReasons(t, "template "+t+": ", own)
		}
		r.OverPrivileged = len(r.Reasons) > 0
		r.CheckError = strings.Join(problems, "; ")
	}
}

// loginPrivileges logs in to the upstream server as the static credential
// e, trying databases in order until one lets it in, and reads its role's
// privileges. A wrong password stops at the first try.
func (g *gateway) loginPrivileges(ctx context.Context, e credstore.StaticEntry, databases []string) (credstore.RolePrivileges, error) {
	var errs []error
	tried := map[string]bool{}
	for _, db := range databases {
		if tried[db] {
			continue
		}
		tried[db] = true
		cc, err := upstreamConnConfig(g.proxy.Upstream, e.User, e.Password, db)
		if err != nil {
			return credstore.RolePrivileges{}, err
		}
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			errs = append(errs, err)
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "28P01" {
				break
			}
			continue
		}
		ps, err := credstore.CheckPrivileges(ctx, conn, e.User)
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return credstore.RolePrivileges{}, err
		}
		return ps[0], nil
	}
	// pgconn's connect errors name the user and database, never the
	// password.
	return credstore.RolePrivileges{}, fmt.Errorf("logging in as the static credential: %w", errors.Join(errs...))
}

// upstreamConnConfig returns a pgx configuration that reaches the
// upstream server as the proxy does (address, TLS, connect timeout) and
// logs in as user to database.
func upstreamConnConfig(u proxy.Upstream, user string, password session.Secret, database string) (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(u.Address, "/") {
		port, err := socketPort(u.Address)
		if err != nil {
			return nil, err
		}
		cc.Host, cc.Port = filepath.Dir(u.Address), port
	} else {
		host, port, err := net.SplitHostPort(u.Address)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("upstream port: %w", err)
		}
		cc.Host, cc.Port = host, uint16(n)
	}
	cc.TLSConfig = nil
	if u.TLS != nil {
		cc.TLSConfig = u.TLS.Clone()
	}
	cc.Fallbacks = nil
	cc.User, cc.Password, cc.Database = user, password.Reveal(), database
	cc.ConnectTimeout = cmp.Or(u.ConnectTimeout, 10*time.Second)
	cc.RuntimeParams = map[string]string{"application_name": "pgwarden-review"}
	return cc, nil
}
