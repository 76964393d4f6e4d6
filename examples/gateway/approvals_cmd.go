package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/policy/approval"
)

// approverPasswordEnv is the environment variable `pgwarden approve` and
// `deny` read the approver's password from (else stdin).
const approverPasswordEnv = "PGWARDEN_APPROVER_PASSWORD"

// adminCallTimeout bounds one admin API request of the approvals
// commands.
const adminCallTimeout = time.Minute

// adminFlags are the flags every admin API command takes, as `pgwarden
// review` has them.
type adminFlags struct {
	admin, tokenFile *string
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		admin:     fs.String("admin", "http://"+defaultAdminListen, "the admin API's base `URL`"),
		tokenFile: fs.String("token-file", "", "read the admin token from `file` (default: $"+adminTokenEnv+")"),
	}
}

// resolve checks the URL and reads the token; false after a usage error,
// reported.
func (f adminFlags) resolve(cmd string, stderr io.Writer) (*url.URL, string, bool) {
	base, err := url.Parse(*f.admin)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintf(stderr, "pgwarden %s: --admin must be an http:// or https:// URL, such as http://127.0.0.1:6480\n", cmd)
		return nil, "", false
	}
	token, err := readAdminToken(*f.tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden %s: %v\n", cmd, err)
		return nil, "", false
	}
	return base, token, true
}

// adminCall sends a request to the admin API at base with the admin
// token (and the headers in extra), and returns the answer's body when
// its status is 200. Errors never contain the token or the headers'
// values.
func adminCall(ctx context.Context, method string, base *url.URL, path, query, token string, extra http.Header, body any) ([]byte, error) {
	u := base.JoinPath(path)
	u.RawQuery = query
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, err
	}
	for k, vs := range extra {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := resp.Status
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg += ": " + printable(e.Error)
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && strings.Contains(e.Error, approverHeader):
			msg += " (check --approver-user and the password, or --approver-token-file)"
		case resp.StatusCode == http.StatusUnauthorized:
			msg += " (is the token the gateway's admin.token?)"
		}
		return nil, errors.New("the admin API answered " + msg)
	}
	return b, nil
}

// approvalsCommand lists the approval requests of a running gateway
// (pending ones by default), read from its admin API.
func approvalsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("approvals", flag.ContinueOnError)
	af := addAdminFlags(fs)
	status := fs.String("status", "pending", "list requests with this `status`: pending, approved, denied, withdrawn, expired (comma-separated), or all")
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	if !parseFlags(fs, args, stderr) {
		return exitUsage
	}
	if _, ok := parseStatuses(*status); !ok || *status == "" {
		fmt.Fprintln(stderr, "pgwarden approvals: --status must be all, or pending, approved, denied, withdrawn or expired (comma-separated)")
		return exitUsage
	}
	base, token, ok := af.resolve("approvals", stderr)
	if !ok {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminCallTimeout)
	defer cancel()
	body, err := adminCall(ctx, http.MethodGet, base, "approvals", url.Values{"status": {*status}}.Encode(), token, nil, nil)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden approvals: %v\n", err)
		return exitError
	}
	var out struct {
		Approvals []approval.Record `json:"approvals"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		fmt.Fprintf(stderr, "pgwarden approvals: the admin API's answer is not a list of approval requests: %v\n", err)
		return exitError
	}
	if *asJSON {
		stdout.Write(body)
		return exitOK
	}
	for _, rec := range out.Approvals {
		printApproval(stdout, rec)
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "%d requests (%s)\n", len(out.Approvals), *status)
	return exitOK
}

// printApproval prints a record as a block: what a person decides on.
// Every value goes through printable: they come from clients and tokens.
func printApproval(w io.Writer, rec approval.Record) {
	r := rec.Request
	spec := r.Spec.Effective()
	fmt.Fprintf(w, "%s  %s  %s\n", printable(r.ID), strings.ToUpper(string(rec.Status)), reviewTime(r.Created))
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(w, "  %-9s %s\n", label+":", printable(value))
		}
	}
	who := r.Identity.Subject + " (" + r.Identity.Issuer + ")"
	for _, a := range r.Identity.Chain {
		who += " > " + a.Subject
	}
	line("who", who)
	line("database", r.Database)
	how := string(spec.Mode)
	if len(spec.Approvers) > 0 {
		how += ", approvers: " + strings.Join(spec.Approvers, ", ")
	}
	if spec.Grant > 0 {
		how += ", grant " + spec.Grant.String()
	}
	line("rule", r.Rule+" ("+how+")")
	line("reason", r.Reason)
	for i, l := range strings.Split(strings.TrimRight(r.SQL, "\n"), "\n") {
		if i == 0 {
			line("sql", l)
		} else {
			fmt.Fprintf(w, "  %-9s %s\n", "", printable(l))
		}
	}
	for i, p := range r.Params {
		v := "NULL"
		if p != nil {
			v = "'" + strings.ReplaceAll(*p, "'", "''") + "'"
		}
		line(fmt.Sprintf("$%d", i+1), v)
	}
	if rec.Approver != "" {
		d := "by " + rec.Approver + " at " + reviewTime(rec.Decided)
		if rec.Comment != "" {
			d += ": " + rec.Comment
		}
		line(string(rec.Status), d)
	}
	if rec.Status == approval.StatusApproved && !rec.ValidUntil.IsZero() {
		line("valid", fmt.Sprintf("until %s, %d uses left", reviewTime(rec.ValidUntil), rec.UsesLeft))
	}
}

// decideCommand approves (approve true) or denies one request through
// the admin API, as the approver whose credentials it is given: a static
// user (--approver-user; the password from $PGWARDEN_APPROVER_PASSWORD,
// else one line on stdin) or an OIDC token (--approver-token-file).
func decideCommand(cmd string, approve bool, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs)
	comment := fs.String("comment", "", "the `comment` the requester reads")
	user := fs.String("approver-user", "", "decide as this static `user` (password from $"+approverPasswordEnv+" or stdin)")
	tokenFile := fs.String("approver-token-file", "", "decide as the identity of the OIDC token in `file`")
	asJSON := fs.Bool("json", false, "print the decided request as JSON")
	// Flags may come before or after the id.
	var ids []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		ids, rest = append(ids, fs.Arg(0)), fs.Args()[1:]
	}
	if len(ids) != 1 || ids[0] == "" {
		fmt.Fprintf(stderr, "pgwarden %s: give exactly one request id\n", cmd)
		return exitUsage
	}
	if (*user == "") == (*tokenFile == "") {
		fmt.Fprintf(stderr, "pgwarden %s: give the approver's credentials: --approver-user or --approver-token-file (one of them)\n", cmd)
		return exitUsage
	}
	base, token, ok := af.resolve(cmd, stderr)
	if !ok {
		return exitUsage
	}
	credentials, err := approverCredentials(*user, *tokenFile, stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden %s: %v\n", cmd, err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminCallTimeout)
	defer cancel()
	action := "deny"
	if approve {
		action = "approve"
	}
	body, err := adminCall(ctx, http.MethodPost, base, "approvals/"+url.PathEscape(ids[0])+"/"+action, "", token,
		http.Header{approverHeader: {credentials}}, decideRequest{Comment: *comment})
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden %s: %v\n", cmd, err)
		return exitError
	}
	var rec approval.Record
	if err := json.Unmarshal(body, &rec); err != nil {
		fmt.Fprintf(stderr, "pgwarden %s: the admin API's answer is not an approval request: %v\n", cmd, err)
		return exitError
	}
	if *asJSON {
		stdout.Write(body)
		return exitOK
	}
	fmt.Fprintf(stdout, "request %s %s by %s\n", printable(rec.Request.ID), rec.Status, printable(rec.Approver))
	return exitOK
}

// approverCredentials returns the value of X-Pgwarden-Approver: Basic
// with user and the password ($PGWARDEN_APPROVER_PASSWORD, else a line on
// stdin), or Bearer with the token in tokenFile.
func approverCredentials(user, tokenFile string, stdin io.Reader, stderr io.Writer) (string, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("--approver-token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("--approver-token-file: %s is empty", tokenFile)
		}
		return "Bearer " + t, nil
	}
	if strings.Contains(user, ":") {
		return "", errors.New("--approver-user: a user name with ':' cannot be sent (HTTP Basic)")
	}
	password := os.Getenv(approverPasswordEnv)
	if password == "" {
		if f, ok := stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				fmt.Fprintf(stderr, "Password of %s (it is shown as you type):\n", user)
			}
		}
		p, err := readLine(stdin)
		if err != nil {
			return "", fmt.Errorf("the approver's password: %v (give it on stdin or in $%s)", err, approverPasswordEnv)
		}
		password = p
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)), nil
}
