package policy_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

// The examples judge SQL the way the gateway does, with package
// policytest; exampleT stands in for the *testing.T a test would pass.

// ReadOnly refuses every change, and asks that the session start
// read-only on the server too. Restricted with When, it applies to one
// group only. It sees through the disguises of a write: a DELETE in a
// CTE, a second statement after a comment, a way out of read-only mode.
func ExampleReadOnly() {
	p := policy.FirstMatch(
		policy.When(policy.InGroup("analysts"), policy.ReadOnly{}),
		policy.Default("default", policy.Allow, ""),
	)
	analyst := policytest.New(exampleT, p).As(session.Identity{Subject: "alice", Groups: []string{"analysts"}})
	admin := policytest.New(exampleT, p).As(session.Identity{Subject: "root", Groups: []string{"dba"}})
	fmt.Println("analyst starts read-only:", analyst.Setup().ReadOnly)
	fmt.Println("admin starts read-only:", admin.Setup().ReadOnly)

	for _, sql := range []string{
		"SELECT * FROM orders",
		"WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
		"SELECT 1 /* ; */; dElEtE FROM orders",
		"SELECT * FROM orders FOR UPDATE",
		"BEGIN READ WRITE",
		"SET default_transaction_read_only = off",
	} {
		d := analyst.Decide(sql)
		if d.Verdict == policy.Allow {
			fmt.Println("allowed:", sql)
			continue
		}
		fmt.Printf("%v by %s: %s\n", d.Verdict, d.Rule, d.Reason)
	}
	fmt.Println(admin.Decide("DELETE FROM orders WHERE id = 1").Verdict)
	// Output:
	// analyst starts read-only: true
	// admin starts read-only: false
	// allowed: SELECT * FROM orders
	// block by read-only: This session is read-only: SELECT changes data.
	// block by read-only: This session is read-only: DELETE changes data.
	// block by read-only: This session is read-only: SELECT takes locks for writing.
	// block by read-only: This session is read-only: BEGIN of transaction_read_only is not allowed.
	// block by read-only: This session is read-only: SET of default_transaction_read_only is not allowed.
	// allow
}

// BlockAll refuses every statement, telling the client why: a database
// under maintenance.
func ExampleBlockAll() {
	s := policytest.New(exampleT, policy.BlockAll("The database is under maintenance until 06:00 UTC."))
	d := s.Decide("SELECT 1")
	fmt.Println(d.Verdict, d.Rule+":", d.Reason)
	// Output: block block-all: The database is under maintenance until 06:00 UTC.
}

// AllowAll allows every statement: no statement control at all (a
// gateway that only records, for instance). The gateway's own rules
// still apply, whatever the policy says.
func ExampleAllowAll() {
	s := policytest.New(exampleT, policy.AllowAll())
	for _, sql := range []string{
		"DROP TABLE orders",
		"SET standard_conforming_strings = off", // would make the server read SQL differently from the gateway
		"SET pgwarden.subject = 'bob'",          // carries the identity to the server
		"SELECT (",                              // cannot be parsed
	} {
		d := s.Decide(sql)
		fmt.Printf("%-5v %-17s %s\n", d.Verdict, d.Rule, sql)
	}
	// Output:
	// allow allow-all         DROP TABLE orders
	// block parser-settings   SET standard_conforming_strings = off
	// block identity-settings SET pgwarden.subject = 'bob'
	// block analysis          SELECT (
}

// BlockKinds refuses kinds of statements wherever they are: on their
// own, run by EXPLAIN ANALYZE, in a WITH clause, prepared for later.
func ExampleBlockKinds() {
	p := policy.FirstMatch(
		policy.BlockKinds(policy.KindDelete, policy.KindTruncate, policy.KindDDL),
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p)
	for _, sql := range []string{
		"SELECT * FROM orders",
		"EXPLAIN SELECT * FROM orders",
		"DELETE FROM orders WHERE id = 1",
		"EXPLAIN ANALYZE DELETE FROM orders",
		"WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
		"PREPARE purge AS DELETE FROM orders",
		"TRUNCATE orders",
		"DROP TABLE orders",
	} {
		d := s.Decide(sql)
		fmt.Printf("%-5v %-11s %s\n", d.Verdict, d.Rule, sql)
	}
	// Output:
	// allow default     SELECT * FROM orders
	// allow default     EXPLAIN SELECT * FROM orders
	// block block-kinds DELETE FROM orders WHERE id = 1
	// block block-kinds EXPLAIN ANALYZE DELETE FROM orders
	// block block-kinds WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone
	// block block-kinds PREPARE purge AS DELETE FROM orders
	// block block-kinds TRUNCATE orders
	// block block-kinds DROP TABLE orders
}

// BlockTables refuses statements that read or write matching relations,
// however they are named: qualified or not (an unqualified name is
// resolved through the session's search_path, here public), quoted, in
// a subquery, or prepared for later. A CTE of the same name is not the
// table.
func ExampleBlockTables() {
	p := policy.FirstMatch(
		policy.BlockTables("public.secrets", "audit.*"),
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p)
	for _, sql := range []string{
		"SELECT * FROM orders",
		"SELECT * FROM secrets",
		`SELECT * FROM "public"."secrets"`,
		"SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM secrets)",
		"PREPARE q AS SELECT * FROM secrets",
		"WITH secrets AS (SELECT 1) SELECT * FROM secrets",
		"INSERT INTO audit.log VALUES (1)",
	} {
		d := s.Decide(sql)
		fmt.Printf("%-5v %-12s %s\n", d.Verdict, d.Rule, sql)
	}
	fmt.Println(s.Decide("DELETE FROM audit.log").Reason)

	// In a session whose search_path does not hold public, "secrets" is
	// another table; until the session puts public in its path.
	reporting := policytest.New(exampleT, p).WithSearchPath("reporting")
	fmt.Println(reporting.Decide("SELECT * FROM secrets").Verdict)
	fmt.Println(reporting.Decide("SET search_path = reporting, public").Verdict)
	fmt.Println(reporting.Decide("SELECT * FROM secrets").Verdict)
	// Output:
	// allow default      SELECT * FROM orders
	// block block-tables SELECT * FROM secrets
	// block block-tables SELECT * FROM "public"."secrets"
	// block block-tables SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM secrets)
	// block block-tables PREPARE q AS SELECT * FROM secrets
	// allow default      WITH secrets AS (SELECT 1) SELECT * FROM secrets
	// block block-tables INSERT INTO audit.log VALUES (1)
	// Access to audit.log is not allowed.
	// allow
	// allow
	// block
}

// OnlyTables is an allow-list: it refuses statements that use a relation
// it does not list (or whose relations only the server knows: a user
// function, a DO block) and abstains on the others. Here an agent may
// read the reporting schema and the products table, and nothing else.
func ExampleOnlyTables() {
	p := policy.FirstMatch(
		policy.When(policy.Involves("report-agent"), policy.OnlyTables("reporting.*", "public.products")),
		policy.Default("default", policy.Allow, ""),
	)
	agent := policytest.New(exampleT, p).As(session.Identity{Subject: "alice",
		Chain: []session.Actor{{Subject: "report-agent"}}})
	for _, sql := range []string{
		"SELECT * FROM reporting.daily_sales",
		"SELECT p.name, d.total FROM products p JOIN reporting.daily_sales d USING (product_id)",
		"SELECT now()",
		"SELECT * FROM orders",
		"SELECT refresh_everything()",
	} {
		d := agent.Decide(sql)
		fmt.Printf("%-5v %-11s %s\n", d.Verdict, d.Rule, sql)
	}
	fmt.Println(agent.Decide("SELECT refresh_everything()").Reason)

	// alice herself is not restricted.
	alice := policytest.New(exampleT, p).As(session.Identity{Subject: "alice"})
	fmt.Println(alice.Decide("SELECT * FROM orders").Verdict)
	// Output:
	// allow default     SELECT * FROM reporting.daily_sales
	// allow default     SELECT p.name, d.total FROM products p JOIN reporting.daily_sales d USING (product_id)
	// allow default     SELECT now()
	// block only-tables SELECT * FROM orders
	// block only-tables SELECT refresh_everything()
	// The gateway cannot see which tables this statement uses (user function refresh_everything).
	// allow
}

// BlockFunctions refuses calls of the named functions, in any schema
// unless the name says which; DangerousFunctions lists those that escape
// a gateway's control (files, programs, other databases, backends,
// settings changed behind SET's back).
func ExampleBlockFunctions() {
	p := policy.FirstMatch(
		policy.BlockFunctions(policy.DangerousFunctions()...),
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p)
	for _, sql := range []string{
		"SELECT lower(name) FROM users",
		"SELECT pg_read_file('/etc/passwd')",
		"SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity",
		"SELECT * FROM dblink('host=elsewhere', 'DELETE FROM orders') AS t(x text)",
		"SELECT query_to_xml('DELETE FROM orders RETURNING *', true, false, '')",
	} {
		d := s.Decide(sql)
		fmt.Printf("%-5v %-15s %s\n", d.Verdict, d.Rule, sql)
	}
	fmt.Println(s.Decide("SELECT pg_read_file('/etc/passwd')").Reason)
	// Output:
	// allow default         SELECT lower(name) FROM users
	// block block-functions SELECT pg_read_file('/etc/passwd')
	// block block-functions SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity
	// block block-functions SELECT * FROM dblink('host=elsewhere', 'DELETE FROM orders') AS t(x text)
	// block block-functions SELECT query_to_xml('DELETE FROM orders RETURNING *', true, false, '')
	// Calling pg_read_file is not allowed.
}

// BlockSettings refuses changes of the named settings, however they are
// made (SET, set_config, RESET ALL); ProtectedSettings lists those that
// change who the session acts as or how it reads statements.
func ExampleBlockSettings() {
	p := policy.FirstMatch(
		policy.BlockSettings(policy.ProtectedSettings()...),
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p)
	for _, sql := range []string{
		"SET work_mem = '64MB'",
		"SET ROLE admin",
		"SET SESSION AUTHORIZATION postgres",
		"SELECT set_config('role', 'admin', false)",
		"SET TRANSACTION READ WRITE",
		"RESET ALL",
	} {
		d := s.Decide(sql)
		if d.Verdict == policy.Allow {
			fmt.Printf("allow: %s\n", sql)
			continue
		}
		fmt.Printf("%v: %s %s\n", d.Verdict, sql, strings.TrimPrefix(d.Reason, "Changing "))
	}
	// Output:
	// allow: SET work_mem = '64MB'
	// block: SET ROLE admin role (SET) is not allowed.
	// block: SET SESSION AUTHORIZATION postgres session_authorization (SET) is not allowed.
	// block: SELECT set_config('role', 'admin', false) role (set_config) is not allowed.
	// block: SET TRANSACTION READ WRITE transaction_read_only (SET TRANSACTION) is not allowed.
	// block: RESET ALL every setting (RESET) is not allowed.
}

// Func makes a policy of any function from a query to a decision; it
// abstains (the zero Decision) to let the next rule decide. Decide on the
// analysed statements, never on the SQL text, which is easily disguised.
func ExampleFunc() {
	noFastPath := policy.Func(func(ctx context.Context, q *policy.Query) (policy.Decision, error) {
		if q.Stage == policy.StageFunctionCall {
			return policy.Decision{Verdict: policy.Block, Rule: "no-fastpath",
				Reason: "Use SQL instead of the fast-path function interface."}, nil
		}
		return policy.Decision{}, nil
	})
	noCursorsForAgents := policy.Func(func(ctx context.Context, q *policy.Query) (policy.Decision, error) {
		if q.Session.Identity.Depth() == 0 {
			return policy.Decision{}, nil
		}
		for _, st := range q.Statements {
			if st.Is(policy.KindDeclare, policy.KindFetch) {
				return policy.Decision{Verdict: policy.Block, Rule: "no-cursors-for-agents",
					Reason: "Agents read whole results."}, nil
			}
		}
		return policy.Decision{}, nil
	})
	p := policy.FirstMatch(noFastPath, noCursorsForAgents, policy.Default("default", policy.Allow, ""))

	agent := policytest.New(exampleT, p).As(session.Identity{Subject: "alice", Chain: []session.Actor{{Subject: "agent"}}})
	for _, sql := range []string{"SELECT * FROM orders", "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM orders"} {
		d := agent.Decide(sql)
		fmt.Println(d.Verdict, d.Rule)
	}

	// A fast-path FunctionCall message has no SQL; the gateway asks as
	// follows (policytest judges SQL text only).
	call := &policy.Query{Session: agent.Info(), Protocol: session.ProtocolFunctionCall, Stage: policy.StageFunctionCall,
		FunctionOID: 1598, Statements: []*policy.Statement{{Kind: policy.KindFunctionCall, Command: "FUNCTION CALL"}}}
	d, _ := p.Decide(context.Background(), call)
	fmt.Println(d.Verdict, d.Rule)
	// Output:
	// allow default
	// block no-cursors-for-agents
	// block no-fastpath
}

// MatchRelation is how BlockTables, OnlyTables and Touches read their
// patterns.
func ExampleMatchRelation() {
	fmt.Println(policy.MatchRelation("audit.*", "audit", "log"))
	fmt.Println(policy.MatchRelation("*.secrets", "hr", "secrets"))
	fmt.Println(policy.MatchRelation("secrets", "public", "secrets"))
	fmt.Println(policy.MatchRelation("public.secrets", "hr", "secrets"))
	// Output:
	// true
	// true
	// true
	// false
}
