package policytest

import (
	"context"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/internal/analysis"
	"github.com/pgwarden/pgwarden/internal/judge"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// Session is a simulated client session. Its methods that take SQL judge it
// the way the gateway judges a simple-protocol Query message. A Session is
// not safe for concurrent use.
type Session struct {
	t      testing.TB
	policy policy.Policy
	info   *session.Info
	now    time.Time
	names  judge.Names
	an     *analysis.Analyzer
}

// New returns a session of the identity {Subject: "test", Issuer:
// "policytest"} on database "app" as upstream role "app", whose
// search_path holds the schema public, judged by p at the current time.
func New(t testing.TB, p policy.Policy) *Session {
	return &Session{
		t:      t,
		policy: p,
		info: &session.Info{ID: "policytest", Identity: session.Identity{Subject: "test", Issuer: "policytest"},
			User: "test", Database: "app", UpstreamUser: "app", StartedAt: time.Now()},
		names: judge.Names{SearchPath: []string{"public"}},
		an:    analysis.New(analysis.Limits{}, 0),
	}
}

// As returns a copy of the session acting for id.
func (s *Session) As(id session.Identity) *Session {
	c := s.clone()
	c.info.Identity = id
	c.info.User = id.Subject
	return c
}

// At returns a copy of the session whose statements arrive at t.
func (s *Session) At(t time.Time) *Session {
	c := s.clone()
	c.now = t
	return c
}

// WithSearchPath returns a copy of the session whose search_path holds
// schemas (nil: unknown, any schema).
func (s *Session) WithSearchPath(schemas ...string) *Session {
	c := s.clone()
	c.names.SearchPath = schemas
	return c
}

// Info returns the session's information (the copy the policy sees).
func (s *Session) Info() *session.Info { return s.info }

func (s *Session) clone() *Session {
	c := *s
	c.info = s.info.Clone()
	return &c
}

// Query returns the query the gateway would put to the policy for sql,
// without deciding or remembering anything. It fails the test when the
// gateway cannot analyse sql.
func (s *Session) Query(sql string) *policy.Query {
	s.t.Helper()
	o := judge.Offline{Policy: s.policy, Info: s.info, Names: s.names, Analyzer: s.an}
	q, _, err := o.Query(sql, s.time())
	if err != nil {
		s.t.Fatalf("policytest: %v", err)
	}
	return q
}

// Decide returns the gateway's decision about sql, as a simple-protocol
// Query, and remembers its effect on the session when it is allowed. A
// policy error fails the test (the gateway would refuse the statement).
func (s *Session) Decide(sql string) policy.Decision {
	s.t.Helper()
	o := judge.Offline{Policy: s.policy, Info: s.info, Names: s.names, Analyzer: s.an}
	d, err := o.Decide(context.Background(), sql, s.time())
	if err != nil {
		s.t.Errorf("policytest: the policy failed on %q: %v", sql, err)
	}
	s.names = o.Names
	return d
}

// Expect checks that sql gets verdict from the rule named rule (any rule
// when rule is empty), and returns the decision.
func (s *Session) Expect(sql string, verdict policy.Verdict, rule string) policy.Decision {
	s.t.Helper()
	d := s.Decide(sql)
	if d.Verdict != verdict || (rule != "" && d.Rule != rule) {
		s.t.Errorf("policytest: %q: got %v by rule %q (%s); want %v by rule %q", sql, d.Verdict, d.Rule, d.Reason, verdict, ruleOrAny(rule))
	}
	return d
}

// ExpectMasks checks that sql is masked with exactly the given columns
// (schema.table.column), in any order.
func (s *Session) ExpectMasks(sql string, columns ...string) policy.Decision {
	s.t.Helper()
	d := s.Decide(sql)
	if d.Verdict != policy.Mask {
		s.t.Errorf("policytest: %q: got %v by rule %q; want mask", sql, d.Verdict, d.Rule)
		return d
	}
	got := map[string]bool{}
	for _, m := range d.Masks {
		got[m.Column] = true
	}
	want := map[string]bool{}
	for _, c := range columns {
		want[c] = true
	}
	for c := range want {
		if !got[c] {
			s.t.Errorf("policytest: %q: column %s is not masked (masks %v)", sql, c, d.Masks)
		}
	}
	for c := range got {
		if !want[c] {
			s.t.Errorf("policytest: %q: column %s is masked but not expected", sql, c)
		}
	}
	return d
}

// Setup returns what the policy asks of this session's upstream connection
// (for example a read-only session).
func (s *Session) Setup() policy.Setup {
	return policy.SetupFor(s.policy, &policy.Query{Session: s.info, Time: s.time()})
}

func (s *Session) time() time.Time {
	if s.now.IsZero() {
		return time.Now()
	}
	return s.now
}

func ruleOrAny(rule string) string {
	if rule == "" {
		return "(any)"
	}
	return rule
}
