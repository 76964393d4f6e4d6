package policytest_test

import (
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

func TestSessionJudgesLikeTheGateway(t *testing.T) {
	p := policy.FirstMatch(
		policy.When(policy.InGroup("analysts"), policy.ReadOnly{}),
		policy.BlockTables("public.secrets"),
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(t, p)
	s.Expect("SELECT * FROM orders", policy.Allow, "default")
	s.Expect("SELECT * FROM secrets", policy.Block, "block-tables")
	s.Expect("SELECT (", policy.Block, "analysis")
	s.Expect("SET standard_conforming_strings = off", policy.Block, "parser-settings")

	analyst := s.As(session.Identity{Subject: "alice", Groups: []string{"analysts"}})
	analyst.Expect("DELETE FROM orders", policy.Block, "read-only")
	if !analyst.Setup().ReadOnly || s.Setup().ReadOnly {
		t.Errorf("setup: analyst %+v, other %+v; want read-only for the analyst only", analyst.Setup(), s.Setup())
	}

	// The session remembers: a PREPAREd DELETE is judged at EXECUTE.
	s.Expect("PREPARE p AS DELETE FROM orders", policy.Allow, "")
	d := analyst.Decide("EXECUTE p")
	if d.Verdict != policy.Block {
		// analyst is a copy made before the PREPARE: p is unknown to it,
		// which is refused too.
		t.Errorf("EXECUTE of an unknown statement: %+v", d)
	}
	// A search_path change widens where unqualified names may resolve.
	s.Expect("SET search_path = hidden, public", policy.Allow, "")
	if q := s.Query("SELECT * FROM secrets"); len(q.SearchPath) != 2 {
		t.Errorf("search path after SET: %v", q.SearchPath)
	}
}

func TestAbstainingPolicyIsRefused(t *testing.T) {
	s := policytest.New(t, policy.BlockKinds(policy.KindDelete))
	s.Expect("SELECT 1", policy.Block, "no-decision")
}

func TestTimeWindow(t *testing.T) {
	w, err := policy.ParseWindow("01:00-02:00 UTC")
	if err != nil {
		t.Fatal(err)
	}
	p := policy.FirstMatch(
		policy.Rule{Name: "ci-window", When: policy.All(policy.Subject("ci-bot"), policy.Not(policy.During(w))),
			Verdict: policy.Block, Reason: "The CI job runs between 01:00 and 02:00 UTC."},
		policy.Default("default", policy.Allow, ""),
	)
	ci := policytest.New(t, p).As(session.Identity{Subject: "ci-bot"})
	ci.At(time.Date(2026, 11, 25, 1, 30, 0, 0, time.UTC)).Expect("SELECT 1", policy.Allow, "default")
	ci.At(time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)).Expect("SELECT 1", policy.Block, "ci-window")
}
