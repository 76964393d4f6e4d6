package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/session"
)

// ledgerGatewayConfig is the configuration of the decision ledger tests:
// the approvals policy and users, the memory store, the admin API and the
// recording section recording.
func ledgerGatewayConfig(upstream, recording string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
upstream: {address: %s}
auth:
%s  allow_cleartext_without_tls: true
credentials:
  static:
    - {user: app_user, password: app-user-secret}
%sapprovals: {store: memory}
%s
admin: {listen: "127.0.0.1:0", token: %s, revocations_file: revocations.json}
log: {format: json, level: debug}
`, upstream, approvalsUsers, approvalsPolicy, recording, testAdminToken)
}

// deferredRequest runs update as a deferred statement on conn and returns
// the id of the pending request its refusal names.
func deferredRequest(t *testing.T, ctx context.Context, conn *pgx.Conn, args ...any) string {
	t.Helper()
	_, err := conn.Exec(ctx, "UPDATE payments SET note = $1 WHERE id = $2", args...)
	m := requestID.FindStringSubmatch(refusal(t, err))
	if m == nil {
		t.Fatalf("the deferred statement's error names no request: %v", err)
	}
	return m[1]
}

// TestDecisionLedgers serves a gateway that records to a directory and
// decides requests through the admin API: a deferred request denied, one
// approved, a held one approved, and an attempt by someone who is not an
// approver. Each decision is a sealed ledger of its own, with the
// approver's identity, the request id, the decision and the comment (the
// refused attempt says it was not applied); requests that are unknown or
// not pending leave no ledger; `pgwarden verify` passes, `sessions` and
// `replay` show the ledgers; and no secret reaches the recording.
func TestDecisionLedgers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cluster := startCluster(t)
	approvalsSetup(t, ctx, cluster)
	path := writeFile(t, ledgerGatewayConfig(cluster.Addr(), fmt.Sprintf("recording: {dir: rec, key: %s}", testRecordingKey)))
	tg := startTestGatewayFile(t, path, testAdminToken)
	bob := basicApprover("bob", "bob-secret")

	alice, err := tg.connect(ctx, "alice", "alice-secret", "app")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close(context.Background())

	// A deferred request, denied: nothing else records this denial.
	deniedID := deferredRequest(t, ctx, alice, "refunded", 1)
	if rec := decideAs(t, tg.adminURL, deniedID, "deny", bob, "no refunds today"); rec.Status != approval.StatusDenied {
		t.Fatalf("denied = %+v", rec)
	}
	// A deferred request, approved; the statement then runs.
	approvedID := deferredRequest(t, ctx, alice, "refunded", 2)
	if rec := decideAs(t, tg.adminURL, approvedID, "approve", bob, "ticket 7"); rec.Status != approval.StatusApproved {
		t.Fatalf("approved = %+v", rec)
	}
	if _, err := alice.Exec(ctx, "UPDATE payments SET note = $1 WHERE id = $2", "refunded", 2); err != nil {
		t.Fatalf("the approved deferred statement: %v", err)
	}
	// carol is not an approver: refused, and her attempt is recorded as
	// not applied.
	attemptID := deferredRequest(t, ctx, alice, "refunded", 3)
	status, body := approvalCall(t, tg.adminURL, testAdminToken, basicApprover("carol", "carol-secret"), "POST",
		"/approvals/"+attemptID+"/approve", map[string]string{"comment": "let me"})
	if status != http.StatusForbidden {
		t.Fatalf("carol approves: %d %s, want 403", status, body)
	}
	if rec := getApproval(t, tg.adminURL, attemptID); rec.Status != approval.StatusPending {
		t.Fatalf("after carol's attempt: %+v", rec)
	}
	// A held request, approved: the approver's side of the decision.
	done := make(chan error, 1)
	go func() {
		_, err := alice.Exec(ctx, "DELETE FROM orders WHERE id = 1")
		done <- err
	}()
	heldID := waitPending(t, ctx, tg.adminURL, "deletes-need-approval").Request.ID
	decideAs(t, tg.adminURL, heldID, "approve", bob, "ok")
	if err := <-done; err != nil {
		t.Fatalf("the approved DELETE: %v", err)
	}
	// Not pending any more, or unknown: refused without a ledger.
	if status, body := approvalCall(t, tg.adminURL, testAdminToken, bob, "POST", "/approvals/"+deniedID+"/approve", nil); status != http.StatusConflict ||
		!strings.Contains(string(body), "is denied") {
		t.Errorf("approve a denied request: %d %s, want 409", status, body)
	}
	if status, body := approvalCall(t, tg.adminURL, testAdminToken, bob, "POST", "/approvals/0123456789abcdef/deny", nil); status != http.StatusNotFound {
		t.Errorf("deny an unknown request: %d %s, want 404", status, body)
	}
	alice.Close(ctx)
	tg.waitSessions(t, 0)
	tg.stop()

	// The ledgers.
	dir := filepath.Join(filepath.Dir(path), "rec")
	j := openJournal(t, dir)
	list, err := j.Sessions(ctx, session.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ledgers := map[string][]session.Event{} // by request id
	var ledgerIDs []string
	for _, s := range list {
		if !strings.HasPrefix(s.ID, decisionLedgerPrefix) {
			continue
		}
		events, err := j.Events(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Verify(ctx, s.ID); err != nil {
			t.Errorf("ledger %s: %v", s.ID, err)
		}
		if len(events) < 3 || events[1].Approval == nil {
			t.Fatalf("ledger %s: %+v", s.ID, events)
		}
		ledgers[events[1].Approval.ID] = events
		ledgerIDs = append(ledgerIDs, s.ID)
	}
	if len(ledgers) != 4 || len(ledgerIDs) != 4 {
		t.Fatalf("%d ledgers (%v), want 4: the deferred denial, the deferred approval, carol's attempt, the held approval", len(ledgerIDs), ledgerIDs)
	}
	check := func(requestID string, approver string, want session.ApprovalEvent, failed string) {
		t.Helper()
		events := ledgers[requestID]
		if events == nil {
			t.Errorf("no ledger for request %s", requestID)
			return
		}
		id := events[0].SessionID
		if !strings.HasPrefix(id, decisionLedgerPrefix+requestID+"-") {
			t.Errorf("ledger id %s, want approval-%s-...", id, requestID)
		}
		wantKinds := []session.EventKind{session.KindSessionStart, session.KindApproval, session.KindSessionEnd}
		if failed != "" {
			wantKinds = []session.EventKind{session.KindSessionStart, session.KindApproval, session.KindApproval, session.KindSessionEnd}
		}
		var kinds []session.EventKind
		for _, ev := range events {
			kinds = append(kinds, ev.Kind)
		}
		if fmt.Sprint(kinds) != fmt.Sprint(wantKinds) {
			t.Errorf("ledger %s: events %v, want %v", id, kinds, wantKinds)
			return
		}
		info := events[0].Start.Info
		if info.ID != id || info.Identity.Subject != approver || info.Identity.Issuer != "static" || info.User != approver ||
			info.Database != "app" || info.ApplicationName != decisionApplication || info.ClientAddr == "" || info.StartedAt.IsZero() {
			t.Errorf("ledger %s: start %+v", id, info)
		}
		want.ID, want.Reason = requestID, decisionRequested
		if got := *events[1].Approval; got != want {
			t.Errorf("ledger %s: approval %+v, want %+v", id, got, want)
		}
		if failed != "" {
			f := events[2].Approval
			if f.Action != session.ApprovalFailed || f.ID != requestID || f.Approver != approver || !strings.Contains(f.Reason, failed) {
				t.Errorf("ledger %s: failed event %+v, want one saying %q", id, f, failed)
			}
		}
		if end := events[len(events)-1].End; end.Reason != session.EndClientExit || end.Statements != 0 {
			t.Errorf("ledger %s: end %+v", id, end)
		}
	}
	check(deniedID, "bob", session.ApprovalEvent{Action: session.ApprovalDenied, Mode: "defer", Rule: "refunds-deferred",
		Approver: "bob", Comment: "no refunds today"}, "")
	check(approvedID, "bob", session.ApprovalEvent{Action: session.ApprovalApproved, Mode: "defer", Rule: "refunds-deferred",
		Approver: "bob", Comment: "ticket 7"}, "")
	check(attemptID, "carol", session.ApprovalEvent{Action: session.ApprovalApproved, Mode: "defer", Rule: "refunds-deferred",
		Approver: "carol", Comment: "let me"}, "not applied: approval: the approver is not allowed")
	check(heldID, "bob", session.ApprovalEvent{Action: session.ApprovalApproved, Mode: "hold", Rule: "deletes-need-approval",
		Approver: "bob", Comment: "ok"}, "")

	// pgwarden verify passes on the directory; sessions and replay show
	// the ledgers.
	if code, stdout, stderr := runCLI([]string{"verify", "--config", path}, ""); code != exitOK ||
		!strings.Contains(stdout, "0 not sealed, 0 tampered or unreadable") {
		t.Errorf("pgwarden verify: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := runCLI([]string{"sessions", "--config", path, "--subject", "bob"}, "")
	if code != exitOK || !strings.HasSuffix(stdout, "3 sessions\n") || !strings.Contains(stdout, ledgers[deniedID][0].SessionID) ||
		!strings.Contains(stdout, "(client-exit)") {
		t.Errorf("pgwarden sessions --subject bob: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI([]string{"replay", "--config", path, ledgers[deniedID][0].SessionID}, "")
	for _, want := range []string{
		"session start: bob (issuer static)",
		"database app as user bob, application pgwarden approvals",
		"approval denied: request " + deniedID + " (rule refunds-deferred, defer) by bob: no refunds today; decision requested",
		"session end: client-exit after 0 statements",
	} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("pgwarden replay of the denial: exit %d, want %q in\n%s%s", code, want, stdout, stderr)
		}
	}
	code, stdout, _ = runCLI([]string{"replay", "--config", path, ledgers[attemptID][0].SessionID}, "")
	if code != exitOK || !strings.Contains(stdout, "approval failed: request "+attemptID+" (rule refunds-deferred, defer) by carol; not applied:") {
		t.Errorf("pgwarden replay of carol's attempt: exit %d\n%s", code, stdout)
	}
	// The requester's own session shows its approval events too.
	code, stdout, _ = runCLI([]string{"sessions", "--config", path, "--subject", "alice", "--json"}, "")
	var out struct{ Sessions []recordedSessionJSON }
	if code != exitOK || json.Unmarshal([]byte(stdout), &out) != nil || len(out.Sessions) != 1 {
		t.Fatalf("pgwarden sessions --subject alice: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runCLI([]string{"replay", "--config", path, out.Sessions[0].ID}, "")
	if code != exitOK || !strings.Contains(stdout, "approval pending: request "+deniedID+" (rule refunds-deferred, defer)") ||
		strings.Contains(stdout, "no details") {
		t.Errorf("pgwarden replay of alice's session: exit %d\n%s", code, stdout)
	}

	// No secret in the recording or the logs.
	texts := readDir(t, dir)
	texts["the gateway's logs"] = tg.logs.String()
	checkNoSecrets(t, texts, "alice-secret", "bob-secret", "carol-secret", "app-user-secret", testAdminToken,
		testRecordingKey, cluster.Password, strings.TrimPrefix(bob, "Basic "))
}

// TestDecisionLedgerFailClosed records to PostgreSQL and drops the
// store's table: a decision that cannot be recorded is answered 500 and
// not applied (the request stays pending).
func TestDecisionLedgerFailClosed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cluster := startCluster(t)
	approvalsSetup(t, ctx, cluster)
	if err := cluster.Exec(ctx, "app", "CREATE DATABASE audit"); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, ledgerGatewayConfig(cluster.Addr(), fmt.Sprintf("recording: {postgres: %s, key: %s}",
		yamlQuote(cluster.SuperConnString("audit")), testRecordingKey)))
	tg := startTestGatewayFile(t, path, testAdminToken)
	alice, err := tg.connect(ctx, "alice", "alice-secret", "app")
	if err != nil {
		t.Fatal(err)
	}
	id := deferredRequest(t, ctx, alice, "refunded", 1)
	alice.Close(ctx)
	tg.waitSessions(t, 0)
	if err := cluster.Exec(ctx, "audit", "DROP TABLE pgwarden_events"); err != nil {
		t.Fatal(err)
	}
	status, body := approvalCall(t, tg.adminURL, testAdminToken, basicApprover("bob", "bob-secret"), "POST",
		"/approvals/"+id+"/deny", map[string]string{"comment": "no"})
	if status != http.StatusInternalServerError || !strings.Contains(string(body), "could not be recorded, so it was not applied") {
		t.Errorf("deny with the recording down: %d %s; want 500", status, body)
	}
	if rec := getApproval(t, tg.adminURL, id); rec.Status != approval.StatusPending || rec.Approver != "" {
		t.Errorf("the unrecorded decision was applied: %+v", rec)
	}
	if !strings.Contains(tg.logs.String(), "the decision could not be recorded, so it is not applied") {
		t.Errorf("no error in the log:\n%s", tg.logs.String())
	}
	tg.stop()
	tg.checkLogs(t, "alice-secret", "bob-secret", "app-user-secret", testRecordingKey, cluster.Password)
}
