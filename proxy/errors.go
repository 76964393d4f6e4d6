package proxy

import (
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/session"
)

// ErrProxyClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrProxyClosed = errors.New("proxy: closed")

// ErrSessionNotFound is returned by Terminate for an unknown session id, or
// one that has already ended.
var ErrSessionNotFound = errors.New("proxy: no such session")

// Severities of the errors the proxy sends.
const (
	severityError = "ERROR"
	severityFatal = "FATAL"
)

// pgError builds an error that reaches the client with code and message.
func pgError(code, message string) *session.Error {
	return &session.Error{Code: code, Message: message}
}

// appendError appends an ErrorResponse for e with the given severity.
func appendError(dst []byte, severity string, e *session.Error) []byte {
	msg := pgproto3.ErrorResponse{
		Severity:            severity,
		SeverityUnlocalized: severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	}
	out, err := msg.Encode(dst)
	if err != nil {
		// Only possible for a message over 1 GiB, which a gateway error
		// never is; send a fixed one rather than nothing.
		fallback := pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity,
			Code: session.CodeInternalError, Message: "error message too long"}
		out, _ = fallback.Encode(dst)
	}
	return out
}

// clientError returns the error the client should see for err: err itself
// when it is (or wraps) a *session.Error, otherwise a generic error with
// code and message, so that internal details never reach the client.
func clientError(err error, code, message string) *session.Error {
	if se, ok := errors.AsType[*session.Error](err); ok {
		return se
	}
	return pgError(code, message)
}
