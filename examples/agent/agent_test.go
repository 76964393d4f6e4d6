package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

// TestMain lets this test binary play the child: runStory starts
// os.Executable() (here, the test binary) with PGWARDEN_AGENT_ROLE=child.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == roleChild {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// wantChain is the child's delegation chain, person first.
func wantChain() []string { return []string{person, parentAgent, childAgent} }

// TestNestedAgentStory runs the whole story, the child as a real process,
// and checks what it established: the child's chain and its credential,
// masking, the read-only rule, the held writes (one approved and run, one
// denied), revocation, and the recording. It asserts nothing about time.
func TestNestedAgentStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var out bytes.Buffer
	res, err := runStory(ctx, &out, dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the story's output:\n%s", out.String())
		}
	})
	if err != nil {
		t.Fatalf("runStory: %v", err)
	}
	t.Run("delegation", func(t *testing.T) { checkDelegation(t, res) })
	t.Run("masking", func(t *testing.T) { checkMasking(t, res.Child) })
	t.Run("read-only", func(t *testing.T) { wantRefusal(t, "DELETE", res.Child.Delete, "42501", ruleReadOnly) })
	t.Run("approvals", func(t *testing.T) { checkApprovals(t, res) })
	t.Run("revocation", func(t *testing.T) { checkRevocation(t, res) })
	t.Run("recording", func(t *testing.T) { checkRecording(t, res.Recording) })
	t.Run("no secrets", func(t *testing.T) { checkNoSecrets(t, dir, out.String()) })
}

func checkDelegation(t *testing.T, res *storyResult) {
	if want := []string{person, parentAgent}; !slices.Equal(res.ParentChain, want) {
		t.Errorf("the parent's session has chain %v, want %v", res.ParentChain, want)
	}
	c := res.Child
	if !slices.Equal(c.Chain, wantChain()) {
		t.Errorf("the child's session has chain %v, want %v", c.Chain, wantChain())
	}
	if want := "pgwarden:alice via child-agent | child-agent"; c.AppName != want {
		t.Errorf("application_name = %q, want %q", c.AppName, want)
	}
	if !strings.HasPrefix(c.SessionUser, "pgw_") || c.SessionUser != res.Lease.Role {
		t.Errorf("the child's session_user is %q, want its own lease's role (%q)", c.SessionUser, res.Lease.Role)
	}
	if got := chainOf(res.Lease.Identity); !slices.Equal(got, wantChain()) {
		t.Errorf("the child's lease was issued to %v, want %v", got, wantChain())
	}
}

func checkMasking(t *testing.T, c childReport) {
	if len(c.Emails) != len(plaintextEmails()) {
		t.Fatalf("the child saw %d e-mail addresses, want %d", len(c.Emails), len(plaintextEmails()))
	}
	for i, e := range c.Emails {
		_, domain, _ := strings.Cut(plaintextEmails()[i], "@")
		if e != "***@"+domain {
			t.Errorf("customer %d: the child saw %q, want %q", i+1, e, "***@"+domain)
		}
	}
	wantRefusal(t, "the filter on email", c.Inference, "42501", "mask-inference")
}

func checkApprovals(t *testing.T, res *storyResult) {
	if len(res.Approvals) != 2 {
		t.Fatalf("the desk decided %d requests, want 2: %+v", len(res.Approvals), res.Approvals)
	}
	update, insert := res.Approvals[0], res.Approvals[1]
	for _, o := range res.Approvals {
		if !slices.Equal(o.Chain, wantChain()) || o.Rule != ruleApproval {
			t.Errorf("request %s: chain %v, rule %q; want %v, %q", o.ID, o.Chain, o.Rule, wantChain(), ruleApproval)
		}
		if !strings.Contains(o.SelfRefusal, "may not approve its own request") {
			t.Errorf("request %s: the parent approving it itself got %q, want the self-approval refusal", o.ID, o.SelfRefusal)
		}
	}
	if !strings.HasPrefix(update.SQL, "UPDATE") || !slices.Equal(update.Params, []string{"shipped", "2"}) || !update.Approved {
		t.Errorf("first request: %+v, want the UPDATE with [shipped 2], approved", update)
	}
	if !strings.HasPrefix(insert.SQL, "INSERT") || insert.Approved {
		t.Errorf("second request: %+v, want the INSERT, denied", insert)
	}
	c := res.Child
	if c.UpdateErr != nil || c.UpdateTag != "UPDATE 1" || c.StatusAfter != "shipped" {
		t.Errorf("the approved UPDATE: tag %q, error %+v, status afterwards %q; want UPDATE 1 and shipped", c.UpdateTag, c.UpdateErr, c.StatusAfter)
	}
	wantRefusal(t, "the denied INSERT", c.InsertErr, "42501", ruleApproval)
	if c.InsertErr != nil && !strings.Contains(c.InsertErr.Detail, "Denied (request "+insert.ID+") by bob") {
		t.Errorf("the denied INSERT's detail is %q, want bob's denial of request %s", c.InsertErr.Detail, insert.ID)
	}
}

func checkRevocation(t *testing.T, res *storyResult) {
	if res.Revoked != 2 {
		t.Errorf("Revoke ended %d sessions, want 2 (the parent's and the child's)", res.Revoked)
	}
	c := res.Child
	if e := c.End; e == nil || e.Severity != "FATAL" || e.Code != "28000" || !strings.Contains(e.Message, "revoked") || e.Detail != revokeReason {
		t.Errorf("the child's session ended with %+v, want FATAL 28000 revoked, detail %q", e, revokeReason)
	}
	if e := c.Reconnect; e == nil || e.Code != "28000" || !strings.Contains(e.Message, "revoked") {
		t.Errorf("the child logging in again got %+v, want FATAL 28000 revoked", e)
	}
	if res.ChildExit != 0 {
		t.Errorf("the child exited with status %d, want 0 (its session ended as revoked)", res.ChildExit)
	}
	if e := res.ParentEnd; e == nil || e.Code != "28000" {
		t.Errorf("the parent's own session ended with %+v, want FATAL 28000", e)
	}
	if res.Lease.Active() || res.Lease.EndReason != "revoked" || res.RoleExists {
		t.Errorf("the child's lease: active %v, end reason %q, role exists %v; want ended, revoked, dropped",
			res.Lease.Active(), res.Lease.EndReason, res.RoleExists)
	}
}

func checkRecording(t *testing.T, f recordingFacts) {
	if f.VerifyErr != "" {
		t.Errorf("Verify: %s", f.VerifyErr)
	}
	if !slices.Equal(f.Chain, wantChain()) {
		t.Errorf("the recorded session's chain is %v, want %v", f.Chain, wantChain())
	}
	for _, s := range f.Statements {
		if !slices.Equal(s.Chain, wantChain()) {
			t.Errorf("statement %d is bound to chain %v, want %v", s.Seq, s.Chain, wantChain())
		}
	}
	want := []string{
		"parse allow reads", "bind allow reads", // who am I
		"parse allow reads", "bind allow reads", // customers
		"parse block mask-inference",
		"query block " + ruleReadOnly,
		"parse allow " + ruleApproval, "bind allow " + ruleApproval, // approved UPDATE
		"parse allow reads", "bind allow reads", // order 2
		"parse allow " + ruleApproval, "bind block " + ruleApproval, // denied INSERT
		"query allow reads", // the wait
	}
	var got []string
	for _, s := range f.Statements {
		got = append(got, s.Stage+" "+s.Verdict+" "+s.Rule)
	}
	if !slices.Equal(got, want) {
		t.Errorf("recorded statements (stage verdict rule):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var actions []session.ApprovalAction
	for _, a := range f.Approvals {
		actions = append(actions, a.Action)
	}
	wantActions := []session.ApprovalAction{session.ApprovalRequested, session.ApprovalApproved, session.ApprovalRequested, session.ApprovalDenied}
	if !slices.Equal(actions, wantActions) {
		t.Errorf("recorded approvals %v, want %v", actions, wantActions)
	}
	wantCreds := []session.CredentialAction{session.CredentialIssued, session.CredentialRevoked}
	if !slices.Equal(f.Credential, wantCreds) {
		t.Errorf("recorded credential events %v, want %v", f.Credential, wantCreds)
	}
	if f.EndReason != session.EndRevoked || f.EndCode != "28000" {
		t.Errorf("recorded end %q %q, want revoked 28000", f.EndReason, f.EndCode)
	}
	if f.Involving != 2 {
		t.Errorf("%d recorded sessions involve %s, want 2", f.Involving, parentAgent)
	}
}

// checkNoSecrets looks for tokens (a JWT starts with eyJ) and the
// customers' addresses in the output, the gateway's log and the
// recordings.
func checkNoSecrets(t *testing.T, dir, output string) {
	texts := map[string]string{"the output": output}
	files, err := filepath.Glob(filepath.Join(dir, "recordings", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in %s (%v)", dir, err)
	}
	for _, name := range append(files, filepath.Join(dir, "gateway.log")) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		texts[filepath.Base(name)] = string(b)
	}
	for where, text := range texts {
		for _, secret := range append([]string{"eyJ"}, plaintextEmails()...) {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains %q", where, secret)
			}
		}
	}
}

// wantRefusal checks that what was refused got code, from the rule.
func wantRefusal(t *testing.T, what string, e *pgError, code, rule string) {
	t.Helper()
	if e == nil || e.Code != code || !strings.Contains(e.Message, `rule "`+rule+`"`) {
		t.Errorf("%s: got %+v, want ERROR %s from rule %q", what, e, code, rule)
	}
}

// TestAgentPolicy pins the policy without a database: which writes wait
// for approval, which are refused, and that sessions are not made
// read-only on the server (approved writes run there).
func TestAgentPolicy(t *testing.T) {
	s := policytest.New(t, agentPolicy()).As(session.Identity{Subject: person, Issuer: "idp",
		Chain: []session.Actor{{Subject: parentAgent}, {Subject: childAgent}}})
	s.Expect("SELECT * FROM orders", policy.Allow, "reads")
	s.Expect("UPDATE orders SET status = 'shipped' WHERE id = 2", policy.Approve, ruleApproval)
	s.Expect("UPDATE public.orders SET status = 'x' WHERE id = 2", policy.Approve, ruleApproval)
	s.Expect("INSERT INTO orders (customer_id, amount) VALUES (1, 2)", policy.Approve, ruleApproval)
	s.Expect("UPDATE orders SET status = 'x'", policy.Block, ruleReadOnly) // every row
	s.Expect("DELETE FROM orders WHERE id = 1", policy.Block, ruleReadOnly)
	s.Expect("INSERT INTO customers VALUES (5, 'x', 'x@example.com')", policy.Block, ruleReadOnly)
	s.Expect("WITH d AS (DELETE FROM customers RETURNING id) INSERT INTO orders (customer_id, amount) SELECT id, 0 FROM d",
		policy.Block, ruleReadOnly)
	s.Expect("UPDATE orders SET status = 'x' WHERE id = 1; DELETE FROM customers WHERE id = 1", policy.Block, ruleReadOnly)
	s.Expect("SELECT * FROM orders FOR UPDATE", policy.Block, ruleReadOnly)
	// A refusal wins over an approval: no person is asked.
	s.Expect("INSERT INTO orders (customer_id, amount, status) SELECT 1, 2, pg_read_file('/etc/passwd')",
		policy.Block, "block-functions")
	// With an unknown search_path, orders may be another schema's.
	s.WithSearchPath().Expect("UPDATE orders SET status = 'x' WHERE id = 2", policy.Block, ruleReadOnly)
	if s.Setup().ReadOnly {
		t.Error("agentPolicy makes sessions read-only on the server: approved writes would fail there")
	}
}
