package approval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

var _ Store = (*Postgres)(nil)

// DefaultTable is the table a Postgres store keeps its requests in unless
// PostgresOptions.Table names another; its grants are in DefaultTable +
// "_grants".
const DefaultTable = "pgwarden_approvals"

// DefaultPollInterval is how often a Postgres store looks for decisions
// about its held requests when no notification came.
const DefaultPollInterval = 2 * time.Second

// StaleHoldGrace is how long past its timeout a held request of a
// gateway that stopped (and so could not withdraw it) still counts as
// pending: after it, the request reads as withdrawn and Decide refuses it
// with ErrNotPending. It covers the clock difference between gateways.
const StaleHoldGrace = time.Minute

// ListenerApplicationName is the application_name of a Postgres store's
// listener connection (pg_stat_activity shows it).
const ListenerApplicationName = "pgwarden-approvals-listener"

// PostgresOptions tune a Postgres store; the zero value is ready to use.
type PostgresOptions struct {
	Options
	// Table is the requests table, "name" or "schema.name" (lower-case
	// letters, digits and underscores, each part at most 48 characters);
	// grants are kept in Table + "_grants". Default DefaultTable.
	Table string
	// PollInterval is how often the store looks for decisions about its
	// held requests, should a notification be lost (a dropped listener
	// connection). Default DefaultPollInterval.
	PollInterval time.Duration
}

// Postgres is a Store that keeps its requests and grants in PostgreSQL
// tables, so that several gateways (and their admin APIs) share them: a
// request held by one gateway can be decided through any other. It is
// safe for concurrent use.
type Postgres struct {
	opts     PostgresOptions
	log      *slog.Logger
	notify   *notifier
	pool     *pgxpool.Pool
	lcfg     *pgx.ConnConfig // the listener's
	password string          // the connection string's, kept to scrub errors
	table    string          // quoted, possibly schema-qualified
	grants   string          // the same
	channel  string          // NOTIFY channel

	wmu     sync.Mutex
	waiters map[string]chan struct{} // held requests of this process, by id

	closeMu sync.RWMutex
	closed  bool
	closing chan struct{}  // closed by Close: held requests withdraw
	calls   sync.WaitGroup // calls in flight
	stop    context.CancelFunc
	bg      sync.WaitGroup // listener and poller
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}(\.[a-z_][a-z0-9_]{0,47})?$`)

// OpenPostgres connects to the database connString names, creates the
// tables if they are missing, starts listening for decisions and returns
// the store. The connection string (and its password) never appears in
// an error or a log.
//
// The role needs SELECT, INSERT and UPDATE on both tables (and CREATE on
// the schema for the first OpenPostgres, unless the tables exist). Every
// gateway and admin API sharing the tables must use the same Table, and
// their clocks should agree: times are the store's (Options.Now), not the
// server's.
func OpenPostgres(ctx context.Context, connString string, opts PostgresOptions) (*Postgres, error) {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if !tableName.MatchString(opts.Table) {
		return nil, fmt.Errorf("approval: table name %q: use lower-case letters, digits and underscores (at most 48), optionally schema-qualified", opts.Table)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's parse errors can quote the string: say less.
		return nil, errors.New("approval: the connection string is invalid")
	}
	parts := strings.Split(opts.Table, ".")
	gparts := append([]string(nil), parts...)
	gparts[len(gparts)-1] += "_grants"
	s := &Postgres{opts: opts, log: opts.logger(), notify: newNotifier(opts.Options),
		password: pc.ConnConfig.Password, table: pgx.Identifier(parts).Sanitize(),
		grants: pgx.Identifier(gparts).Sanitize(), channel: channelName(opts.Table),
		waiters: map[string]chan struct{}{}, closing: make(chan struct{})}
	s.lcfg = pc.ConnConfig.Copy()
	s.lcfg.RuntimeParams["application_name"] = ListenerApplicationName
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, s.fail("connecting to the database", err)
	}
	if err := s.prepare(ctx, parts[len(parts)-1]); err != nil {
		s.pool.Close()
		return nil, err
	}
	conn, err := s.connectListener(ctx)
	if err != nil {
		s.pool.Close()
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.bg.Add(2)
	go s.listen(bg, conn)
	go s.poll(bg)
	return s, nil
}

// channelName is the NOTIFY channel of table: its name, or (too long for
// a channel) a name derived from it.
func channelName(table string) string {
	if len(table) <= 63 {
		return table
	}
	h := sha256.Sum256([]byte(table))
	return "pgwarden_approvals_" + hex.EncodeToString(h[:8])
}

// prepare creates the tables if they are missing. Several gateways may
// open the same tables at once: an advisory lock keeps them from racing
// each other.
func (s *Postgres) prepare(ctx context.Context, name string) error {
	var exists bool
	err := s.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL",
		s.table, s.grants).Scan(&exists)
	if err != nil {
		return s.fail("looking for the tables", err)
	}
	if exists {
		return nil
	}
	idx := func(suffix string) string { return pgx.Identifier{name + suffix}.Sanitize() }
	ddl := fmt.Sprintf(createTables, s.table, idx("_fingerprint"), idx("_pending_defer"), idx("_seq"),
		s.grants, idx("_grants_lookup"))
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "pgwarden-approvals:"+s.opts.Table); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, ddl)
		return err
	})
	if err != nil {
		return s.fail("creating the tables", err)
	}
	return nil
}

// The tables. A request is a row; its status changes only from
// 'pending' (guarded by WHERE status = 'pending'), and an approved
// deferred request's uses_left only goes down. The partial unique index
// keeps one pending deferred request per fingerprint.
const createTables = `
CREATE TABLE IF NOT EXISTS %[1]s (
	id              text        PRIMARY KEY,
	seq             bigint      GENERATED ALWAYS AS IDENTITY,
	request         jsonb       NOT NULL,
	status          text        NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'withdrawn', 'expired')),
	mode            text        NOT NULL CHECK (mode IN ('hold', 'defer')),
	fingerprint     text        NOT NULL,
	filed           timestamptz NOT NULL,
	held_until      timestamptz,
	approver        text,
	approver_issuer text,
	comment         text,
	decided         timestamptz,
	valid_until     timestamptz,
	uses_left       integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS %[2]s ON %[1]s (fingerprint);
CREATE UNIQUE INDEX IF NOT EXISTS %[3]s ON %[1]s (fingerprint) WHERE status = 'pending' AND mode = 'defer';
CREATE INDEX IF NOT EXISTS %[4]s ON %[1]s (seq);
CREATE TABLE IF NOT EXISTS %[5]s (
	id          text        PRIMARY KEY,
	request_id  text        NOT NULL,
	subject     text        NOT NULL,
	issuer      text        NOT NULL,
	rule        text        NOT NULL,
	approver    text        NOT NULL,
	valid_from  timestamptz NOT NULL,
	valid_until timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS %[6]s ON %[5]s (issuer, subject, rule, valid_until);
`

// enter registers a call; false when the store is closed.
func (s *Postgres) enter() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return false
	}
	s.calls.Add(1)
	return true
}

// Approve implements policy.Approver; see the package documentation.
func (s *Postgres) Approve(ctx context.Context, req *policy.ApprovalRequest) (policy.ApprovalDecision, error) {
	if err := checkRequest(req); err != nil {
		return policy.ApprovalDecision{}, err
	}
	if err := ctx.Err(); err != nil {
		return policy.ApprovalDecision{}, withdrawn(err)
	}
	spec := req.Spec.Effective()
	if spec.Mode != policy.Hold && spec.Mode != policy.Defer {
		return policy.ApprovalDecision{}, fmt.Errorf("approval: unknown approval mode %q", spec.Mode)
	}
	if !s.enter() {
		return policy.ApprovalDecision{}, ErrClosed
	}
	defer s.calls.Done()
	now := s.opts.now()
	g, ok, err := s.activeGrant(ctx, req.Identity.Issuer, req.Identity.Subject, req.Rule, now)
	if err != nil {
		return policy.ApprovalDecision{}, err
	}
	if ok {
		return grantDecision(g), nil
	}
	if spec.Mode == policy.Defer {
		return s.deferred(ctx, req, now)
	}
	return s.hold(ctx, req, spec, now)
}

// redeem takes one use of an approved deferred request of fingerprint
// $1 valid at $2, in one statement. c_id is the candidate found (NULL:
// none); u_id the one used (NULL: another gateway took the use first).
const redeem = `
WITH c AS (
	SELECT id FROM %[1]s
	WHERE fingerprint = $1 AND status = 'approved' AND mode = 'defer' AND valid_until > $2 AND uses_left > 0
	ORDER BY valid_until, seq LIMIT 1
), u AS (
	UPDATE %[1]s t SET uses_left = t.uses_left - 1,
		status = CASE WHEN t.uses_left <= 1 THEN 'expired' ELSE 'approved' END
	FROM c WHERE t.id = c.id AND t.status = 'approved' AND t.valid_until > $2 AND t.uses_left > 0
	RETURNING t.id, t.approver, t.comment
)
SELECT c.id, u.id, u.approver, u.comment FROM c LEFT JOIN u ON true`

// insertRecord files a request.
const insertRecord = `INSERT INTO %[1]s (id, request, status, mode, fingerprint, filed, held_until)
	VALUES ($1, $2::jsonb, 'pending', $3, $4, $5, $6)`

// maxRaces bounds how often a deferred Approve starts over after losing
// a race to another gateway (a use taken, a pending request decided).
const maxRaces = 20

// deferred uses an approval of req's fingerprint, or finds the pending
// request, or files req.
func (s *Postgres) deferred(ctx context.Context, req *policy.ApprovalRequest, now time.Time) (policy.ApprovalDecision, error) {
	fp := req.Fingerprint()
	for range maxRaces {
		var cand, used, approver, comment *string
		err := s.pool.QueryRow(ctx, fmt.Sprintf(redeem, s.table), fp, now).Scan(&cand, &used, &approver, &comment)
		switch {
		case err == nil && used != nil:
			req.ID = *used
			return policy.ApprovalDecision{Outcome: policy.Approved, ID: *used, Approver: deref(approver), Comment: deref(comment)}, nil
		case err == nil:
			continue // another gateway took the use: look again
		case !errors.Is(err, pgx.ErrNoRows):
			return policy.ApprovalDecision{}, s.fail("looking for an approval", err)
		}
		id := newID()
		rec := Record{Request: filed(req, id, now), Status: StatusPending, Fingerprint: fp}
		body, err := json.Marshal(rec.Request)
		if err != nil {
			return policy.ApprovalDecision{}, fmt.Errorf("approval: encoding the request: %w", err)
		}
		tag, err := s.pool.Exec(ctx, fmt.Sprintf(insertRecord+
			` ON CONFLICT (fingerprint) WHERE status = 'pending' AND mode = 'defer' DO NOTHING`, s.table),
			id, string(body), string(policy.Defer), fp, now, nil)
		if err != nil {
			return policy.ApprovalDecision{}, s.fail("filing the request", err)
		}
		if tag.RowsAffected() == 1 {
			req.ID = id
			s.notify.send(rec)
			return policy.ApprovalDecision{Outcome: policy.Pending, ID: id}, nil
		}
		err = s.pool.QueryRow(ctx, fmt.Sprintf(
			`SELECT id FROM %s WHERE fingerprint = $1 AND status = 'pending' AND mode = 'defer'`, s.table), fp).Scan(&id)
		switch {
		case err == nil:
			req.ID = id
			return policy.ApprovalDecision{Outcome: policy.Pending, ID: id}, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return policy.ApprovalDecision{}, s.fail("looking for the pending request", err)
		}
		// The pending request was decided meanwhile: start over.
	}
	return policy.ApprovalDecision{}, errors.New("approval: too many concurrent changes to the same request; try again")
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// hold files req and waits for a decision.
func (s *Postgres) hold(ctx context.Context, req *policy.ApprovalRequest, spec policy.ApprovalSpec, now time.Time) (policy.ApprovalDecision, error) {
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	id := newID()
	rec := Record{Request: filed(req, id, now), Status: StatusPending, Fingerprint: req.Fingerprint()}
	body, err := json.Marshal(rec.Request)
	if err != nil {
		return policy.ApprovalDecision{}, fmt.Errorf("approval: encoding the request: %w", err)
	}
	// Wait before filing, so that no notification is missed.
	wake := s.register(id)
	defer s.unregister(id)
	// Filed whole even if ctx ends meanwhile (the wait then withdraws
	// it): a canceled INSERT could not tell whether it committed.
	ictx, icancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	_, err = s.pool.Exec(ictx, fmt.Sprintf(insertRecord, s.table),
		id, string(body), string(policy.Hold), rec.Fingerprint, now, now.Add(spec.Timeout))
	icancel()
	if err != nil {
		return policy.ApprovalDecision{}, s.fail("filing the request", err)
	}
	req.ID = id
	s.notify.send(rec)
	for {
		select {
		case <-wake:
		case <-ctx.Done():
			return s.withdraw(id, ctx.Err())
		case <-s.closing:
			return s.withdraw(id, ErrClosed)
		}
		r, err := s.get(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("approval: reading a held request failed; the next poll tries again", "request", id, "err", err)
			}
			continue
		}
		if d, ok := decision(r); ok {
			return d, nil
		}
		if r.Status != StatusPending {
			return policy.ApprovalDecision{}, fmt.Errorf("%w: request %s is %s", policy.ErrApprovalWithdrawn, id, r.Status)
		}
	}
}

// withdraw marks held request id withdrawn if it is still pending, in
// one guarded statement. Decided just before, its decision stands.
func (s *Postgres) withdraw(id string, cause error) (policy.ApprovalDecision, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fail := func() error {
		if cause == ErrClosed {
			return fmt.Errorf("%w: request %s withdrawn", ErrClosed, id)
		}
		return withdrawn(cause)
	}
	now := s.opts.now()
	row := s.pool.QueryRow(ctx, fmt.Sprintf(`UPDATE %s SET status = 'withdrawn', decided = $2
		WHERE id = $1 AND status = 'pending' RETURNING `+recordColumns, s.table), id, now)
	rec, err := scanRecord(row)
	if err == nil {
		s.notify.send(rec)
		return policy.ApprovalDecision{}, fail()
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		s.log.Error("approval: withdrawing a held request failed; it reads as withdrawn once its timeout is past",
			"request", id, "err", s.scrub(err))
		return policy.ApprovalDecision{}, fail()
	}
	r, err := s.get(ctx, id)
	if err != nil {
		return policy.ApprovalDecision{}, fmt.Errorf("%w (%w)", fail(), err)
	}
	if d, ok := decision(r); ok {
		return d, nil
	}
	return policy.ApprovalDecision{}, fail()
}

// recordColumns are the columns scanRecord reads, with the stored status.
const recordColumns = `request, status, fingerprint, approver, approver_issuer, comment, decided, valid_until, uses_left`

// statusAt is the status of a row at $now, with holds whose timeout is
// past $stale: an approved deferred request past its validity is
// expired; a pending held request whose gateway stopped (past its
// timeout and StaleHoldGrace) is withdrawn.
func statusAt(now, stale string) string {
	return `CASE WHEN status = 'approved' AND valid_until IS NOT NULL AND valid_until <= ` + now + ` THEN 'expired'
		WHEN status = 'pending' AND held_until IS NOT NULL AND held_until <= ` + stale + ` THEN 'withdrawn'
		ELSE status END`
}

// readColumns are recordColumns with the status at $2 (stale: $3).
var readColumns = strings.Replace(recordColumns, "status", statusAt("$2", "$3")+" AS status", 1)

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	var body []byte
	var approver, issuer, comment *string
	var decided, validUntil *time.Time
	if err := row.Scan(&body, &r.Status, &r.Fingerprint, &approver, &issuer, &comment, &decided, &validUntil, &r.UsesLeft); err != nil {
		return Record{}, err
	}
	if err := json.Unmarshal(body, &r.Request); err != nil {
		return Record{}, fmt.Errorf("approval: a stored request is unreadable: %w", err)
	}
	r.Approver, r.ApproverIssuer, r.Comment = deref(approver), deref(issuer), deref(comment)
	if decided != nil {
		r.Decided = decided.UTC()
	}
	if validUntil != nil {
		r.ValidUntil = validUntil.UTC()
	}
	return r, nil
}

// get reads record id as of now.
func (s *Postgres) get(ctx context.Context, id string) (Record, error) {
	now := s.opts.now()
	r, err := scanRecord(s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE id = $1`, readColumns, s.table),
		id, now, now.Add(-StaleHoldGrace)))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	case err != nil:
		return Record{}, s.fail("reading request "+id, err)
	}
	return r, nil
}

// Get implements Store.
func (s *Postgres) Get(ctx context.Context, id string) (Record, error) {
	if !s.enter() {
		return Record{}, ErrClosed
	}
	defer s.calls.Done()
	return s.get(ctx, id)
}

// List implements Store.
func (s *Postgres) List(ctx context.Context, statuses ...Status) ([]Record, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.calls.Done()
	want := make([]string, len(statuses))
	for i, st := range statuses {
		want[i] = string(st)
	}
	now := s.opts.now()
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT %[1]s FROM (SELECT seq, %[2]s FROM %[3]s) x
		WHERE cardinality($1::text[]) = 0 OR status = ANY($1::text[]) ORDER BY seq DESC`,
		recordColumns, readColumns, s.table), want, now, now.Add(-StaleHoldGrace))
	if err != nil {
		return nil, s.fail("listing requests", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Record, error) { return scanRecord(r) })
	if err != nil {
		return nil, s.fail("listing requests", err)
	}
	return out, nil
}

// Decide implements Store. The decision, its grant and the notification
// to the other gateways commit together, guarded by status = 'pending'.
func (s *Postgres) Decide(ctx context.Context, id string, approve bool, approver session.Identity, comment string) (Record, error) {
	if !s.enter() {
		return Record{}, ErrClosed
	}
	defer s.calls.Done()
	now := s.opts.now()
	var rec Record
	var decideErr error // a refusal: the transaction commits what it changed (a stale hold withdrawn)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var body []byte
		var status, mode string
		var heldUntil *time.Time
		err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT request, status, mode, held_until FROM %s WHERE id = $1 FOR UPDATE`, s.table),
			id).Scan(&body, &status, &mode, &heldUntil)
		if errors.Is(err, pgx.ErrNoRows) {
			decideErr = fmt.Errorf("%w: %q", ErrNotFound, id)
			return nil
		}
		if err != nil {
			return err
		}
		if status == string(StatusPending) && heldUntil != nil && !heldUntil.After(now.Add(-StaleHoldGrace)) {
			// A held request whose gateway stopped: nobody waits for it.
			if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET status = 'withdrawn', decided = $2 WHERE id = $1 AND status = 'pending'`,
				s.table), id, now); err != nil {
				return err
			}
			status = string(StatusWithdrawn)
		}
		if status != string(StatusPending) {
			decideErr = fmt.Errorf("%w: request %s is %s", ErrNotPending, id, status)
			return nil
		}
		var req policy.ApprovalRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("a stored request is unreadable: %w", err)
		}
		if err := mayDecide(&req, approve, approver); err != nil {
			decideErr = err
			return nil
		}
		newStatus, spec := StatusDenied, req.Spec.Effective()
		var validUntil *time.Time
		uses := 0
		if approve {
			newStatus = StatusApproved
			if mode == string(policy.Defer) {
				vu := now.Add(spec.Validity)
				validUntil, uses = &vu, spec.Uses
			}
		}
		rec, err = scanRecord(tx.QueryRow(ctx, fmt.Sprintf(`UPDATE %s SET status = $2, approver = $3, approver_issuer = $4,
			comment = $5, decided = $6, valid_until = $7, uses_left = $8
			WHERE id = $1 AND status = 'pending' RETURNING `+recordColumns, s.table),
			id, string(newStatus), approver.Subject, approver.Issuer, comment, now, validUntil, uses))
		if err != nil {
			return err
		}
		if approve && spec.Grant > 0 {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (id, request_id, subject, issuer, rule, approver, valid_from, valid_until)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, s.grants), newID(), id, req.Identity.Subject, req.Identity.Issuer,
				req.Rule, approver.Subject, now, now.Add(spec.Grant)); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, id)
		return err
	})
	if err != nil {
		return Record{}, s.fail("deciding request "+id, err)
	}
	if decideErr != nil {
		return Record{}, decideErr
	}
	s.wake(id)
	s.notify.send(rec)
	return rec, nil
}

const grantColumns = `id, request_id, subject, issuer, rule, approver, valid_from, valid_until`

func scanGrant(row pgx.Row) (Grant, error) {
	var g Grant
	err := row.Scan(&g.ID, &g.RequestID, &g.Subject, &g.Issuer, &g.Rule, &g.Approver, &g.From, &g.Until)
	g.From, g.Until = g.From.UTC(), g.Until.UTC()
	return g, err
}

// activeGrant returns the active grant for (issuer, subject, rule) at now
// that lasts longest.
func (s *Postgres) activeGrant(ctx context.Context, issuer, subject, rule string, now time.Time) (Grant, bool, error) {
	g, err := scanGrant(s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT %s FROM %s
		WHERE issuer = $1 AND subject = $2 AND rule = $3 AND valid_from <= $4 AND valid_until > $4
		ORDER BY valid_until DESC LIMIT 1`, grantColumns, s.grants), issuer, subject, rule, now))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Grant{}, false, nil
	case err != nil:
		return Grant{}, false, s.fail("looking for a grant", err)
	}
	return g, true, nil
}

// Grants implements Store.
func (s *Postgres) Grants(ctx context.Context) ([]Grant, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.calls.Done()
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE valid_from <= $1 AND valid_until > $1
		ORDER BY valid_from DESC, id`, grantColumns, s.grants), s.opts.now())
	if err != nil {
		return nil, s.fail("listing grants", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Grant, error) { return scanGrant(r) })
	if err != nil {
		return nil, s.fail("listing grants", err)
	}
	return out, nil
}

// register makes a wake-up channel for held request id.
func (s *Postgres) register(id string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.wmu.Lock()
	s.waiters[id] = ch
	s.wmu.Unlock()
	return ch
}

func (s *Postgres) unregister(id string) {
	s.wmu.Lock()
	delete(s.waiters, id)
	s.wmu.Unlock()
}

// wake tells the holder of id (if it is held here) to look at it.
func (s *Postgres) wake(id string) {
	s.wmu.Lock()
	ch := s.waiters[id]
	s.wmu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// held returns the ids of the requests held here.
func (s *Postgres) held() []string {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ids := make([]string, 0, len(s.waiters))
	for id := range s.waiters {
		ids = append(ids, id)
	}
	return ids
}

// connectListener opens the listener connection and listens on the
// channel.
func (s *Postgres) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.lcfg.Copy())
	if err != nil {
		return nil, s.fail("connecting the listener", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, s.fail("listening for decisions", err)
	}
	return conn, nil
}

// Backoff of the listener's reconnection.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// listen dispatches notifications to the held requests until ctx ends,
// reconnecting (with backoff) when the connection drops. After a
// reconnection, every held request looks again: a decision may have been
// notified while nobody listened.
func (s *Postgres) listen(ctx context.Context, conn *pgx.Conn) {
	defer s.bg.Done()
	backoff := minBackoff
	for {
		if conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			c, err := s.connectListener(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("approval: the listener cannot reconnect; held requests rely on polling meanwhile", "err", err)
				}
				continue
			}
			conn = c
			s.log.Info("approval: the listener reconnected")
			for _, id := range s.held() {
				s.wake(id)
			}
		}
		since := time.Now()
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			s.wake(n.Payload)
			continue
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		conn = nil
		if ctx.Err() != nil {
			return
		}
		if time.Since(since) > time.Minute {
			backoff = minBackoff
		}
		s.log.Warn("approval: the listener connection dropped; reconnecting", "err", s.scrub(err))
	}
}

// poll wakes, every PollInterval, the held requests that were decided
// (should a notification have been lost).
func (s *Postgres) poll(ctx context.Context) {
	defer s.bg.Done()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := s.held()
		if len(ids) == 0 {
			continue
		}
		rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT id FROM %s WHERE id = ANY($1) AND status <> 'pending'`, s.table), ids)
		if err == nil {
			var decided []string
			decided, err = pgx.CollectRows(rows, pgx.RowTo[string])
			for _, id := range decided {
				s.wake(id)
			}
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("approval: polling for decisions failed", "err", s.scrub(err))
		}
	}
}

// Close withdraws the requests held by this store (their Approve returns
// an error wrapping ErrClosed), waits for the calls in flight, stops
// listening and closes the connections. It returns nil.
func (s *Postgres) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.closeMu.Unlock()
	s.calls.Wait()
	s.stop()
	s.bg.Wait()
	s.pool.Close()
	return nil
}

// fail wraps a database error for the caller, without the connection
// string's password.
func (s *Postgres) fail(what string, err error) error {
	return fmt.Errorf("approval: %s: %w", what, s.scrub(err))
}

// scrub returns err, or when its text shows the password, an error with
// the same text but for the password.
func (s *Postgres) scrub(err error) error {
	if s.password != "" && strings.Contains(err.Error(), s.password) {
		return errors.New(strings.ReplaceAll(err.Error(), s.password, "REDACTED"))
	}
	return err
}
