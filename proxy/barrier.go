package proxy

import (
	"fmt"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// The run-time barrier.
//
// The gateway judges statements on their text, but a statement whose
// effect is decided at run time (a user function, DO, CALL, a built-in
// that runs SQL text, a fast-path call) may change what later statements
// mean: the settings the parser depends on, the search_path that resolves
// unqualified names, the read-only mode the server enforces. After such a
// statement has been sent, the next one that brings new text to parse
// (Query, Parse), or, in a read-only session, that starts running a
// statement (Bind, FunctionCall), waits until the server has answered
// everything before it. By then the server has reported any change of the
// parser's settings (ParameterStatus, which ends the session when unsafe),
// and the gateway asks the server for the search path and the read-only
// mode before it judges the statement. When the client sent no Sync after
// the run-time statement, nothing can be waited for: the statement is
// refused (rule "run-time-barrier") and the client can go on after a Sync.

// verifyQuery asks for what run-time code may have changed: the read-only
// mode, the schemas of the search path, and the identity settings.
// Every name is qualified, so that the session's search_path (which it
// reads) cannot change what it calls.
const verifyQuery = "SELECT 'r'::pg_catalog.text, pg_catalog.current_setting('default_transaction_read_only') " +
	"UNION ALL SELECT 's'::pg_catalog.text, s::pg_catalog.text FROM pg_catalog.unnest(pg_catalog.current_schemas(false)) AS s " +
	"UNION ALL SELECT n, COALESCE(pg_catalog.current_setting(n, true), '') " +
	"FROM pg_catalog.unnest(ARRAY['pgwarden.subject', 'pgwarden.issuer', 'pgwarden.chain', 'pgwarden.session_id']::pg_catalog.text[]) AS n"

// verification is the answer to verifyQuery, filled by the backend relay.
type verification struct {
	readOnly   string
	searchPath []string
	identity   map[string]string // the identity settings
	// rows, when collect is set, are the rows of another query the
	// gateway asked (NULL as ""), such as the masking catalog.
	collect bool
	rows    [][]string
	failed  bool
	done    chan struct{}
}

// runsAtRunTime reports whether any of sts (or a statement nested in one)
// has an effect decided at run time.
func runsAtRunTime(sts []*policy.Statement) bool {
	for _, st := range sts {
		for s := st; s != nil; s = s.Inner {
			if len(s.RunTime) > 0 {
				return true
			}
		}
	}
	return false
}

// barrier is called before a message that must not pass a run-time
// statement unverified. It returns a refusal when it cannot wait, and
// errSessionOver when the session ended meanwhile.
func (s *clientSession) barrier() (*policy.Decision, *session.Error) {
	if !s.stale {
		return nil, nil
	}
	if s.pipe.pending() > 0 {
		if !s.pipe.endsWithSync() {
			return &policy.Decision{Verdict: policy.Block, Rule: "run-time-barrier",
				Reason: "A statement that runs code the gateway cannot see is still in this pipeline without a Sync after it; " +
					"the gateway judges the next statement only once the server has answered it. Send Sync first."}, nil
		}
		if err := s.uw.Flush(); err != nil {
			s.end(session.EndUpstreamClosed, pgError(session.CodeConnectionFailure, "lost the connection to the database server"))
			return nil, errSessionOver
		}
		s.blocking() // the answer comes through the backend relay
		if !s.pipe.waitEmpty() {
			return nil, errSessionOver
		}
	}
	if s.txStatus.Load() == 'E' {
		// Nothing runs in an aborted transaction, and what ran in it is
		// undone by its end: verify after it.
		return nil, nil
	}
	v := &verification{done: make(chan struct{})}
	if err := s.forward(simpleQuery(verifyQuery), op{kind: opQuery, verify: v}); err != nil {
		return nil, err
	}
	if err := s.uw.Flush(); err != nil {
		s.end(session.EndUpstreamClosed, pgError(session.CodeConnectionFailure, "lost the connection to the database server"))
		return nil, errSessionOver
	}
	s.blocking() // the answer comes through the backend relay
	select {
	case <-v.done:
	case <-s.ctx.Done():
		return nil, errSessionOver
	}
	if v.failed {
		s.names.SearchPath = nil // unknown: any schema
		if s.setup.ReadOnly {
			s.end(session.EndProtocolError, &session.Error{Code: session.CodeInsufficientPrivilege,
				Message: "pgwarden: the gateway could not verify that this read-only session is still read-only"})
			return nil, errSessionOver
		}
	} else if !sameIdentity(v.identity, s.identity) {
		s.log.Error("pgwarden: identity settings changed at run time; session ended")
		s.end(session.EndProtocolError, &session.Error{Code: session.CodeInsufficientPrivilege,
			Message: "pgwarden: code the gateway could not see changed the settings that carry this session's identity; the session is ended"})
		return nil, errSessionOver
	} else {
		s.names.SearchPath = v.searchPath
		if s.setup.ReadOnly && !isOn(v.readOnly) {
			s.log.Error("pgwarden: read-only mode turned off at run time; session ended")
			s.end(session.EndProtocolError, &session.Error{Code: session.CodeInsufficientPrivilege,
				Message: "pgwarden: code the gateway could not see turned off this session's read-only mode; the session is ended"})
			return nil, errSessionOver
		}
	}
	s.stale = false
	return nil, nil
}

func isOn(v string) bool { return v == "on" }

// sameIdentity reports whether the identity settings the server has are
// those the gateway set at login.
func sameIdentity(got, want map[string]string) bool {
	for _, name := range []string{settingSubject, settingIssuer, settingChain, settingSession} {
		if got[name] != want[name] {
			return false
		}
	}
	return true
}

// verifyMessage handles a server message answering verifyQuery: nothing
// of it reaches the client.
func (s *clientSession) verifyMessage(o *op, typ byte, body []byte) *session.Error {
	v := o.verify
	switch typ {
	case 'T', 'C':
	case 'D':
		if v.collect {
			row, err := textRowNulls(body)
			if err != nil {
				return upstreamViolation("malformed answer to the gateway's query")
			}
			v.rows = append(v.rows, row)
			return nil
		}
		row, err := textRow(body)
		if err != nil || len(row) != 2 {
			return upstreamViolation("malformed answer to the gateway's verification")
		}
		switch row[0] {
		case "r":
			v.readOnly = row[1]
		case "s":
			v.searchPath = append(v.searchPath, row[1])
		case settingSubject, settingIssuer, settingChain, settingSession:
			if v.identity == nil {
				v.identity = map[string]string{}
			}
			v.identity[row[0]] = row[1]
		}
	case 'E':
		v.failed = true
	default:
		return s.unexpected(typ, o)
	}
	return nil
}

// textRowNulls decodes a DataRow of text values, NULL as "".
func textRowNulls(body []byte) ([]string, error) {
	if len(body) < 2 {
		return nil, fmt.Errorf("short DataRow")
	}
	n := int(body[0])<<8 | int(body[1])
	rest := body[2:]
	out := make([]string, 0, n)
	for range n {
		if len(rest) < 4 {
			return nil, fmt.Errorf("short DataRow")
		}
		l := int(int32(uint32(rest[0])<<24 | uint32(rest[1])<<16 | uint32(rest[2])<<8 | uint32(rest[3])))
		rest = rest[4:]
		if l == -1 {
			out = append(out, "")
			continue
		}
		if l < 0 || l > len(rest) {
			return nil, fmt.Errorf("bad value length")
		}
		out = append(out, string(rest[:l]))
		rest = rest[l:]
	}
	return out, nil
}

// textRow decodes a DataRow of non-null text values.
func textRow(body []byte) ([]string, error) {
	if len(body) < 2 {
		return nil, fmt.Errorf("short DataRow")
	}
	n := int(body[0])<<8 | int(body[1])
	rest := body[2:]
	out := make([]string, 0, n)
	for range n {
		if len(rest) < 4 {
			return nil, fmt.Errorf("short DataRow")
		}
		l := int(int32(uint32(rest[0])<<24 | uint32(rest[1])<<16 | uint32(rest[2])<<8 | uint32(rest[3])))
		rest = rest[4:]
		if l < 0 || l > len(rest) {
			return nil, fmt.Errorf("bad value length")
		}
		out = append(out, string(rest[:l]))
		rest = rest[l:]
	}
	return out, nil
}

// simpleQuery builds a Query message.
func simpleQuery(sql string) []byte {
	b := make([]byte, 5, 6+len(sql))
	b[0] = 'Q'
	b = append(b, sql...)
	b = append(b, 0)
	n := uint32(len(b) - 1)
	b[1], b[2], b[3], b[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

// waitEmpty waits until the server has answered every request, and
// reports false if the pipeline closed first.
func (p *pipeline) waitEmpty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n > 0 && !p.closed {
		p.space.Wait()
	}
	return !p.closed
}

// endsWithSync reports whether the last request sent makes the server
// answer with ReadyForQuery (a Sync, Query or FunctionCall), so that
// waiting for an empty pipeline ends.
func (p *pipeline) endsWithSync() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		return true
	}
	switch p.ring[(p.head+p.n-1)%len(p.ring)].kind {
	case opSync, opQuery, opFunctionCall:
		return true
	}
	return false
}
