package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/journal"
)

// recordedStatement is one statement event of the recording.
type recordedStatement struct {
	Seq     int64
	Stage   string
	SQL     string
	Verdict string
	Rule    string
	Chain   []string // who it ran for: the chain of the session it is bound to
}

// recordingFacts is what the recording of the child's session says.
type recordingFacts struct {
	SessionID  string
	Chain      []string
	Upstream   string // the database role the gateway logged in as
	Events     int
	Statements []recordedStatement
	Approvals  []session.ApprovalEvent
	Credential []session.CredentialAction
	EndReason  session.EndReason
	EndCode    string
	VerifyErr  string // empty when the ledger is intact and sealed
	Involving  int    // recorded sessions whose chain involves parentAgent
}

// replayChild prints the recording of session id and verifies it.
//
// The delegation chain is recorded once, in the session.start event, and
// every later entry of the ledger is MAC-chained to it (each entry's MAC
// covers the previous one's): so each statement is bound to the chain it
// ran for, and the replay shows it on every statement.
func replayChild(ctx context.Context, j *journal.Journal, id string, n *narrator) (recordingFacts, error) {
	f := recordingFacts{SessionID: id}
	if err := waitSealed(ctx, j, id); err != nil {
		return f, err
	}
	evs, err := j.Events(ctx, id)
	if err != nil {
		return f, fmt.Errorf("reading the recording: %w", err)
	}
	f.Events = len(evs)
	for _, ev := range evs {
		n.Say("%s", f.add(ev))
	}
	if err := j.Verify(ctx, id); err != nil {
		f.VerifyErr = err.Error()
	}
	sums, err := j.Sessions(ctx, session.Filter{Subject: parentAgent})
	if err != nil {
		return f, fmt.Errorf("listing the recorded sessions: %w", err)
	}
	f.Involving = len(sums)
	return f, nil
}

// add takes in one event and returns its line in the replay.
func (f *recordingFacts) add(ev session.Event) string {
	switch {
	case ev.Start != nil:
		info := ev.Start.Info
		f.Chain, f.Upstream = chainOf(info.Identity), info.UpstreamUser
		tls := "without TLS"
		if info.TLS != nil {
			tls = "over " + info.TLS.Version
		}
		return fmt.Sprintf("%-13s %s, from %s %s, as role %s", ev.Kind, arrows(f.Chain), info.ClientAddr, tls, info.UpstreamUser)
	case ev.Credential != nil:
		f.Credential = append(f.Credential, ev.Credential.Action)
		return fmt.Sprintf("%-13s %s %s", ev.Kind, ev.Credential.Action, ev.Credential.User)
	case ev.Statement != nil:
		s := ev.Statement
		st := recordedStatement{Seq: s.Seq, Stage: s.Stage, SQL: s.SQL, Verdict: s.Verdict, Rule: s.Rule, Chain: f.Chain}
		f.Statements = append(f.Statements, st)
		verdict := s.Verdict
		if s.Rule != "" && s.Rule != "reads" {
			verdict += " (" + s.Rule + ")"
		}
		sql := oneLine(s.SQL, 90)
		if len(s.Params) > 0 {
			sql += "  [" + strings.Join(paramTexts(s.Params), ", ") + "]"
		}
		return fmt.Sprintf("%-9s %3d [%s] %s: %s\n%17s%s", ev.Kind, s.Seq, arrows(f.Chain), s.Stage, verdict, "", sql)
	case ev.Approval != nil:
		a := ev.Approval
		f.Approvals = append(f.Approvals, *a)
		line := fmt.Sprintf("%-13s %s", ev.Kind, a.Action)
		if a.Action == session.ApprovalRequested {
			line += fmt.Sprintf(" (%s, rule %s)", a.Mode, a.Rule)
		}
		if a.ID != "" {
			line += " " + a.ID
		}
		if a.Approver != "" {
			line += fmt.Sprintf(" by %s: %q", a.Approver, a.Comment)
		}
		return line
	case ev.Result != nil:
		r := ev.Result
		if r.ErrorCode != "" {
			return fmt.Sprintf("%-9s %3d error %s", ev.Kind, r.Seq, r.ErrorCode)
		}
		return fmt.Sprintf("%-9s %3d %s", ev.Kind, r.Seq, r.Tag)
	case ev.End != nil:
		f.EndReason, f.EndCode = ev.End.Reason, ev.End.ErrorCode
		return fmt.Sprintf("%-13s %s: FATAL %s %s", ev.Kind, ev.End.Reason, ev.End.ErrorCode, ev.End.Message)
	}
	return string(ev.Kind)
}

// waitSealed waits until the session's ledger is sealed (its end is
// recorded just after the session ends).
func waitSealed(ctx context.Context, j *journal.Journal, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		err := j.Verify(ctx, id)
		if !session.IsNotSealed(err) {
			return nil // sealed, or a problem that the replay reports
		}
		select {
		case <-ctx.Done():
			return errors.New("the child's recording was not sealed in time")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// oneLine squeezes white space and cuts s to width runes.
func oneLine(s string, width int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > width {
		return string(r[:width-1]) + "…"
	}
	return s
}
