package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// refusedSQL replaces a refused statement on its way to the server. It is
// a syntax error, so the server is certain to reject it without effect:
// an open transaction is aborted, and in the extended protocol the server
// skips to the next Sync, exactly as if the statement had failed there. The
// backend relay turns the server's error into the refusal.
const refusedSQL = "PGWARDEN_REFUSED_STATEMENT"

// refusedQuery is the Query message that carries refusedSQL.
var refusedQuery = func() []byte {
	b := []byte{'Q', 0, 0, 0, 0}
	b = append(b, refusedSQL...)
	b = append(b, 0)
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}()

// refusedParse returns a Parse message of refusedSQL under the given
// statement name.
func refusedParse(name string) []byte {
	b := []byte{'P', 0, 0, 0, 0}
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, refusedSQL...)
	b = append(b, 0, 0, 0)
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

// flushMessage asks the server to send the answers it holds back.
var flushMessage = []byte{'H', 0, 0, 0, 4}

// refusedName is a prepared statement name the gateway reserves: a Bind
// of it is certain to fail, and clients may not Parse it.
const refusedName = "pgwarden\x1frefused"

// refusedBind returns a Bind of the reserved statement name to portal.
func refusedBind(portal string) []byte {
	b := []byte{'B', 0, 0, 0, 0}
	b = append(b, portal...)
	b = append(b, 0)
	b = append(b, refusedName...)
	b = append(b, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

// relayFrontend forwards the client's messages to the server until the
// session ends, judging every statement on the way.
func (s *clientSession) relayFrontend() {
	defer s.sayGoodbye()
	for {
		if !s.cr.MessageReady() {
			s.telFlushUp() // telemetry: pgwarden.bytes, per batch
			if err := s.uw.Flush(); err != nil {
				s.end(session.EndUpstreamClosed, pgError(session.CodeConnectionFailure, "lost the connection to the database server"))
				return
			}
			s.armIdleTimeout()
		}
		m, err := s.cr.Next()
		if err != nil {
			if s.ctx.Err() != nil {
				return // the session ended elsewhere
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && s.lim.IdleTimeout > 0 && s.pipe.pending() > 0 {
				// Not idle: a statement is running. Wait on.
				s.armReadDeadline(time.Time{})
				continue
			}
			s.clientReadFailed(err)
			return
		}
		s.tel.up += int64(len(m.Raw)) // telemetry
		if ferr := s.frontendMessage(m); ferr != nil {
			if ferr != errSessionOver {
				s.end(session.EndProtocolError, ferr)
			}
			return
		}
	}
}

// errSessionOver stops the frontend relay without an error of its own:
// the session already ended (or the client said goodbye).
var errSessionOver = &session.Error{Code: session.CodeConnectionFailure, Message: "session over"}

// frontendMessage handles one client message.
func (s *clientSession) frontendMessage(m wire.Message) *session.Error {
	switch m.Type {
	case 'Q':
		sql, err := wire.QueryText(m.Body)
		if err != nil {
			return malformed(m.Type)
		}
		return s.forwardStatement(m.Raw, opQuery, &statement{protocol: session.ProtocolSimple, sql: sql})
	case 'P':
		parse, err := wire.ParseMessage(m.Body)
		if err != nil {
			return malformed(m.Type)
		}
		return s.forwardStatement(m.Raw, opParse, &statement{protocol: session.ProtocolExtended, sql: parse.Query, name: parse.Name, paramTypes: parse.ParamTypes})
	case 'F':
		oid, err := wire.FunctionOID(m.Body)
		if err != nil {
			return malformed(m.Type)
		}
		return s.forwardStatement(m.Raw, opFunctionCall, &statement{protocol: session.ProtocolFunctionCall, fnOID: oid})
	case 'B':
		portal, name, err := wire.BindNames(m.Body)
		if err != nil {
			return malformed(m.Type)
		}
		// Which statement the name means is settled when the server
		// answers the Bind (see answered).
		return s.forwardBind(m, op{kind: opBind, stmt: s.statements[string(name)], portal: string(portal)}, name)
	case 'E':
		portal, err := wire.ExecutePortal(m.Body)
		if err != nil {
			return malformed(m.Type)
		}
		return s.forward(m.Raw, op{kind: opExecute, portal: string(portal)})
	case 'D':
		if _, _, err := wire.Target(m.Body); err != nil {
			return malformed(m.Type)
		}
		return s.forward(m.Raw, op{kind: opDescribe})
	case 'C':
		kind, name, err := wire.Target(m.Body)
		if err != nil {
			return malformed(m.Type)
		}
		if kind == 'S' {
			delete(s.statements, name)
			return s.forward(m.Raw, op{kind: opClose})
		}
		return s.forward(m.Raw, op{kind: opClose, portal: name, closesPortal: true})
	case 'S':
		return s.forward(m.Raw, op{kind: opSync})
	case 'H', 'd':
		// Flush and CopyData expect no answer of their own.
		return s.write(m.Raw)
	case 'c', 'f':
		return s.forward(m.Raw, op{kind: opCopyEnd})
	case 'X':
		// What the client sent before its Terminate runs to its end, as
		// on a direct connection: no cancel (see cancelRunning).
		s.saidTerminate.Store(true)
		s.end(session.EndClientExit, nil)
		return errSessionOver
	}
	return pgError(session.CodeProtocolViolation, fmt.Sprintf("invalid frontend message type %d", m.Type))
}

func malformed(typ byte) *session.Error {
	return pgError(session.CodeProtocolViolation, fmt.Sprintf("invalid frontend message of type %q", typ))
}

// forwardStatement judges a statement, records it, tracks prepared
// statement names, and forwards it, or its refusal in its place.
func (s *clientSession) forwardStatement(raw []byte, kind opKind, st *statement) *session.Error {
	if kind == opParse {
		if _, exists := s.statements[st.name]; !exists && s.overLimit(len(s.statements)) {
			s.pruneStatements()
			if s.overLimit(len(s.statements)) {
				return pgError(session.CodeProgramLimitExceeded, "too many prepared statements in this session")
			}
		}
	}
	start := time.Now() // telemetry: the statement's latency starts with its judgement
	var held *policy.Decision
	if kind != opFunctionCall || s.setup.ReadOnly {
		d, err := s.barrier()
		if err != nil {
			return err
		}
		held = d
	}
	st.seq = s.seq.Add(1)
	s.lastStmt.Store(start.UnixNano())
	switch {
	case held != nil:
		st.decision = *held
		if sts, err := s.p.analyzer().Analyze(st.sql); err == nil {
			st.withheld = s.withheldText(st.sql, sts) // recorded, though not judged
		} else {
			st.withheld = s.withheldUnparsed(st.sql)
		}
	case kind == opParse && st.name == refusedName:
		st.decision = policy.Decision{Verdict: policy.Block, Rule: "reserved-name",
			Reason: "The gateway reserves this prepared statement name."}
	case kind == opParse:
		st.decision = s.judge(st, policy.StageParse, nil)
	case kind == opFunctionCall:
		st.decision = s.judge(st, policy.StageFunctionCall, nil)
	default:
		st.decision = s.judge(st, policy.StageQuery, nil)
	}
	if st.decision.Verdict == policy.Approve {
		st.decision, st.refusedCode = s.approval(st, st.decision, nil)
		if st.decision.Verdict == policy.Allow {
			s.approvedNames(st)
		}
	}
	if kind == opParse {
		s.trackParse(st)
	}
	if st.decision.Verdict == policy.Allow {
		s.forgetDeallocated(st.analysis)
	}
	if st.decision.Verdict != policy.Allow {
		switch kind {
		case opParse:
			raw = refusedParse(st.name)
		default:
			raw = refusedQuery
		}
	} else if kind != opFunctionCall {
		raw = s.keepIdentityInAppName(raw, kind, st)
	}
	if err := s.sendStatement(raw, kind, st, start); err != nil {
		return err
	}
	if kind == opParse && st.decision.Verdict == policy.Allow && s.masking != nil && s.masking.describes(st) {
		if err := s.injectDescribe(st); err != nil {
			return err
		}
	}
	if st.decision.Verdict == policy.Terminate {
		return s.terminateFor(st.decision)
	}
	if st.decision.Verdict == policy.Allow && kind != opParse && runsAtRunTime(st.analysis) {
		s.stale = true
	}
	return nil
}

// forwardBind judges a Bind with its parameters and forwards it, or a Bind
// the server is certain to reject in its place.
func (s *clientSession) forwardBind(m wire.Message, o op, name []byte) *session.Error {
	st := o.stmt
	if st == nil {
		// Not a Parse of this session, but maybe a SQL PREPARE: the two
		// share one namespace, and a Bind may bind either.
		defs, ok := s.names.Prepared[string(name)]
		if !ok {
			return s.forward(m.Raw, o) // the server rejects an unknown name
		}
		st = &statement{protocol: session.ProtocolExtended, name: string(name), analysis: defs,
			decision: policy.Decision{Verdict: policy.Allow}}
		if s.masking != nil {
			if def := s.masking.prepared[string(name)]; def != nil && len(def.Touches) > 0 {
				d := maskRefusal("mask-bind-prepared", "Masking applies to this session: bind a statement over masked columns with Parse or EXECUTE, not a Bind of a SQL PREPAREd one.")
				return s.refuseBind(o, st, d, nil, time.Now())
			}
		}
	}
	if s.masking != nil && s.masking.chainMasked(st) {
		formats, err := bindResultFormats(m.Body)
		if err != nil {
			return malformed(m.Type)
		}
		o.formats = formats
	}
	if st.decision.Verdict != policy.Allow || st.analysis == nil {
		// Refused at Parse: the server rejects the Bind by itself.
		return s.forward(m.Raw, o)
	}
	start := time.Now() // telemetry: the statement's latency starts with its judgement
	if s.setup.ReadOnly {
		held, err := s.barrier()
		if err != nil {
			return err
		}
		if held != nil {
			return s.refuseBind(o, st, *held, nil, start)
		}
	}
	params, err := wire.BindParams(s.bindParams[:0], m.Body)
	if err != nil {
		return malformed(m.Type)
	}
	s.bindParams = params[:0]
	pp := s.policyParams[:0]
	for i, p := range params {
		var typ uint32
		if i < len(st.paramTypes) {
			typ = st.paramTypes[i]
		}
		pp = append(pp, policy.Param{Value: p.Value, Binary: p.Binary, Type: typ})
	}
	s.policyParams = pp[:0]
	// Until the server has answered every Parse of the name, the Bind may
	// bind any of the definitions that have not failed: judge each.
	var d policy.Decision
	for c := st; c != nil; c = c.prev {
		if c != st && c.parse.Load() == parseFailed {
			continue
		}
		b := &s.bindJudged // reused: judging a Bind keeps nothing of it
		b.protocol, b.sql, b.name, b.analysis, b.portal = c.protocol, c.sql, c.name, c.analysis, o.portal
		d = s.judge(b, policy.StageBind, pp)
		b.sql, b.analysis = "", nil
		if d.Verdict != policy.Allow {
			break
		}
	}
	clear(pp)
	defer clear(params)
	if (d.Verdict == policy.Allow || d.Verdict == policy.Approve) && s.masking != nil {
		if md, refused := s.judgeMaskedBind(st); refused {
			d = md
		}
	}
	if d.Verdict == policy.Approve {
		d, o.refusedCode = s.approval(st, d, recordedParams(params))
	}
	if d.Verdict == policy.Allow {
		if runsAtRunTime(st.analysis) {
			s.stale = true
		}
		if s.recording {
			o.seq = s.seq.Add(1) // the portal's results belong to this Bind
			if !s.record(session.Event{Kind: session.KindStatement, SessionID: s.info.ID, Time: time.Now(),
				Statement: bindEvent(o.seq, st, o.portal, params, d)}) {
				return errSessionOver
			}
		}
		o.tel = s.telStatement(st, policy.StageBind, d, start) // telemetry
		return s.forward(m.Raw, o)
	}
	return s.refuseBind(o, st, d, params, start)
}

// forgetDeallocated drops the prepared statements that SQL DEALLOCATE or
// DISCARD ALL removes on the server (the protocol and SQL share one
// namespace): a Parse of the name afterwards defines it anew.
func (s *clientSession) forgetDeallocated(sts []*policy.Statement) {
	for _, a := range sts {
		switch a.Kind {
		case policy.KindDeallocate:
			if a.Name == "" {
				clear(s.statements)
			} else {
				delete(s.statements, a.Name)
			}
		case policy.KindDiscard:
			for _, set := range a.Settings {
				if set.Name == "all" {
					clear(s.statements)
				}
			}
		}
	}
}

// injectDescribe asks the server to describe a masked statement right after
// its Parse, whatever the client does: clients that cache descriptions
// (pgx) send Bind and Execute alone later, and the gateway must know the
// result's columns to mask them. The answer does not reach the client.
func (s *clientSession) injectDescribe(st *statement) *session.Error {
	msg := make([]byte, 0, 7+len(st.name))
	msg = append(msg, 'D', 0, 0, 0, 0, 'S')
	msg = append(msg, st.name...)
	msg = append(msg, 0)
	binary.BigEndian.PutUint32(msg[1:], uint32(len(msg)-1))
	return s.forward(msg, op{kind: opDescribe, describes: st})
}

// refuseBind records a refused Bind and forwards, in its place, a Bind the
// server is certain to reject. start is when its judgement began.
func (s *clientSession) refuseBind(o op, st *statement, d policy.Decision, params []wire.BindParam, start time.Time) *session.Error {
	o.refused = &d
	if s.recording {
		o.seq = s.seq.Add(1)
		ev := session.Event{Kind: session.KindStatement, SessionID: s.info.ID, Time: time.Now(),
			Statement: bindEvent(o.seq, st, o.portal, params, d)}
		if !s.record(ev) {
			return errSessionOver
		}
	}
	o.tel = s.telStatement(st, policy.StageBind, d, start) // telemetry
	if err := s.forward(refusedBind(o.portal), o); err != nil {
		return err
	}
	if d.Verdict == policy.Terminate {
		return s.terminateFor(d)
	}
	return nil
}

// sendStatement records the statement and forwards raw for it. start is
// when its judgement began.
func (s *clientSession) sendStatement(raw []byte, kind opKind, st *statement, start time.Time) *session.Error {
	if s.recording {
		ev := session.Event{Kind: session.KindStatement, SessionID: s.info.ID, Time: time.Now(),
			Statement: statementEvent(st.seq, st, stageOf(kind), st.decision)}
		if !s.record(ev) {
			return errSessionOver
		}
	}
	o := op{kind: kind, stmt: st}
	o.tel = s.telStatement(st, stageOf(kind), st.decision, start) // telemetry
	if st.decision.Verdict != policy.Allow {
		d := st.decision
		o.refused, o.refusedCode = &d, st.refusedCode
	}
	return s.forward(raw, o)
}

// trackParse records what a Parse will define if the server accepts it.
// The server refuses to redefine a named statement that exists, and drops
// the unnamed one before parsing a new one.
func (s *clientSession) trackParse(st *statement) {
	if st.name == "" {
		if st.decision.Verdict != policy.Allow {
			delete(s.statements, "")
		} else {
			s.statements[""] = st
		}
		return
	}
	if st.decision.Verdict != policy.Allow {
		return // the stand-in fails; whatever the server has stays
	}
	prev := resolvePrev(s.statements[st.name])
	switch {
	case prev == nil:
		s.statements[st.name] = st
	case prev.parse.Load() == parsePending:
		// Which of the two the server keeps depends on whether the
		// earlier Parse succeeds: remember both.
		st.prev = prev
		s.statements[st.name] = st
	}
	// An existing statement stays: the server will reject this Parse.
}

// answered returns the statement a name means on the server, once the
// server has answered every Parse of the name sent before: the latest that
// succeeded, skipping the failed ones (see trackParse). It returns nil when
// every Parse of the name failed.
func answered(st *statement) *statement {
	for st != nil && st.parse.Load() != parseOK {
		st = st.prev
	}
	return st
}

// resolvePrev skips failed statements down a prev chain.
func resolvePrev(st *statement) *statement {
	for st != nil && st.parse.Load() == parseFailed {
		st = st.prev
	}
	return st
}

// pruneStatements drops the names whose every Parse failed.
func (s *clientSession) pruneStatements() {
	for name, st := range s.statements {
		if resolvePrev(st) == nil {
			delete(s.statements, name)
		}
	}
}

// overLimit reports whether a session holding n prepared statements (or
// portals) may not create one more.
func (s *clientSession) overLimit(n int) bool {
	return s.lim.MaxPreparedStatements > 0 && n >= s.lim.MaxPreparedStatements
}

// forward queues o as awaiting an answer and writes raw to the server.
func (s *clientSession) forward(raw []byte, o op) *session.Error {
	if s.recording && (o.stmt != nil || o.kind == opExecute) {
		o.sent = time.Now() // for the result's duration
	}
	if !s.pipe.tryPush(o) {
		// Too many requests in flight: let the server catch up. The server
		// holds its answers to extended-protocol messages until a Sync or
		// a Flush, so the wait could be for ever without a Flush (which
		// the server ignores in COPY and answers with nothing).
		s.uw.Write(flushMessage)
		if err := s.uw.Flush(); err != nil {
			o.tel.abandon("the gateway lost the connection to the server") // telemetry
			return pgError(session.CodeConnectionFailure, "lost the connection to the database server")
		}
		s.blocking()
		if !s.pipe.pushWait(o) {
			o.tel.abandon("the session ended") // telemetry
			return errSessionOver
		}
	}
	return s.write(raw)
}

// write buffers raw for the server.
func (s *clientSession) write(raw []byte) *session.Error {
	if _, err := s.uw.Write(raw); err != nil {
		s.end(session.EndUpstreamClosed, pgError(session.CodeConnectionFailure, "lost the connection to the database server"))
		return errSessionOver
	}
	return nil
}

// clientReadFailed ends the session after a failed read from the client.
func (s *clientSession) clientReadFailed(err error) {
	var tooLarge *wire.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		s.log.Warn("pgwarden: client message over the limit", "err", err)
		code := session.CodeProgramLimitExceeded
		if tooLarge.BeyondProtocol() {
			code = session.CodeProtocolViolation
		}
		s.end(session.EndProtocolError, pgError(code,
			fmt.Sprintf("message of %d bytes exceeds the gateway's limit of %d bytes", tooLarge.Length, tooLarge.Max)))
	case errors.Is(err, wire.ErrMalformed):
		s.end(session.EndProtocolError, pgError(session.CodeProtocolViolation, "invalid message length"))
	case errors.Is(err, os.ErrDeadlineExceeded) && s.lim.IdleTimeout > 0 && s.pipe.pending() == 0:
		s.end(session.EndIdleTimeout, pgError(session.CodeIdleSessionTimeout,
			"terminating connection due to idle-session timeout"))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		s.end(session.EndClientExit, nil)
	default:
		s.end(session.EndClientExit, nil)
	}
}

// armIdleTimeout sets the client read deadline before the relay waits for
// the client: the idle timeout when nothing is pending, none otherwise.
func (s *clientSession) armIdleTimeout() {
	if s.lim.IdleTimeout <= 0 {
		return
	}
	if s.pipe.pending() == 0 {
		s.armReadDeadline(time.Now().Add(s.lim.IdleTimeout))
	} else {
		s.armReadDeadline(time.Time{})
	}
}

// sayGoodbye ends the upstream session politely: a Terminate message, then
// the connection is closed.
func (s *clientSession) sayGoodbye() {
	s.up.conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.uw.Write([]byte{'X', 0, 0, 0, 4})
	s.uw.Flush()
	s.up.conn.Close()
}
