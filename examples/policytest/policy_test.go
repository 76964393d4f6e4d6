package policyexample_test

import (
	"testing"
	"time"

	policyexample "github.com/pgwarden/pgwarden/examples/policytest"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

func TestAnalystsOnlyRead(t *testing.T) {
	s := policytest.New(t, policyexample.Policy()).As(session.Identity{Subject: "alice", Groups: []string{"analysts"}})
	s.Expect("SELECT count(*) FROM orders", policy.Allow, "default")
	s.Expect("DELETE FROM orders WHERE id = 1", policy.Block, "analysts-read-only")
	// The ways around a naive read-only check are closed too.
	s.Expect("WITH gone AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM gone", policy.Block, "analysts-read-only")
	s.Expect("SELECT 1 /* ; */; dElEtE FROM orders WHERE id = 1", policy.Block, "analysts-read-only")
	s.Expect("SET default_transaction_read_only = off", policy.Block, "analysts-read-only")
	if !s.Setup().ReadOnly {
		t.Error("analysts' sessions should start read-only on the server")
	}
}

func TestSecretsStaySecret(t *testing.T) {
	s := policytest.New(t, policyexample.Policy())
	s.Expect("SELECT * FROM secrets", policy.Block, "block-tables")
	s.Expect(`SELECT * FROM "public"."secrets"`, policy.Block, "block-tables")
	// A CTE of the same name is not the table...
	s.Expect("WITH secrets AS (SELECT 1) SELECT * FROM secrets", policy.Allow, "default")
	// ...but a CTE that reads the table is.
	s.Expect("WITH s AS (SELECT * FROM secrets) SELECT * FROM s", policy.Block, "block-tables")
	// Unqualified names follow the session's search_path.
	hidden := policytest.New(t, policyexample.Policy()).WithSearchPath("reporting")
	hidden.Expect("SELECT * FROM secrets", policy.Allow, "default")
	hidden.Expect("SET search_path = reporting, public", policy.Allow, "default")
	hidden.Expect("SELECT * FROM secrets", policy.Block, "block-tables")
}

func TestCIWindow(t *testing.T) {
	ci := policytest.New(t, policyexample.Policy()).As(session.Identity{Subject: "ci-bot"})
	ci.At(time.Date(2026, 11, 25, 1, 15, 0, 0, time.UTC)).Expect("UPDATE jobs SET done = true WHERE id = 7", policy.Allow, "default")
	ci.At(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)).Expect("SELECT 1", policy.Block, "ci-window")
}

func TestCompromisedAgentIsCutOff(t *testing.T) {
	agent := policytest.New(t, policyexample.Policy()).As(session.Identity{Subject: "alice",
		Chain: []session.Actor{{Subject: "report-agent", Issuer: "https://idp.example"}}})
	d := agent.Expect("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", policy.Terminate, "admin-functions")
	if d.Suspend != time.Hour {
		t.Errorf("suspend = %v, want 1h", d.Suspend)
	}
	agent.Expect("DELETE FROM orders", policy.Block, "no-unbounded-writes")
}
