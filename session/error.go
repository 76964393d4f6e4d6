package session

import "fmt"

// Error is an error that reaches the PostgreSQL client as an ErrorResponse
// with the given SQLSTATE. Plugins return it (possibly wrapped) when the
// client should see a specific code and message; any other error is reported
// to the client with a generic message, so that internal details (addresses,
// tokens, stack traces) are never shown.
//
// Message, Detail and Hint are sent to the client as written: never put a
// secret in them.
type Error struct {
	// Code is the five-character SQLSTATE, for example "28000".
	Code string
	// Message is the primary, human-readable message.
	Message string
	// Detail and Hint are optional.
	Detail string
	Hint   string
	// Err is the underlying cause, kept for logs and errors.Is; it is not
	// sent to the client.
	Err error
}

// Error returns "SQLSTATE CODE: message".
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("SQLSTATE %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("SQLSTATE %s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// SQLSTATE codes pgwarden reports. The full list is in the PostgreSQL manual,
// appendix A.
const (
	CodeUnableToConnect       = "08001" // the server could not be reached
	CodeConnectionRejected    = "08004" // the server refused the gateway's login
	CodeConnectionFailure     = "08006" // the connection to the server was lost
	CodeProtocolViolation     = "08P01" // a peer broke the protocol
	CodeFeatureNotSupported   = "0A000"
	CodeInvalidParameterValue = "22023"
	CodeInvalidAuthorization  = "28000" // refused: not allowed, not configured, expired
	CodeInvalidPassword       = "28P01" // wrong password, token or proof
	CodeInsufficientPrivilege = "42501" // a statement or parameter refused by the gateway
	CodeTooManyConnections    = "53300"
	CodeProgramLimitExceeded  = "54000" // a gateway limit was exceeded
	CodeQueryCanceled         = "57014"
	CodeAdminShutdown         = "57P01" // terminated, or the gateway is shutting down
	CodeCannotConnectNow      = "57P03"
	CodeIdleSessionTimeout    = "57P05"
	CodeSystemError           = "58000" // the gateway could not record the session
	CodeInternalError         = "XX000"
)
