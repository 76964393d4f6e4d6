package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/session"
)

// approvalsSetup creates, in the database app of cluster, the role
// app_user and the tables orders, payments and items with ten rows each.
func approvalsSetup(t *testing.T, ctx context.Context, cluster *pgtest.Cluster) {
	t.Helper()
	if err := cluster.Exec(ctx, "app", `CREATE ROLE app_user LOGIN PASSWORD 'app-user-secret';
		CREATE TABLE orders (id int PRIMARY KEY, note text);
		CREATE TABLE payments (id int PRIMARY KEY, note text);
		CREATE TABLE items (id int PRIMARY KEY, note text);
		INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 10) g;
		INSERT INTO payments SELECT g, 'paid' FROM generate_series(1, 10) g;
		INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g;
		GRANT SELECT, INSERT, UPDATE, DELETE ON orders, payments, items TO app_user;`); err != nil {
		t.Fatal(err)
	}
}

// approvalsPolicy has three rules that send statements for approval:
// DELETEs of orders are held (approvers: the group approvers), UPDATEs of
// payments are deferred, DELETEs of items are held and approving one
// grants the rule for 2s.
const approvalsPolicy = `policy:
  default: allow
  rules:
    - name: deletes-need-approval
      kinds: [delete]
      tables: [orders]
      verdict: approve
      reason: Deleting orders needs a second pair of eyes.
      approve: {mode: hold, timeout: 1m, approvers: [approvers]}
    - name: refunds-deferred
      kinds: [update]
      tables: [payments]
      verdict: approve
      approve: {mode: defer, approvers: [approvers]}
    - name: items-grant
      kinds: [delete]
      tables: [items]
      verdict: approve
      approve: {mode: hold, timeout: 1m, grant: 2s, approvers: [approvers]}
`

// The static users of the approvals tests: alice asks (and is an approver
// too, to test self-approval), bob approves, carol is not an approver.
const approvalsUsers = `  users:
    - {name: alice, password: alice-secret, groups: [dev, approvers]}
    - {name: bob, password: bob-secret, groups: [approvers]}
    - {name: carol, password: carol-secret, groups: [dev]}
`

// basicApprover is the X-Pgwarden-Approver value of a static user.
func basicApprover(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// approvalCall sends a request to the admin API at adminURL with the
// admin token token and the approver credentials approver (each left out
// when empty), and returns the status and the body.
func approvalCall(t *testing.T, adminURL, token, approver, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, adminURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if approver != "" {
		req.Header.Set(approverHeader, approver)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want JSON", method, path, ct)
	}
	return resp.StatusCode, b
}

// decideAs approves or denies request id through the admin API at
// adminURL as approver, wants 200 and returns the decided record.
func decideAs(t *testing.T, adminURL, id, action, approver, comment string) approval.Record {
	t.Helper()
	status, body := approvalCall(t, adminURL, testAdminToken, approver, "POST", "/approvals/"+id+"/"+action, map[string]string{"comment": comment})
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", action, id, status, body)
	}
	var rec approval.Record
	if err := json.Unmarshal(body, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// waitPending polls GET /approvals at adminURL until a pending request of
// rule is listed, and returns it.
func waitPending(t *testing.T, ctx context.Context, adminURL, rule string) approval.Record {
	t.Helper()
	for {
		status, body := approvalCall(t, adminURL, testAdminToken, "", "GET", "/approvals", nil)
		var out struct{ Approvals []approval.Record }
		if status != http.StatusOK || json.Unmarshal(body, &out) != nil {
			t.Fatalf("GET /approvals: %d %s", status, body)
		}
		for _, rec := range out.Approvals {
			if rec.Request.Rule == rule && rec.Status == approval.StatusPending {
				return rec
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no pending request of rule %s: %s", rule, body)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// getApproval returns GET /approvals/{id}.
func getApproval(t *testing.T, adminURL, id string) approval.Record {
	t.Helper()
	status, body := approvalCall(t, adminURL, testAdminToken, "", "GET", "/approvals/"+id, nil)
	var rec approval.Record
	if status != http.StatusOK || json.Unmarshal(body, &rec) != nil {
		t.Fatalf("GET /approvals/%s: %d %s", id, status, body)
	}
	return rec
}

// hookCall is one POST the webhook received.
type hookCall struct {
	header http.Header
	body   string
	rec    approval.Record
}

// hookRecorder is a webhook endpoint that keeps what it receives.
type hookRecorder struct {
	mu    sync.Mutex
	calls []hookCall
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c := hookCall{header: r.Header.Clone(), body: string(b)}
	if r.Method != http.MethodPost || json.Unmarshal(b, &c.rec) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.calls = append(h.calls, c)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wait returns the call about request id with status, waiting for it.
func (h *hookRecorder) wait(t *testing.T, ctx context.Context, id string, status approval.Status) hookCall {
	t.Helper()
	for {
		h.mu.Lock()
		i := slices.IndexFunc(h.calls, func(c hookCall) bool { return c.rec.Request.ID == id && c.rec.Status == status })
		var c hookCall
		if i >= 0 {
			c = h.calls[i]
		}
		h.mu.Unlock()
		if i >= 0 {
			return c
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the webhook heard nothing about request %s being %s", id, status)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// all returns every call's body.
func (h *hookRecorder) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.calls {
		out = append(out, c.body)
	}
	return out
}

// refusal returns the message and detail of a refused statement's error,
// failing unless its SQLSTATE is 42501.
func refusal(t *testing.T, err error) string {
	t.Helper()
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || pgErr.Code != "42501" {
		t.Fatalf("got %v, want a refusal (42501)", err)
	}
	return pgErr.Message + "\n" + pgErr.Detail
}

// requestID is the id an error for a deferred statement names.
var requestID = regexp.MustCompile(`request ([0-9a-f]{32}) is pending`)

// TestApprovalsServed serves a gateway whose policy sends statements for
// approval (hold, defer, and hold with a grant), with the memory store, a
// webhook, the recording and OIDC besides static users, and decides them
// through the admin API and the CLI. It checks the refusals (wrong
// approver credentials, self-approval, an approver outside the group,
// decided twice), that approved statements run on the same session and
// denied ones change nothing, deferred approvals (same statement and
// parameters, once), grants and their end, the webhook's JSON, the
// recording's approval events, and that no secret reaches a log, an
// answer or the webhook.
func TestApprovalsServed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cluster := startCluster(t)
	approvalsSetup(t, ctx, cluster)
	idp, err := devidp.Start(t.Context(), devidp.Config{Users: []devidp.User{
		{Subject: "oscar", Groups: []string{"approvers"}},
		{Subject: "olga", Groups: []string{"dev"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	hooks := &hookRecorder{}
	hookServer := httptest.NewServer(hooks)
	t.Cleanup(hookServer.Close)

	path := writeFile(t, fmt.Sprintf(`listen: 127.0.0.1:0
upstream: {address: %s}
auth:
%s  oidc: {issuer: %s, audience: %s}
  allow_cleartext_without_tls: true
credentials:
  static:
    - {user: app_user, password: app-user-secret}
%sapprovals:
  store: memory
  webhook:
    url: %s/hooks/webhook-url-secret
    headers: {Authorization: "Bearer webhook-header-secret"}
    timeout: 5s
recording: {dir: rec, key: %s}
admin: {listen: "127.0.0.1:0", token: %s, revocations_file: revocations.json}
log: {format: json, level: debug}
`, cluster.Addr(), approvalsUsers, yamlQuote(idp.Issuer()), yamlQuote(idp.Audience()), approvalsPolicy,
		hookServer.URL, testRecordingKey, testAdminToken))
	tg := startTestGatewayFile(t, path, testAdminToken)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(testAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	super, err := pgx.Connect(ctx, cluster.SuperConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(context.Background())
	var superMu sync.Mutex // the subtests share it
	count := func(t *testing.T, table string) int {
		t.Helper()
		superMu.Lock()
		defer superMu.Unlock()
		var n int
		if err := super.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	connectAs := func(t *testing.T, user, password string) *pgx.Conn {
		t.Helper()
		conn, err := tg.connect(ctx, user, password, "app")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	// exec runs sql on conn in the background.
	exec := func(conn *pgx.Conn, sql string, args ...any) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := conn.Exec(ctx, sql, args...)
			done <- err
		}()
		return done
	}
	var heldID, deniedID string

	t.Run("group", func(t *testing.T) {
		t.Run("hold", func(t *testing.T) {
			t.Parallel()
			conn := connectAs(t, "alice", "alice-secret")
			done := exec(conn, "DELETE FROM orders WHERE id = 1")
			rec := waitPending(t, ctx, tg.adminURL, "deletes-need-approval")
			heldID = rec.Request.ID
			r := rec.Request
			if r.Identity.Subject != "alice" || r.Identity.Issuer != "static" || r.SQL != "DELETE FROM orders WHERE id = 1" ||
				r.Database != "app" || r.Reason != "Deleting orders needs a second pair of eyes." || r.Spec.Mode != policy.Hold ||
				!slices.Equal(r.Spec.Approvers, []string{"approvers"}) {
				t.Errorf("pending request = %+v", rec)
			}
			// The webhook heard of it, with its headers.
			hook := hooks.wait(t, ctx, heldID, approval.StatusPending)
			if hook.rec.Request.SQL != r.SQL || hook.rec.Request.Rule != "deletes-need-approval" ||
				hook.rec.Request.Identity.Subject != "alice" || hook.header.Get("Authorization") != "Bearer webhook-header-secret" ||
				hook.header.Get("Content-Type") != "application/json" {
				t.Errorf("webhook call = %+v", hook)
			}
			// The server has seen nothing.
			if n := count(t, "orders"); n != 10 {
				t.Fatalf("the held DELETE ran before approval: %d orders", n)
			}

			// Refusals, none of which decides.
			for _, c := range []struct {
				name, token, approver string
				status                int
				want                  string
			}{
				{"self-approval", testAdminToken, basicApprover("alice", "alice-secret"), 403, "may not approve its own request"},
				{"not an approver", testAdminToken, basicApprover("carol", "carol-secret"), 403, "carol is in none of the groups approvers"},
				{"wrong password", testAdminToken, basicApprover("bob", "carol-secret"), 401, "X-Pgwarden-Approver) are invalid"},
				{"unknown approver", testAdminToken, basicApprover("mallory", "bob-secret"), 401, "are invalid"},
				{"no approver", testAdminToken, "", 401, "send the approver's credentials"},
				{"bad OIDC token", testAdminToken, "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvc2NhciJ9.c2ln", 401, "are invalid"},
				{"no admin token", "", basicApprover("bob", "bob-secret"), 401, "send the admin token"},
				{"wrong admin token", "not-the-admin-token-at-all", basicApprover("bob", "bob-secret"), 401, "send the admin token"},
			} {
				status, body := approvalCall(t, tg.adminURL, c.token, c.approver, "POST", "/approvals/"+heldID+"/approve", nil)
				if status != c.status || !strings.Contains(string(body), c.want) {
					t.Errorf("%s: %d %s; want %d and %q", c.name, status, body, c.status, c.want)
				}
				if strings.Contains(string(body), "secret") {
					t.Errorf("%s: the answer shows a secret: %s", c.name, body)
				}
			}
			if got := getApproval(t, tg.adminURL, heldID); got.Status != approval.StatusPending {
				t.Fatalf("after the refusals: %+v", got)
			}

			// bob approves: the DELETE runs, on the same session.
			decided := decideAs(t, tg.adminURL, heldID, "approve", basicApprover("bob", "bob-secret"), "ticket 42")
			if decided.Status != approval.StatusApproved || decided.Approver != "bob" || decided.ApproverIssuer != "static" || decided.Comment != "ticket 42" {
				t.Errorf("decided = %+v", decided)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("the approved DELETE: %v", err)
				}
			case <-ctx.Done():
				t.Fatal("the approved DELETE did not complete")
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 9 {
				t.Fatalf("orders after the approved DELETE: %d, %v; want 9", n, err)
			}
			if hook := hooks.wait(t, ctx, heldID, approval.StatusApproved); hook.rec.Approver != "bob" || hook.rec.Comment != "ticket 42" {
				t.Errorf("webhook about the approval = %+v", hook.rec)
			}
			// Decided twice, or unknown.
			if status, body := approvalCall(t, tg.adminURL, testAdminToken, basicApprover("bob", "bob-secret"), "POST", "/approvals/"+heldID+"/deny", nil); status != http.StatusConflict {
				t.Errorf("deny an approved request: %d %s, want 409", status, body)
			}
			if status, body := approvalCall(t, tg.adminURL, testAdminToken, basicApprover("bob", "bob-secret"), "POST", "/approvals/0123456789abcdef/approve", nil); status != http.StatusNotFound {
				t.Errorf("approve an unknown request: %d %s, want 404", status, body)
			}
			if status, body := approvalCall(t, tg.adminURL, testAdminToken, "", "GET", "/approvals/0123456789abcdef", nil); status != http.StatusNotFound {
				t.Errorf("GET an unknown request: %d %s, want 404", status, body)
			}

			// A second DELETE, denied with `pgwarden deny`: refused with
			// the comment, and nothing changes.
			done = exec(conn, "DELETE FROM orders WHERE id = 2")
			rec = waitPending(t, ctx, tg.adminURL, "deletes-need-approval")
			deniedID = rec.Request.ID
			code, stdout, stderr := runCLI([]string{"deny", deniedID, "--comment", "not today", "--admin", tg.adminURL,
				"--token-file", tokenFile, "--approver-user", "bob"}, "bob-secret\n")
			if code != exitOK || stdout != "request "+deniedID+" denied by bob\n" {
				t.Fatalf("pgwarden deny: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			select {
			case err := <-done:
				if msg := refusal(t, err); !strings.Contains(msg, "not today") || !strings.Contains(msg, "Denied (request "+deniedID+") by bob") {
					t.Errorf("the denied DELETE's error: %s", msg)
				}
			case <-ctx.Done():
				t.Fatal("the denied DELETE did not return")
			}
			if n := count(t, "orders"); n != 9 {
				t.Errorf("%d orders after the denied DELETE, want 9", n)
			}
			// The session goes on.
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 9 {
				t.Errorf("after the denial: %d, %v", n, err)
			}
			// The CLI's refusals.
			code, _, stderr = runCLI([]string{"approve", deniedID, "--admin", tg.adminURL, "--token-file", tokenFile, "--approver-user", "bob"}, "bob-secret\n")
			if code != exitError || !strings.Contains(stderr, "409 Conflict") || !strings.Contains(stderr, "is denied") {
				t.Errorf("pgwarden approve of a denied request: exit %d, stderr %q", code, stderr)
			}
			code, _, stderr = runCLI([]string{"approve", "--admin", tg.adminURL, "--token-file", tokenFile, "--approver-user", "bob", deniedID}, "wrong\n")
			if code != exitError || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "--approver-user") {
				t.Errorf("pgwarden approve with a wrong password: exit %d, stderr %q", code, stderr)
			}
			for _, args := range [][]string{
				{"approve", "--token-file", tokenFile, deniedID},                                                 // no approver
				{"approve", "--token-file", tokenFile, "--approver-user", "bob"},                                 // no id
				{"approve", "--token-file", tokenFile, "--approver-user", "bob", "a", "b"},                       // two ids
				{"deny", "--token-file", tokenFile, "--approver-user", "bob", "--approver-token-file", "f", "a"}, // both
			} {
				if code, _, stderr := runCLI(args, "bob-secret\n"); code != exitUsage {
					t.Errorf("%q: exit %d, stderr %q; want %d", args, code, stderr, exitUsage)
				}
			}
		})

		t.Run("defer", func(t *testing.T) {
			t.Parallel()
			conn := connectAs(t, "alice", "alice-secret")
			const update = "UPDATE payments SET note = $1 WHERE id = $2"
			_, err := conn.Exec(ctx, update, "refunded", 1)
			m := requestID.FindStringSubmatch(refusal(t, err))
			if m == nil {
				t.Fatalf("the deferred statement's error names no request: %v", err)
			}
			id := m[1]
			rec := getApproval(t, tg.adminURL, id)
			if rec.Status != approval.StatusPending || rec.Request.Spec.Mode != policy.Defer || len(rec.Request.Params) != 2 ||
				rec.Request.Params[0] == nil || *rec.Request.Params[0] != "refunded" {
				t.Fatalf("deferred request = %+v", rec)
			}
			// Asked again before anyone decided: the same request.
			_, err = conn.Exec(ctx, update, "refunded", 1)
			if m := requestID.FindStringSubmatch(refusal(t, err)); m == nil || m[1] != id {
				t.Errorf("asked again: %v; want request %s again", err, id)
			}
			decideAs(t, tg.adminURL, id, "approve", basicApprover("bob", "bob-secret"), "")
			// The same statement with the same parameters runs, once.
			if _, err := conn.Exec(ctx, update, "refunded", 1); err != nil {
				t.Fatalf("the approved deferred statement: %v", err)
			}
			superMu.Lock()
			var note string
			err = super.QueryRow(ctx, "SELECT note FROM payments WHERE id = 1").Scan(&note)
			superMu.Unlock()
			if err != nil || note != "refunded" {
				t.Errorf("payment 1's note = %q, %v; want refunded", note, err)
			}
			if rec := getApproval(t, tg.adminURL, id); rec.Status != approval.StatusExpired {
				t.Errorf("the used approval = %+v, want expired", rec)
			}
			_, err = conn.Exec(ctx, update, "refunded", 1)
			m = requestID.FindStringSubmatch(refusal(t, err))
			if m == nil || m[1] == id {
				t.Errorf("the same statement a second time: %v; want a new request", err)
			}
			// Other parameters: another request.
			_, err = conn.Exec(ctx, update, "refunded", 2)
			m2 := requestID.FindStringSubmatch(refusal(t, err))
			if m2 == nil || m2[1] == id || m != nil && m2[1] == m[1] {
				t.Errorf("other parameters: %v; want a new request", err)
			}
			// Leave nothing pending for the other subtests' lists.
			for _, mm := range [][]string{m, m2} {
				if mm != nil {
					decideAs(t, tg.adminURL, mm[1], "deny", basicApprover("bob", "bob-secret"), "")
				}
			}
			superMu.Lock()
			err = super.QueryRow(ctx, "SELECT note FROM payments WHERE id = 2").Scan(&note)
			superMu.Unlock()
			if err != nil || note != "paid" {
				t.Errorf("payment 2's note = %q, %v; want paid", note, err)
			}
		})

		t.Run("grant", func(t *testing.T) {
			t.Parallel()
			conn := connectAs(t, "alice", "alice-secret")
			done := exec(conn, "DELETE FROM items WHERE id = 1")
			rec := waitPending(t, ctx, tg.adminURL, "items-grant")
			// oscar (OIDC, in approvers) approves with `pgwarden approve`;
			// olga (OIDC, not in approvers) may not.
			for _, who := range []string{"olga", "oscar"} {
				token, err := idp.PersonToken(ctx, who)
				if err != nil {
					t.Fatal(err)
				}
				f := filepath.Join(t.TempDir(), who+"-token")
				if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				code, stdout, stderr := runCLI([]string{"approve", rec.Request.ID, "--comment", "go ahead", "--admin", tg.adminURL,
					"--token-file", tokenFile, "--approver-token-file", f}, "")
				switch who {
				case "olga":
					if code != exitError || !strings.Contains(stderr, "403 Forbidden") || !strings.Contains(stderr, "olga is in none of the groups approvers") {
						t.Errorf("pgwarden approve as olga: exit %d, stderr %q", code, stderr)
					}
				case "oscar":
					if code != exitOK || stdout != "request "+rec.Request.ID+" approved by oscar\n" {
						t.Fatalf("pgwarden approve as oscar: exit %d, stdout %q, stderr %q", code, stdout, stderr)
					}
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("the approved DELETE: %v", err)
			}
			var grants struct{ Grants []approval.Grant }
			tg.get(t, "/grants", &grants)
			if len(grants.Grants) != 1 {
				t.Fatalf("grants = %+v, want one", grants)
			}
			g := grants.Grants[0]
			if g.Subject != "alice" || g.Issuer != "static" || g.Rule != "items-grant" || g.Approver != "oscar" || g.RequestID != rec.Request.ID {
				t.Errorf("grant = %+v", g)
			}
			// The access review shows it.
			var review reviewReport
			tg.get(t, "/leases", &review)
			if len(review.Grants) != 1 || review.Grants[0].RequestID != rec.Request.ID {
				t.Errorf("the access review's grants = %+v", review.Grants)
			}
			// While the grant lasts, the rule passes without asking.
			if _, err := conn.Exec(ctx, "DELETE FROM items WHERE id = 2"); err != nil {
				t.Fatalf("DELETE under the grant: %v", err)
			}
			if n := count(t, "items"); n != 8 {
				t.Errorf("%d items, want 8", n)
			}
			// Once it ended, the next one is held again.
			time.Sleep(time.Until(g.Until) + 100*time.Millisecond)
			done = exec(conn, "DELETE FROM items WHERE id = 3")
			rec = waitPending(t, ctx, tg.adminURL, "items-grant")
			decideAs(t, tg.adminURL, rec.Request.ID, "deny", basicApprover("bob", "bob-secret"), "the grant is over")
			if msg := refusal(t, <-done); !strings.Contains(msg, "the grant is over") {
				t.Errorf("denied after the grant: %s", msg)
			}
			if n := count(t, "items"); n != 8 {
				t.Errorf("%d items after the denial, want 8", n)
			}
		})
	})
	if t.Failed() {
		return
	}

	// The lists, through the API and the CLI.
	code, stdout, stderr := runCLI([]string{"approvals", "--admin", tg.adminURL, "--token-file", tokenFile, "--status", "all", "--json"}, "")
	var all struct{ Approvals []approval.Record }
	if code != exitOK || json.Unmarshal([]byte(stdout), &all) != nil {
		t.Fatalf("pgwarden approvals --json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	byStatus := map[approval.Status]int{}
	for _, rec := range all.Approvals {
		byStatus[rec.Status]++
	}
	// hold: approved, denied; defer: expired, 2 denied; grant: approved, denied.
	if byStatus[approval.StatusApproved] != 2 || byStatus[approval.StatusDenied] != 4 || byStatus[approval.StatusExpired] != 1 || len(all.Approvals) != 7 {
		t.Errorf("requests by status = %v", byStatus)
	}
	code, stdout, stderr = runCLI([]string{"approvals", "--admin", tg.adminURL, "--token-file", tokenFile, "--status", "denied"}, "")
	if code != exitOK || !strings.Contains(stdout, deniedID+"  DENIED") || !strings.Contains(stdout, "sql:      DELETE FROM orders WHERE id = 2") ||
		!strings.Contains(stdout, "who:      alice (static)") || !strings.Contains(stdout, "denied:   by bob at ") ||
		!strings.Contains(stdout, ": not today") || !strings.Contains(stdout, "$1:       'refunded'") || !strings.HasSuffix(stdout, "4 requests (denied)\n") {
		t.Errorf("pgwarden approvals --status denied: exit %d, stdout:\n%s\nstderr %q", code, stdout, stderr)
	}
	if code, stdout, _ := runCLI([]string{"approvals", "--admin", tg.adminURL, "--token-file", tokenFile}, ""); code != exitOK || stdout != "0 requests (pending)\n" {
		t.Errorf("pgwarden approvals: exit %d, stdout %q", code, stdout)
	}
	if code, _, _ := runCLI([]string{"approvals", "--status", "maybe", "--token-file", tokenFile}, ""); code != exitUsage {
		t.Errorf("pgwarden approvals --status maybe: exit %d", code)
	}
	if status, body := approvalCall(t, tg.adminURL, testAdminToken, "", "GET", "/approvals?status=maybe", nil); status != http.StatusBadRequest {
		t.Errorf("GET /approvals?status=maybe: %d %s", status, body)
	}

	// The recording has every request and decision.
	tg.stop()
	j := openJournal(t, filepath.Join(filepath.Dir(path), "rec"))
	list, err := j.Sessions(ctx, session.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[session.ApprovalAction][]session.ApprovalEvent{}
	for _, s := range list {
		events, err := j.Events(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ev.Kind == session.KindApproval {
				actions[ev.Approval.Action] = append(actions[ev.Approval.Action], *ev.Approval)
			}
		}
	}
	has := func(action session.ApprovalAction, f func(session.ApprovalEvent) bool) bool {
		return slices.ContainsFunc(actions[action], f)
	}
	if len(actions[session.ApprovalRequested]) < 9 ||
		!has(session.ApprovalApproved, func(e session.ApprovalEvent) bool {
			return e.ID == heldID && e.Approver == "bob" && e.Comment == "ticket 42" && e.Rule == "deletes-need-approval"
		}) ||
		!has(session.ApprovalDenied, func(e session.ApprovalEvent) bool { return e.ID == deniedID && e.Comment == "not today" }) ||
		!has(session.ApprovalPending, func(e session.ApprovalEvent) bool { return e.Rule == "refunds-deferred" && e.Mode == "defer" }) ||
		!has(session.ApprovalApproved, func(e session.ApprovalEvent) bool { return e.Rule == "refunds-deferred" && e.Approver == "bob" }) ||
		!has(session.ApprovalApproved, func(e session.ApprovalEvent) bool { return e.Rule == "items-grant" && e.Grant }) {
		t.Errorf("the recording's approval events: %+v", actions)
	}

	// No secret in the logs, the webhook's bodies or the recording.
	texts := readDir(t, filepath.Join(filepath.Dir(path), "rec"))
	texts["the gateway's logs"] = tg.logs.String()
	for i, b := range hooks.all() {
		texts[fmt.Sprintf("webhook call %d", i)] = b
	}
	checkNoSecrets(t, texts, "alice-secret", "bob-secret", "carol-secret", "app-user-secret", "webhook-header-secret",
		"webhook-url-secret", testAdminToken, testRecordingKey, cluster.Password)
}

// TestApprovalsSharedAcrossGateways runs two `pgwarden serve` processes
// that share the PostgreSQL approval store: a statement held by the
// first is approved through the second's admin API, and completes.
func TestApprovalsSharedAcrossGateways(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	cluster := startCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	approvalsSetup(t, ctx, cluster)
	if err := cluster.Exec(ctx, "app", "CREATE DATABASE approvals"); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, fmt.Sprintf(`listen: 127.0.0.1:0
upstream: {address: %s}
auth:
%scredentials:
  static:
    - {user: app_user, password: app-user-secret}
%sapprovals:
  postgres: "${PGW_TEST_APPROVALS_DSN}"
  table: shared_approvals
admin: {listen: "127.0.0.1:0", token: "${PGW_TEST_ADMIN_TOKEN}"}
log: {format: json}
`, cluster.Addr(), approvalsUsers, approvalsPolicy))
	env := []string{"PGW_TEST_APPROVALS_DSN=" + cluster.SuperConnString("approvals"), "PGW_TEST_ADMIN_TOKEN=" + testAdminToken}
	a := startServe(t, ctx, bin, path, env...)
	b := startServe(t, ctx, bin, path, env...)

	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://alice:alice-secret@%s/app?sslmode=disable", a.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "DELETE FROM orders WHERE id = 1")
		done <- err
	}()
	// Gateway B lists the request gateway A holds, and decides it.
	rec := waitPending(t, ctx, b.adminURL, "deletes-need-approval")
	if rec.Request.Identity.Subject != "alice" || rec.Request.SQL != "DELETE FROM orders WHERE id = 1" {
		t.Errorf("request seen through B = %+v", rec)
	}
	if status, body := approvalCall(t, b.adminURL, testAdminToken, basicApprover("alice", "alice-secret"), "POST",
		"/approvals/"+rec.Request.ID+"/approve", nil); status != http.StatusForbidden {
		t.Errorf("self-approval through B: %d %s, want 403", status, body)
	}
	start := time.Now()
	decideAs(t, b.adminURL, rec.Request.ID, "approve", basicApprover("bob", "bob-secret"), "approved through B")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the DELETE held by A, approved through B: %v", err)
		}
		t.Logf("the DELETE held by gateway A completed %v after gateway B's approval", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("the DELETE held by A did not complete within 10s of the approval through B")
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 9 {
		t.Errorf("orders after the approved DELETE: %d, %v; want 9", n, err)
	}
	// A sees the decision too.
	if got := getApproval(t, a.adminURL, rec.Request.ID); got.Status != approval.StatusApproved || got.Approver != "bob" {
		t.Errorf("the request through A = %+v", got)
	}

	conn.Close(ctx)
	for _, sp := range []*servedProcess{a, b} {
		if err := sp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := <-sp.exited; err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want status 0", err)
		}
		logs := sp.stderr.String()
		for _, secret := range []string{testAdminToken, cluster.Password, "alice-secret", "bob-secret", "app-user-secret"} {
			if strings.Contains(logs, secret) {
				t.Errorf("serve logged the secret %q", secret)
			}
		}
	}
}

// TestApprovalsWithoutSection checks the approvals endpoints of a
// gateway without an approvals section: 404, as JSON, before any
// approver check.
func TestApprovalsWithoutSection(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, `listen: 127.0.0.1:0
upstream: {address: "127.0.0.1:1"}
auth:
`+approvalsUsers+`credentials:
  static: [{user: app_user, password: app-user-secret}]
policy: {default: allow}
admin: {listen: "127.0.0.1:0", token: `+testAdminToken+`, revocations_file: revocations.json}
`, testAdminToken)
	if tg.g.proxy.Approver != nil {
		t.Errorf("the proxy has an approver without an approvals section")
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/approvals"}, {"GET", "/approvals/x"}, {"POST", "/approvals/x/approve"}, {"POST", "/approvals/x/deny"}, {"GET", "/grants"},
	} {
		status, body := approvalCall(t, tg.adminURL, testAdminToken, "", c.method, c.path, nil)
		if status != http.StatusNotFound || !strings.Contains(string(body), "no approvals section") {
			t.Errorf("%s %s: %d %s", c.method, c.path, status, body)
		}
	}
	if status, _ := approvalCall(t, tg.adminURL, "", "", "GET", "/approvals", nil); status != http.StatusUnauthorized {
		t.Errorf("GET /approvals without the admin token: %d", status)
	}
}
