package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/session"
)

// relayBackend forwards the server's messages to the client until the
// session ends, matching each answer to the request that caused it.
func (s *clientSession) relayBackend() {
	for {
		if !s.ur.MessageReady() {
			s.telFlushDown() // telemetry: pgwarden.bytes, per batch
			if err := s.cw.flush(); err != nil {
				s.end(session.EndClientExit, nil)
				return
			}
		}
		m, err := s.ur.Next()
		if err != nil {
			s.upstreamReadFailed(err)
			return
		}
		out, ferr := s.backendMessage(m)
		if ferr != nil {
			if ferr != errSessionOver {
				s.log.Error("pgwarden: ending the session on a server message",
					"type", string(m.Type), "err", ferr.Err)
				s.end(session.EndProtocolError, ferr)
			}
			return
		}
		if err := s.cw.write(out); err != nil {
			s.end(session.EndClientExit, nil)
			return
		}
		s.tel.down += int64(len(out)) // telemetry
		if m.Type == 'Z' && s.draining.Load() && s.idle() {
			s.cw.flush()
			s.end(session.EndShutdown, s.drainErr.Load())
			return
		}
	}
}

// upstreamViolation builds the FATAL for a server that broke the protocol.
// What was wrong goes to the log only (in Err).
func upstreamViolation(format string, args ...any) *session.Error {
	return &session.Error{Code: session.CodeProtocolViolation,
		Message: "the database server sent an invalid message; the gateway ended the session",
		Err:     fmt.Errorf(format, args...)}
}

// backendMessage checks one server message against the pipeline, updates
// the session, and returns what to send to the client (the message itself,
// or the refusal that replaces the server's error).
func (s *clientSession) backendMessage(m wire.Message) ([]byte, *session.Error) {
	if s.masking != nil {
		if o := s.front(); o != nil && o.stmt != nil && o.stmt.maskTouched {
			s.maskTx = true // until the transaction ends: its errors may quote masked values
		}
	}
	if o := s.front(); o != nil && o.verify != nil {
		switch m.Type {
		case 'T', 'D', 'C', 'E':
			return nil, s.verifyMessage(o, m.Type, m.Body)
		case 'Z':
			v := o.verify
			if err := s.readyForQuery(m); err != nil {
				return nil, err
			}
			close(v.done)
			return nil, nil
		}
	}
	switch m.Type {
	case 'D': // DataRow
		o := s.front()
		if o == nil || (o.kind != opExecute && o.kind != opQuery) {
			return nil, s.unexpected(m.Type, o)
		}
		o.rows++
		if s.masking != nil {
			if out, masked, err := s.maskRow(o, m); masked || err != nil {
				return out, err // maskDataRow checked the row as ValidateDataRow does
			}
		}
		if err := wire.ValidateDataRow(m.Body); err != nil {
			return nil, upstreamViolation("%v", err)
		}
	case 'C': // CommandComplete
		o := s.front()
		if o == nil || (o.kind != opExecute && o.kind != opQuery) {
			return nil, s.unexpected(m.Type, o)
		}
		tag, err := wire.CommandTag(m.Body)
		if err != nil {
			return nil, upstreamViolation("%v", err)
		}
		if !s.complete(o, tag, "", "") {
			return nil, errSessionOver
		}
		o.nextResult()
		if o.kind == opExecute {
			s.pop()
		}
	case 'I', 's': // EmptyQueryResponse, PortalSuspended
		o := s.front()
		if o == nil || (o.kind != opExecute && (o.kind != opQuery || m.Type == 's')) {
			return nil, s.unexpected(m.Type, o)
		}
		if !s.complete(o, nil, "", "") {
			return nil, errSessionOver
		}
		o.nextResult()
		if o.kind == opExecute {
			s.pop()
		}
	case 'T': // RowDescription
		o := s.front()
		switch {
		case o != nil && o.kind == opDescribe:
			if o.describes != nil {
				return nil, s.described(o, m.Body)
			}
			s.pop()
		case o != nil && o.kind == opQuery:
			if s.masking != nil {
				if err := s.queryResult(o, m.Body); err != nil {
					return nil, err
				}
			}
		default:
			return nil, s.unexpected(m.Type, o)
		}
	case 'n': // NoData
		if err := s.expect(m.Type, opDescribe); err != nil {
			return nil, err
		}
		if o := s.front(); o.describes != nil {
			return nil, s.described(o, nil)
		}
		s.pop()
	case 't': // ParameterDescription
		if err := s.expect(m.Type, opDescribe); err != nil {
			return nil, err
		}
		if s.front().describes != nil {
			return nil, nil // the gateway's own Describe
		}
	case '1': // ParseComplete
		if err := s.expect(m.Type, opParse); err != nil {
			return nil, err
		}
		if o := s.front(); o.stmt != nil {
			o.stmt.parse.Store(parseOK)
		}
		s.pop()
	case '2': // BindComplete: the portal exists now
		if err := s.expect(m.Type, opBind); err != nil {
			return nil, err
		}
		o := s.front()
		if _, exists := s.portals.get(o.portal); !exists && s.overLimit(s.portals.len()) {
			return nil, pgError(session.CodeProgramLimitExceeded, "too many open portals in this session")
		}
		s.portals.set(o.portal, portal{stmt: answered(o.stmt), seq: o.seq, formats: o.formats})
		s.telBound(o) // telemetry: the Bind's span goes on with the portal's Execute
		s.pop()
	case '3': // CloseComplete
		if err := s.expect(m.Type, opClose); err != nil {
			return nil, err
		}
		if o := s.front(); o.closesPortal {
			s.portals.delete(o.portal)
		}
		s.pop()
	case 'G', 'W': // CopyInResponse, CopyBothResponse
		o := s.front()
		if o == nil || (o.kind != opExecute && o.kind != opQuery) {
			return nil, s.unexpected(m.Type, o)
		}
		o.copyIn = true
	case 'H', 'd', 'c': // CopyOutResponse, CopyData, CopyDone
		o := s.front()
		if o == nil || (o.kind != opExecute && o.kind != opQuery) {
			return nil, s.unexpected(m.Type, o)
		}
		if m.Type == 'd' {
			o.rows++
		}
		if s.masking != nil {
			switch {
			case m.Type == 'H':
				if err := s.copyOutStarted(o, m.Body); err != nil {
					return nil, err
				}
			case m.Type == 'd' && o.copyOut != nil:
				return s.maskCopyRow(o, m)
			}
		}
	case 'V': // FunctionCallResponse
		if err := s.expect(m.Type, opFunctionCall); err != nil {
			return nil, err
		}
	case 'E':
		return s.backendError(m)
	case 'Z':
		return m.Raw, s.readyForQuery(m)
	case 'N', 'A': // NoticeResponse, NotificationResponse: not tied to a request
		if m.Type == 'N' && s.masking != nil && s.maskTx {
			return scrubbedNotice(m.Body), nil
		}
	case 'S': // ParameterStatus
		name, rest, ok := wire.CString(m.Body)
		if !ok {
			return nil, upstreamViolation("malformed ParameterStatus")
		}
		value, rest, ok := wire.CString(rest)
		if !ok || len(rest) != 0 {
			return nil, upstreamViolation("malformed ParameterStatus")
		}
		if !parsingSafe(string(name), string(value)) {
			// Something the analysis did not catch changed how the server
			// reads statements: the gateway can no longer judge them.
			s.log.Error("pgwarden: the server's parsing settings changed; session ended", "parameter", string(name), "value", string(value))
			s.end(session.EndProtocolError, &session.Error{Code: session.CodeInsufficientPrivilege,
				Message: fmt.Sprintf("pgwarden: %s changed to %q, which makes the server read statements differently from the gateway", name, value)})
			return nil, errSessionOver
		}
		if string(name) == settingAppName {
			clientApp, ok := clientAppName(s.info.Identity, string(value))
			if !ok {
				// Only code the gateway could not see gets here: a SET is
				// rewritten to keep the identity, set_config is refused.
				s.log.Error("pgwarden: application_name changed at run time; session ended")
				s.end(session.EndProtocolError, &session.Error{Code: session.CodeInsufficientPrivilege,
					Message: "pgwarden: code the gateway could not see changed application_name, which carries this session's identity; the session is ended"})
				return nil, errSessionOver
			}
			// The client sees the name it chose, as without the gateway.
			if name, ok := s.appNames.clientName(string(value)); ok {
				clientApp = name
			} else if string(value) == s.identity[settingAppName] {
				clientApp = s.info.ApplicationName // back to the login's
			}
			return clientAppNameStatus(clientApp), nil
		}
	default:
		// Authentication requests, BackendKeyData (which would reveal the
		// server's cancel key) and anything unknown have no place here.
		return nil, upstreamViolation("unexpected message type %q after startup", m.Type)
	}
	return m.Raw, nil
}

// expect checks that the front request is of kind.
func (s *clientSession) expect(typ byte, kind opKind) *session.Error {
	if o := s.front(); o == nil || o.kind != kind {
		return s.unexpected(typ, o)
	}
	return nil
}

// front returns the request the server is answering. It is cached until
// pop: the frontend relay only appends to the pipeline. An Execute learns
// here which statement its portal runs.
func (s *clientSession) front() *op {
	if s.cur == nil {
		s.cur = s.pipe.front()
		if o := s.cur; o != nil && o.kind == opExecute {
			p, _ := s.portals.get(o.portal)
			o.stmt, o.seq, o.formats = p.stmt, p.seq, p.formats
			s.telExecute(o) // telemetry
		}
	}
	return s.cur
}

// pop removes the front request, which is answered.
func (s *clientSession) pop() {
	if s.cur != nil {
		s.telDone(s.cur) // telemetry: the request is answered
	}
	s.cur = nil
	s.pipe.pop()
}

func (s *clientSession) unexpected(typ byte, o *op) *session.Error {
	if o == nil {
		return upstreamViolation("message %q with no request pending", typ)
	}
	return upstreamViolation("message %q in answer to %v", typ, o.kind)
}

// backendError handles an ErrorResponse: a FATAL ends the session after it
// reached the client; an ERROR completes the front request, and after an
// extended-protocol request the server skips to the next Sync.
func (s *clientSession) backendError(m wire.Message) ([]byte, *session.Error) {
	severity, code, message, err := wire.ErrorFields(m.Body)
	if err != nil {
		return nil, upstreamViolation("%v", err)
	}
	if severity == "FATAL" || severity == "PANIC" {
		s.tel.fatal = code // telemetry
		s.cw.write(m.Raw)
		s.end(session.EndUpstreamClosed, nil)
		return nil, errSessionOver
	}
	o := s.front()
	if o == nil {
		return nil, upstreamViolation("error %s with no request pending", code)
	}
	out := m.Raw
	switch {
	case s.masking != nil && (o.stmt != nil && o.stmt.maskTouched || s.maskTx):
		out = scrubbedError(code)
	case s.masking != nil && s.masking.cat.tables:
		// A statement that names no masked column can still touch masked
		// rows (a foreign key's cascade): the detail, which quotes rows
		// and keys, goes.
		out = errorWithoutDetail(m.Body, code)
	}
	if o.refused != nil {
		// The server rejected the stand-in for a refused statement, as it
		// had to: tell the client why the gateway refused it.
		refusal := &session.Error{Code: session.CodeInsufficientPrivilege,
			Message: fmt.Sprintf("pgwarden: statement refused by rule %q", o.refused.Rule),
			Detail:  o.refused.Reason}
		if o.refusedCode != "" {
			refusal.Code = o.refusedCode
		}
		out = appendError(nil, severityError, refusal)
		code, message = refusal.Code, refusal.Message
	}
	if !s.complete(o, nil, code, message) {
		return nil, errSessionOver
	}
	if o.kind == opParse && o.stmt != nil {
		o.stmt.parse.Store(parseFailed)
	}
	if o.kind.extended() {
		s.pop()
		s.skipToSync = true
	}
	return out, nil
}

// readyForQuery matches ReadyForQuery to the Sync, Query or FunctionCall it
// ends.
func (s *clientSession) readyForQuery(m wire.Message) *session.Error {
	status, err := wire.ReadyStatus(m.Body)
	if err != nil {
		return upstreamViolation("%v", err)
	}
	if s.skipToSync {
		s.cur = nil
		if !s.pipe.popThroughSync() {
			return upstreamViolation("ReadyForQuery with no Sync pending")
		}
		s.skipToSync = false
	} else {
		o := s.front()
		if o == nil || (o.kind != opSync && o.kind != opQuery && o.kind != opFunctionCall) {
			return s.unexpected(m.Type, o)
		}
		s.pop()
	}
	s.txStatus.Store(uint32(status))
	if status == 'I' {
		s.maskTx = false
	}
	if status == 'I' && s.portals.len() > 0 {
		// Portals live until the end of their transaction.
		s.portals.clear()
		s.telPortalsClosed() // telemetry
	}
	if s.lim.IdleTimeout > 0 && s.pipe.pending() == 0 {
		s.armReadDeadline(time.Now().Add(s.lim.IdleTimeout))
	}
	return nil
}

// complete records the end of a command of o (a CommandComplete, an empty
// query, a suspended portal or an error), and accounts for a COPY FROM
// STDIN that it ends. It reports false when the recorder failed.
func (s *clientSession) complete(o *op, tag []byte, errCode, errMessage string) bool {
	if o.copyIn {
		s.pipe.endCopyIn()
		o.copyIn = false
	}
	rows := o.rows
	o.rows = 0
	s.telResult(o, rows, errCode) // telemetry
	if !s.recording || o.stmt == nil {
		return true
	}
	return s.record(session.Event{Kind: session.KindResult, SessionID: s.info.ID, Time: time.Now(),
		Result: &session.ResultEvent{Seq: o.stmt.seq, Bind: o.seq, Tag: string(tag), Rows: rows, Duration: time.Since(o.sent),
			ErrorCode: errCode, ErrorMessage: errMessage}})
}

// upstreamReadFailed ends the session after a failed read from the server.
func (s *clientSession) upstreamReadFailed(err error) {
	var tooLarge *wire.TooLargeError
	switch {
	case errors.As(err, &tooLarge) && tooLarge.BeyondProtocol():
		s.log.Error("pgwarden: invalid message length from the server", "err", err)
		s.end(session.EndProtocolError, upstreamViolation("%v", err))
	case errors.As(err, &tooLarge):
		s.log.Error("pgwarden: server message over the limit", "err", err)
		s.end(session.EndProtocolError, pgError(session.CodeProgramLimitExceeded,
			"the database server sent a message larger than the gateway accepts"))
	case errors.Is(err, wire.ErrMalformed):
		s.log.Error("pgwarden: malformed message from the server", "err", err)
		s.end(session.EndProtocolError, upstreamViolation("%v", err))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, os.ErrDeadlineExceeded):
		s.end(session.EndUpstreamClosed, pgError(session.CodeConnectionFailure,
			"the connection to the database server was lost"))
	default:
		s.log.Warn("pgwarden: reading from the server failed", "err", err)
		s.end(session.EndUpstreamClosed, pgError(session.CodeConnectionFailure,
			"the connection to the database server was lost"))
	}
}
