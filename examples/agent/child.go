package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The child's side of the story: an ordinary pgx program. It knows a
// connection string without a password (gatewayEnv) and reads its token
// from standard input; it never learns a database credential.

const (
	// roleEnv set to roleChild makes the binary the child.
	roleEnv   = "PGWARDEN_AGENT_ROLE"
	roleChild = "child"
	// gatewayEnv holds the child's connection string: the gateway's
	// address, the CA certificate's path, the database. No password.
	gatewayEnv = "PGWARDEN_AGENT_GATEWAY"
	// controlFD is the pipe the child tells the parent it is waiting on,
	// and sends its report on (JSON lines).
	controlFD = 3
	// waitSQL is the child waiting for more work: the session it holds
	// while the parent revokes.
	waitSQL = "SELECT pg_sleep(60)"
)

// pgError is an error as the child received it.
type pgError struct {
	Severity string `json:"severity,omitempty"`
	Code     string `json:"code,omitempty"`
	Message  string `json:"message"`
	Detail   string `json:"detail,omitempty"`
}

// childReport is what the child saw, sent to the parent at its end.
type childReport struct {
	Chain       []string `json:"chain"`        // pgwarden.chain, person first
	SessionID   string   `json:"session_id"`   // pgwarden.session_id
	SessionUser string   `json:"session_user"` // the role the gateway logged in as
	AppName     string   `json:"app_name"`     // application_name as the server has it
	Emails      []string `json:"emails"`       // customers.email as the child received them
	Inference   *pgError `json:"inference"`    // filtering on the masked column
	Delete      *pgError `json:"delete"`       // a write outside orders
	UpdateTag   string   `json:"update_tag"`   // the approved write
	UpdateErr   *pgError `json:"update_err"`
	StatusAfter string   `json:"status_after"` // order 2's status after it
	InsertErr   *pgError `json:"insert_err"`   // the denied write
	End         *pgError `json:"end"`          // how the session ended
	Reconnect   *pgError `json:"reconnect"`    // logging in again afterwards
}

// controlMessage is one line on the control pipe.
type controlMessage struct {
	Waiting string       `json:"waiting,omitempty"` // the session id, once it waits
	Lines   int          `json:"lines,omitempty"`   // lines written to stdout until then
	Report  *childReport `json:"report,omitempty"`
}

// childMain runs the child and returns its exit status: 0 when its
// session was ended by the gateway with FATAL 28000 (revoked), as the
// story expects.
func childMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	control := os.NewFile(controlFD, "control")
	if control == nil {
		fmt.Fprintln(os.Stderr, "child: no control pipe")
		return 2
	}
	defer control.Close()
	c := &child{out: os.Stdout, control: json.NewEncoder(control)}
	err := c.run(ctx, os.Stdin, os.Getenv(gatewayEnv))
	if encErr := c.control.Encode(controlMessage{Report: &c.report}); err == nil {
		err = encErr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: %v\n", err)
		return 1
	}
	if c.report.End == nil || c.report.End.Code != "28000" {
		fmt.Fprintln(os.Stderr, "child: my session did not end as revoked")
		return 1
	}
	return 0
}

// child is the child agent at work.
type child struct {
	out     io.Writer
	lines   int // lines written to out
	control *json.Encoder
	report  childReport
}

// say writes a line (or several) to stdout, which the parent relays.
func (c *child) say(format string, a ...any) {
	text := fmt.Sprintf(format, a...) + "\n"
	c.lines += strings.Count(text, "\n")
	io.WriteString(c.out, text)
}

// run connects with the token from stdin and does the child's work.
func (c *child) run(ctx context.Context, stdin io.Reader, connString string) error {
	cfg, err := childConfig(stdin, connString)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting through the gateway: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	steps := []func(context.Context, *pgx.Conn) error{
		c.whoAmI, c.readCustomers, c.tryInference, c.tryDelete, c.heldUpdate, c.readOrder, c.heldInsert, c.waitForWork,
	}
	for _, step := range steps {
		if err := step(ctx, conn); err != nil {
			return err
		}
	}
	c.tryAgain(ctx, cfg)
	return nil
}

// childConfig is the connection: the string from the parent, and the
// token as the password.
func childConfig(stdin io.Reader, connString string) (*pgx.ConnConfig, error) {
	token, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
	if err != nil || strings.TrimSpace(token) == "" {
		return nil, errors.New("no token on standard input")
	}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, errors.New("the connection string from the parent is invalid")
	}
	cfg.Password = strings.TrimSpace(token)
	cfg.ConnectTimeout = 10 * time.Second
	return cfg, nil
}

// whoAmI asks the database who this session is for.
func (c *child) whoAmI(ctx context.Context, conn *pgx.Conn) error {
	var chainJSON string
	r := &c.report
	err := conn.QueryRow(ctx, `SELECT current_setting('pgwarden.chain'), current_setting('pgwarden.session_id'),
		session_user, current_setting('application_name')`).Scan(&chainJSON, &r.SessionID, &r.SessionUser, &r.AppName)
	if err != nil {
		return fmt.Errorf("asking who I am: %w", err)
	}
	if r.Chain, err = parseChain(chainJSON); err != nil {
		return err
	}
	c.say("connected through the gateway with my token; the database says:")
	c.say("  pgwarden.chain   = %s", arrows(r.Chain))
	c.say("  application_name = %s", r.AppName)
	c.say("  session_user     = %s (a role made for this session; I never saw its password)", r.SessionUser)
	return nil
}

// parseChain reads the setting pgwarden.chain, [{"sub": ..., "iss":
// ...}, ...], into the subjects, person first.
func parseChain(setting string) ([]string, error) {
	var hops []struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal([]byte(setting), &hops); err != nil {
		return nil, fmt.Errorf("reading pgwarden.chain: %w", err)
	}
	chain := make([]string, len(hops))
	for i, h := range hops {
		chain[i] = h.Sub
	}
	return chain, nil
}

// readCustomers reads the customers, e-mail addresses included.
func (c *child) readCustomers(ctx context.Context, conn *pgx.Conn) error {
	const sql = "SELECT id, name, email FROM customers ORDER BY id"
	c.say("%s", sql)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("reading customers: %w", err)
	}
	type customer struct {
		ID    int
		Name  string
		Email string
	}
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[customer])
	if err != nil {
		return fmt.Errorf("reading customers: %w", err)
	}
	for _, cu := range cs {
		c.say("  %d  %-16s %s", cu.ID, cu.Name, cu.Email)
		c.report.Emails = append(c.report.Emails, cu.Email)
	}
	return nil
}

// tryInference filters on the masked column, which would reveal it one
// question at a time.
func (c *child) tryInference(ctx context.Context, conn *pgx.Conn) error {
	const sql = "SELECT name FROM customers WHERE email LIKE 'ada%'"
	c.say("%s", sql)
	var name string
	c.report.Inference = c.refused(conn.QueryRow(ctx, sql).Scan(&name))
	return nil
}

// tryDelete writes outside orders.
func (c *child) tryDelete(ctx context.Context, conn *pgx.Conn) error {
	const sql = "DELETE FROM customers WHERE id = 4"
	c.say("%s", sql)
	_, err := conn.Exec(ctx, sql)
	c.report.Delete = c.refused(err)
	return nil
}

// heldUpdate changes an order: the gateway holds it until a person
// decides. Text parameters (QueryExecModeExec), so that the approver
// reads them as they are.
func (c *child) heldUpdate(ctx context.Context, conn *pgx.Conn) error {
	const sql = "UPDATE orders SET status = $1 WHERE id = $2"
	c.say("%s  [shipped, 2]  (waits for a person's approval)", sql)
	tag, err := conn.Exec(ctx, sql, pgx.QueryExecModeExec, "shipped", 2)
	if err != nil {
		c.report.UpdateErr = c.refused(err)
		return nil
	}
	c.report.UpdateTag = tag.String()
	c.say("  approved and run: %s", tag)
	return nil
}

// readOrder reads back the order the update changed.
func (c *child) readOrder(ctx context.Context, conn *pgx.Conn) error {
	const sql = "SELECT status FROM orders WHERE id = 2"
	if err := conn.QueryRow(ctx, sql).Scan(&c.report.StatusAfter); err != nil {
		return fmt.Errorf("reading order 2: %w", err)
	}
	c.say("%s  →  %s", sql, c.report.StatusAfter)
	return nil
}

// heldInsert adds an order (a refund): held too, and the approver denies
// it.
func (c *child) heldInsert(ctx context.Context, conn *pgx.Conn) error {
	const sql = "INSERT INTO orders (customer_id, amount, status) VALUES ($1, $2, $3)"
	c.say("%s  [3, -990.00, refund]  (waits for a person's approval)", sql)
	_, err := conn.Exec(ctx, sql, pgx.QueryExecModeExec, 3, "-990.00", "refund")
	c.report.InsertErr = c.refused(err)
	return nil
}

// waitForWork tells the parent it waits, and holds its session with a
// long statement until the session ends.
func (c *child) waitForWork(ctx context.Context, conn *pgx.Conn) error {
	c.say("%s  (waiting for more work)", waitSQL)
	if err := c.control.Encode(controlMessage{Waiting: c.report.SessionID, Lines: c.lines}); err != nil {
		return fmt.Errorf("telling the parent: %w", err)
	}
	_, err := conn.Exec(ctx, waitSQL)
	if err == nil {
		return errors.New("my wait ended and my session is still open")
	}
	c.report.End = asPgError(err)
	if c.report.End == nil {
		return fmt.Errorf("waiting: %w", err)
	}
	c.say("my session ended: %s", describe(c.report.End))
	return nil
}

// tryAgain logs in again with the same token.
func (c *child) tryAgain(ctx context.Context, cfg *pgx.ConnConfig) {
	c.say("logging in again with the same token...")
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		conn.Close(ctx)
		c.say("  it worked (it should not have)")
		c.report.Reconnect = &pgError{Message: "logged in"}
		return
	}
	c.report.Reconnect = asPgError(err)
	if c.report.Reconnect == nil {
		c.report.Reconnect = &pgError{Message: err.Error()}
	}
	c.say("  refused: %s", describe(c.report.Reconnect))
}

// refused reports a statement the gateway refused (or any failure).
func (c *child) refused(err error) *pgError {
	if err == nil {
		c.say("  it ran (it should not have)")
		return nil
	}
	e := asPgError(err)
	if e == nil {
		e = &pgError{Message: err.Error()}
	}
	c.say("  refused: %s", describe(e))
	return e
}

// asPgError returns the server's (here: the gateway's) error in err, or
// nil.
func asPgError(err error) *pgError {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	return &pgError{Severity: pe.Severity, Code: pe.Code, Message: pe.Message, Detail: pe.Detail}
}

// describe renders an error the way psql would, on one or two lines.
func describe(e *pgError) string {
	if e.Code == "" {
		return e.Message // not the server's
	}
	s := fmt.Sprintf("%s %s: %s", e.Severity, e.Code, e.Message)
	if e.Detail != "" {
		s += "\n    " + e.Detail
	}
	return s
}
