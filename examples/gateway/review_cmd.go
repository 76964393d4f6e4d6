package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// adminTokenEnv is the environment variable `pgwarden review` reads the
// admin token from when --token-file is not given.
const adminTokenEnv = "PGWARDEN_ADMIN_TOKEN"

// reviewTimeout bounds `pgwarden review`'s request.
const reviewTimeout = 2 * time.Minute

// reviewCommand fetches the access review from a running gateway's admin
// API and prints it: an aligned table, or the API's JSON with --json.
func reviewCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("review", flag.ContinueOnError)
	admin := fs.String("admin", "http://"+defaultAdminListen, "the admin API's base `URL`")
	tokenFile := fs.String("token-file", "", "read the admin token from `file` (default: $"+adminTokenEnv+")")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	stale := fs.Duration("stale", defaultStaleAfter, "mark leases and sessions idle for longer than this `duration` stale")
	if !parseFlags(fs, args, stderr) {
		return exitUsage
	}
	if *stale <= 0 {
		fmt.Fprintln(stderr, "pgwarden review: --stale must be a positive duration")
		return exitUsage
	}
	base, err := url.Parse(*admin)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintln(stderr, "pgwarden review: --admin must be an http:// or https:// URL, such as http://127.0.0.1:6480")
		return exitUsage
	}
	token, err := readAdminToken(*tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden review: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
	defer cancel()
	body, err := fetchReview(ctx, base, token, *stale)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden review: %v\n", err)
		return exitError
	}
	var report reviewReport
	if err := json.Unmarshal(body, &report); err != nil {
		fmt.Fprintf(stderr, "pgwarden review: the admin API's answer is not a review: %v\n", err)
		return exitError
	}
	if *asJSON {
		stdout.Write(body)
		return exitOK
	}
	printReview(stdout, &report)
	return exitOK
}

// readAdminToken reads the admin token from file (without its line
// ending), or from $PGWARDEN_ADMIN_TOKEN when file is empty.
func readAdminToken(file string) (string, error) {
	if file == "" {
		if t := os.Getenv(adminTokenEnv); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("no admin token: give --token-file or set %s", adminTokenEnv)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	t := strings.TrimRight(string(b), "\r\n")
	if t == "" {
		return "", fmt.Errorf("--token-file: %s is empty", file)
	}
	return t, nil
}

// fetchReview asks the admin API at base for the review and returns its
// JSON. Errors never contain the token.
func fetchReview(ctx context.Context, base *url.URL, token string, stale time.Duration) ([]byte, error) {
	return adminCall(ctx, http.MethodGet, base, "leases", url.Values{"stale": {stale.String()}}.Encode(), token, nil, nil)
}

// printReview prints the report as an aligned table.
func printReview(w io.Writer, r *reviewReport) {
	var leases, active, static, sessions int
	for _, row := range r.Rows {
		switch row.Kind {
		case rowLease:
			leases++
			if row.Active {
				active++
			}
		case rowStatic:
			static++
		case rowSession:
			sessions++
		}
	}
	fmt.Fprintf(w, "Access review at %s (stale after %s): %d leases (%d active), %d static credentials, %d other sessions\n",
		reviewTime(r.GeneratedAt), r.StaleAfter, leases, active, static, sessions)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tROLE\tSUBJECT\tCHAIN\tTEMPLATES\tISSUED\tEXPIRES/ENDED\tLAST STATEMENT\tFLAGS")
	for _, row := range r.Rows {
		cells := []string{row.Kind, row.Role, reviewSubject(row), reviewChain(row), orDash(strings.Join(row.Templates, ","))}
		switch row.Kind {
		case rowLease:
			end := "expires " + reviewTime(row.ExpiresAt)
			if !row.Active {
				end = "ended " + reviewTime(row.EndedAt)
				if row.EndReason != "" {
					end += " (" + row.EndReason + ")"
				}
			}
			cells = append(cells, reviewTime(row.IssuedAt), end)
		case rowSession:
			cells = append(cells, "session "+reviewTime(row.SessionStartedAt), "-")
		default:
			cells = append(cells, "-", "-")
		}
		cells = append(cells, reviewLastStatement(row), reviewFlags(row))
		for i, c := range cells {
			cells[i] = printable(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	w.Write(buf.Bytes())
	if len(r.Grants) > 0 {
		fmt.Fprintf(w, "\nActive grants (approvals): %d\n", len(r.Grants))
		for _, gr := range r.Grants {
			fmt.Fprintln(w, printable(fmt.Sprintf("  %s (%s) may pass rule %q until %s: granted by %s (request %s)",
				gr.Subject, gr.Issuer, gr.Rule, reviewTime(gr.Until), gr.Approver, gr.RequestID)))
		}
	}
}

// reviewSubject is a row's SUBJECT cell: who it acts for, or whom a
// static credential is for.
func reviewSubject(row reviewRow) string {
	if row.Kind != rowStatic {
		return orDash(row.Subject)
	}
	var parts []string
	if len(row.Groups) > 0 {
		parts = append(parts, "groups="+strings.Join(row.Groups, ","))
	}
	if len(row.Subjects) > 0 {
		parts = append(parts, "subjects="+strings.Join(row.Subjects, ","))
	}
	if len(parts) == 0 {
		return "(everyone)"
	}
	return strings.Join(parts, " ")
}

// reviewChain is a row's CHAIN cell: "alice > ci-job > agent", from the
// subject to the agent on the wire.
func reviewChain(row reviewRow) string {
	if row.Subject == "" {
		return "-"
	}
	parts := []string{row.Subject}
	for _, a := range row.Chain {
		parts = append(parts, a.Subject)
	}
	return strings.Join(parts, " > ")
}

// reviewLastStatement is a row's LAST STATEMENT cell.
func reviewLastStatement(row reviewRow) string {
	switch {
	case row.Kind == rowStatic:
		if row.Sessions > 0 {
			return fmt.Sprintf("(%d sessions)", row.Sessions)
		}
		return "-"
	case !row.Active:
		return "-"
	case !row.LastStatementAt.IsZero():
		return reviewTime(row.LastStatementAt) + " (idle " + row.IdleFor + ")"
	case row.SessionID != "":
		return "none (idle " + row.IdleFor + ")"
	}
	return "no session (issued " + row.IdleFor + " ago)"
}

// reviewFlags is a row's FLAGS cell.
func reviewFlags(row reviewRow) string {
	var flags []string
	if row.Stale {
		flags = append(flags, "STALE")
	}
	if row.OverPrivileged {
		flags = append(flags, "OVER-PRIVILEGED: "+strings.Join(row.Reasons, ", "))
	}
	if row.CheckError != "" {
		flags = append(flags, "CHECK FAILED: "+row.CheckError)
	}
	return orDash(strings.Join(flags, "; "))
}

// reviewTime formats a time of the report, "-" for none.
func reviewTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable replaces control and format characters (terminal escapes,
// tabs, line breaks, bidirectional overrides) with '?': subjects come from tokens and must not reach the
// operator's terminal as they are.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}
