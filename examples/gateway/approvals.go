package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/xdg-go/scram"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/session"
)

// Approvals. A policy rule with verdict approve sends a statement for a
// person's approval: the proxy asks its Approver, the approvals section's
// store (policy/approval: Memory, or Postgres shared by several
// gateways). People list the requests and decide them through the admin
// API (GET /approvals, POST /approvals/{id}/approve and .../deny, GET
// /grants; `pgwarden approvals`, `approve`, `deny`). The admin token lets
// a caller in; deciding also needs the approver's own credentials, since
// the store needs to know who decides (approver groups, no
// self-approval): the header X-Pgwarden-Approver carries a static user's
// name and password (Basic) or an OIDC token (Bearer), checked by the
// same authenticators clients log in with.

// approverHeader carries the approver's credentials on the decide
// endpoints.
const approverHeader = "X-Pgwarden-Approver"

// defaultWebhookTimeout bounds one webhook POST unless
// approvals.webhook.timeout says otherwise; maxWebhookTimeout is the
// longest allowed (a slow webhook delays the next notifications).
const (
	defaultWebhookTimeout = 5 * time.Second
	maxWebhookTimeout     = time.Minute
)

// approvalsTableName is what approval.OpenPostgres accepts as a table
// name; checked here too, to name the key at fault before connecting.
var approvalsTableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}(\.[a-z_][a-z0-9_]{0,47})?$`)

// reservedWebhookHeaders are set by the gateway or by HTTP itself.
var reservedWebhookHeaders = []string{"Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection"}

// usesPostgres reports whether the requests are kept in PostgreSQL.
func (a *approvalsConfig) usesPostgres() bool {
	return a.Store == approvalsPostgres || (a.Store == "" && !a.Postgres.IsZero())
}

// policyRules returns the policy section's rules (none without one).
func (c *config) policyRules() []policy.RuleSpec {
	if c.Policy == nil {
		return nil
	}
	return c.Policy.Rules
}

// mayApplyToTheSame reports whether two rules may apply to one identity:
// false only when both name groups, or both name subjects, and share none.
func mayApplyToTheSame(a, b policy.RuleSpec) bool {
	disjoint := func(x, y []string) bool {
		return len(x) > 0 && len(y) > 0 && !slices.ContainsFunc(x, func(s string) bool { return slices.Contains(y, s) })
	}
	return !disjoint(a.Groups, b.Groups) && !disjoint(a.Subjects, b.Subjects)
}

// validateApprovals checks the approvals section, and warns about policy
// rules with verdict approve that cannot work as configured.
func (c *config) validateApprovals(v *validator) {
	a := c.Approvals
	var approveRules []int
	if c.Policy != nil {
		for i, r := range c.Policy.Rules {
			if r.Verdict == "approve" {
				approveRules = append(approveRules, i)
			}
		}
	}
	rules := keyPath("policy.rules")
	for i, r := range c.policyRules() {
		if !r.ReadOnly {
			continue
		}
		for _, j := range approveRules {
			if mayApplyToTheSame(r, c.Policy.Rules[j]) {
				v.warn(rules.index(i).key("read_only"), "starts sessions read-only on the server, so a write that policy.rules[%d] sends for approval fails there (SQLSTATE 25006) after a person approves it, for identities both rules apply to; give them groups or subjects that separate them, or rely on the database role's grants instead", j)
				break
			}
		}
	}
	if a == nil {
		for _, i := range approveRules {
			v.warn(rules.index(i).key("verdict"), "is approve, but there is no approvals section: the gateway refuses these statements (add approvals: {store: memory}, or approvals.postgres)")
		}
		return
	}
	p := keyPath("approvals")
	switch string(a.Store) {
	case "":
	case approvalsMemory:
		if !a.Postgres.IsZero() {
			v.fail(p.key("postgres"), "only applies to store postgres (store is memory)")
		}
	case approvalsPostgres:
		if a.Postgres.IsZero() {
			v.fail(p.key("postgres"), "is required with store postgres: the connection string of the database that keeps the requests")
		}
	default:
		v.fail(p.key("store"), "must be memory or postgres")
	}
	if !a.Postgres.IsZero() {
		if _, err := pgconn.ParseConfig(a.Postgres.Reveal()); err != nil {
			// pgconn's errors may quote the string, and with it the password.
			v.fail(p.key("postgres"), "is not a valid connection string (libpq keyword=value or postgres:// URL), or names a file that cannot be read")
		}
	}
	if a.Table != "" {
		switch {
		case !a.usesPostgres():
			v.fail(p.key("table"), "only applies to store postgres")
		case !approvalsTableName.MatchString(string(a.Table)):
			v.fail(p.key("table"), "must be name or schema.name: lower-case letters, digits and underscores, at most 48 each")
		}
	}
	c.validateWebhook(v, p.key("webhook"))

	if len(approveRules) == 0 {
		v.warn(p, "no policy rule has verdict approve, so nothing is ever sent for approval")
	}
	for _, i := range approveRules {
		if r := c.Policy.Rules[i]; r.Approve == nil || len(r.Approve.Approvers) == 0 {
			v.warn(rules.index(i), "verdict approve without approve.approvers: anyone who can prove an identity to the admin API (any auth.users entry, any token of auth.oidc) may decide these requests")
		}
	}
	switch {
	case c.Admin == nil && !a.usesPostgres():
		v.warn(p, "store memory and no admin section: nobody can decide the requests, so every statement sent for approval waits until it times out")
	case c.Admin != nil && len(c.Auth.Users) == 0 && c.Auth.OIDC == nil:
		v.warn(p, "the admin API checks approvers against auth.users or auth.oidc, and neither is configured: nobody can decide requests through this gateway")
	}
}

// validateWebhook checks approvals.webhook at p.
func (c *config) validateWebhook(v *validator, p keyPath) {
	w := c.Approvals.Webhook
	if w == nil {
		return
	}
	raw := w.URL.Reveal()
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		v.fail(p.key("url"), "is required: the https URL that receives the approval requests")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.fail(p.key("url"), "must be an https URL")
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		v.fail(p.key("url"), "must be https (http is only accepted on loopback): the requests carry statements and parameters, and the headers may carry tokens")
	case u.User != nil:
		v.fail(p.key("url"), "must not contain a user name or password: send credentials in headers")
	}
	hp := p.key("headers")
	for name, value := range w.Headers {
		k := hp.key(name)
		switch {
		case !validHeaderName(name):
			v.fail(k, "is not a valid HTTP header name")
		case slices.Contains(reservedWebhookHeaders, textproto.CanonicalMIMEHeaderKey(name)):
			v.fail(k, "is set by the gateway and cannot be configured")
		}
		switch val := value.Reveal(); {
		case val == "":
			v.fail(k, "is empty")
		case strings.ContainsAny(val, "\r\n\x00") || !utf8.ValidString(val):
			v.fail(k, "contains a line break, a NUL or invalid UTF-8")
		}
	}
	if d := time.Duration(w.Timeout); d > maxWebhookTimeout {
		v.fail(p.key("timeout"), "must be at most %s (a slow webhook delays the next notifications)", maxWebhookTimeout)
	}
}

// validHeaderName reports whether name is an HTTP field name (an RFC 9110
// token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// loopbackHost reports whether host (without a port) is localhost or a
// loopback IP.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// buildApprovals opens the approvals section's store (the PostgreSQL one
// connects and creates its tables, bounded by ctx), with the webhook as
// its Notify; nil without the section.
func buildApprovals(ctx context.Context, cfg *config, logger *slog.Logger) (approval.Store, error) {
	a := cfg.Approvals
	if a == nil {
		return nil, nil
	}
	opts := approval.Options{Logger: logger}
	if a.Webhook != nil {
		opts.Notify = newWebhook(a.Webhook, logger).notify
	}
	if !a.usesPostgres() {
		return approval.NewMemory(opts), nil
	}
	s, err := approval.OpenPostgres(ctx, a.Postgres.Reveal(), approval.PostgresOptions{Options: opts, Table: string(a.Table)})
	if err != nil {
		// The store's errors never contain the connection string.
		return nil, cfg.problemAt("approvals.postgres", "%w", err)
	}
	return s, nil
}

// approverAuth checks who decides an approval request: the static users
// and the OIDC authenticator of the auth section, as clients log in with
// them (nil when not configured).
type approverAuth struct {
	static *auth.Static
	oidc   *auth.OIDC
}

// Errors of approverAuth.identify.
var (
	// errNoApproverCredentials: the header is missing or malformed, or
	// names a method this gateway does not have. 401.
	errNoApproverCredentials = errors.New("no approver credentials")
	// errApproverUnverified: the credentials could not be checked (the
	// IdP is unreachable). 503.
	errApproverUnverified = errors.New("the approver's credentials could not be checked")
)

// identify checks the credentials in header (the value of
// X-Pgwarden-Approver: "Basic base64(user:password)" for a static user,
// "Bearer <token>" for an OIDC token) and returns the approver's
// identity. Its errors wrap auth.ErrInvalidCredentials (wrong password or
// token, unknown user), errNoApproverCredentials or
// errApproverUnverified; they never contain the credentials.
func (a approverAuth) identify(ctx context.Context, header string) (session.Identity, error) {
	scheme, value, _ := strings.Cut(strings.TrimSpace(header), " ")
	value = strings.TrimSpace(value)
	switch {
	case header == "":
		return session.Identity{}, fmt.Errorf("%w: send the approver's credentials as %s: Basic base64(user:password) (a static user) or Bearer <OIDC token>",
			errNoApproverCredentials, approverHeader)
	case strings.EqualFold(scheme, "Basic"):
		if a.static == nil {
			return session.Identity{}, fmt.Errorf("%w: this gateway has no static users (auth.users); send an OIDC token as Bearer", errNoApproverCredentials)
		}
		raw, err := base64.StdEncoding.DecodeString(value)
		user, password, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok || user == "" || password == "" || !utf8.Valid(raw) || strings.ContainsRune(user, 0) {
			return session.Identity{}, fmt.Errorf("%w: %s: Basic must carry base64(user:password)", errNoApproverCredentials, approverHeader)
		}
		conv := &approverConversation{secret: session.NewSecret(password)}
		id, err := a.static.Authenticate(ctx, &auth.Request{User: user, Database: "admin-api", Client: conv})
		return checkedApprover(id, err)
	case strings.EqualFold(scheme, "Bearer"):
		if a.oidc == nil {
			return session.Identity{}, fmt.Errorf("%w: this gateway has no OIDC authenticator (auth.oidc); send a static user's name and password as Basic", errNoApproverCredentials)
		}
		if value == "" {
			return session.Identity{}, fmt.Errorf("%w: %s: Bearer without a token", errNoApproverCredentials, approverHeader)
		}
		// Authenticate rather than Verify: a configured introspection
		// applies to approvers too.
		conv := &approverConversation{secret: session.NewSecret(value), bearer: true}
		id, err := a.oidc.Authenticate(ctx, &auth.Request{User: "approver", Database: "admin-api",
			Method: auth.MethodPassword, Client: conv})
		return checkedApprover(id, err)
	default:
		return session.Identity{}, fmt.Errorf("%w: %s must be Basic base64(user:password) or Bearer <OIDC token>", errNoApproverCredentials, approverHeader)
	}
}

// checkedApprover sorts an authenticator's answer into identify's errors.
func checkedApprover(id session.Identity, err error) (session.Identity, error) {
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrExchange), errors.Is(err, auth.ErrNotApplicable):
		// auth's errors never contain the password or the token.
		return session.Identity{}, fmt.Errorf("%w: %v", auth.ErrInvalidCredentials, err)
	default:
		return session.Identity{}, fmt.Errorf("%w: %v", errApproverUnverified, err)
	}
}

// SASL mechanisms the approver conversation can run.
const (
	mechSCRAMSHA256 = "SCRAM-SHA-256"
	mechOAuthBearer = "OAUTHBEARER"
)

// approverConversation plays the client's side of an authentication
// exchange, in the process, with credentials the admin API received: a
// static user's password (SCRAM-SHA-256, run with xdg-go/scram's client
// against auth.Static's server) or an OIDC token (in clear, or as SASL
// OAUTHBEARER). The authenticators stay the only place that checks a
// credential.
type approverConversation struct {
	secret session.Secret
	bearer bool // secret is a token
	mech   string
	scram  *scram.ClientConversation
}

var _ auth.Conversation = (*approverConversation)(nil)

// CleartextPassword implements auth.Conversation: the token, for OIDC.
func (c *approverConversation) CleartextPassword(context.Context) (session.Secret, error) {
	if !c.bearer {
		return session.Secret{}, fmt.Errorf("%w: a password is only checked with SCRAM", auth.ErrExchange)
	}
	return c.secret, nil
}

// SASLStart implements auth.Conversation.
func (c *approverConversation) SASLStart(_ context.Context, mechanisms []string) (string, []byte, error) {
	switch {
	case c.bearer && slices.Contains(mechanisms, mechOAuthBearer):
		c.mech = mechOAuthBearer
		return mechOAuthBearer, []byte("n,,\x01auth=Bearer " + c.secret.Reveal() + "\x01\x01"), nil
	case !c.bearer && slices.Contains(mechanisms, mechSCRAMSHA256):
		// As scramhash derives verifiers: SASLprep, or the password as it
		// is when SASLprep refuses it (PostgreSQL does the same).
		client, err := scram.SHA256.NewClient("", c.secret.Reveal(), "")
		if err != nil {
			if client, err = scram.SHA256.NewClientUnprepped("", c.secret.Reveal(), ""); err != nil {
				return "", nil, fmt.Errorf("%w: the password cannot be used with SCRAM", auth.ErrInvalidCredentials)
			}
		}
		c.mech, c.scram = mechSCRAMSHA256, client.NewConversation()
		first, err := c.scram.Step("")
		if err != nil {
			return "", nil, fmt.Errorf("%w: %v", auth.ErrExchange, err)
		}
		return mechSCRAMSHA256, []byte(first), nil
	}
	return "", nil, fmt.Errorf("%w: no usable SASL mechanism offered", auth.ErrExchange)
}

// SASLContinue implements auth.Conversation.
func (c *approverConversation) SASLContinue(_ context.Context, challenge []byte) ([]byte, error) {
	switch c.mech {
	case mechSCRAMSHA256:
		final, err := c.scram.Step(string(challenge))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", auth.ErrExchange, err)
		}
		return []byte(final), nil
	case mechOAuthBearer:
		// An RFC 7628 error status: acknowledge it; the authenticator
		// then fails.
		return []byte("\x01"), nil
	}
	return nil, fmt.Errorf("%w: unexpected SASL challenge", auth.ErrExchange)
}

// SASLFinal implements auth.Conversation: SCRAM's server signature is
// checked too.
func (c *approverConversation) SASLFinal(_ context.Context, data []byte) error {
	if c.mech != mechSCRAMSHA256 {
		return nil
	}
	if _, err := c.scram.Step(string(data)); err != nil || !c.scram.Valid() {
		return fmt.Errorf("%w: the server's SCRAM signature does not verify", auth.ErrExchange)
	}
	return nil
}

// TLSServerEndPoint implements auth.Conversation: there is no TLS
// connection to bind to.
func (c *approverConversation) TLSServerEndPoint() []byte { return nil }
