package proxy

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/judge"
	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// DefaultStartupParameters are the startup parameters a client may set
// besides user and database; they are forwarded to the server. They only
// change formatting and timeouts. Proxy.StartupParameters adds to them.
var DefaultStartupParameters = []string{
	"application_name",
	"client_encoding",
	"DateStyle",
	"IntervalStyle",
	"TimeZone",
	"extra_float_digits",
	"statement_timeout",
	"lock_timeout",
	"idle_in_transaction_session_timeout",
}

// maxIdentifier is the longest name PostgreSQL keeps (NAMEDATALEN - 1); it
// silently truncates longer user and database names, and so do we, so that
// the name we authorise is the name the server uses.
const maxIdentifier = 63

// maxParamValue bounds a forwarded startup parameter's value.
const maxParamValue = 1024

// startupRequest is a startup packet after canonicalisation and checks.
type startupRequest struct {
	user, database string
	// params are forwarded to the server; their names are the server's
	// canonical spelling when known (DateStyle, not datestyle).
	params map[string]string
	// unsupportedOptions are _pq_.* protocol options the client asked for;
	// newerMinor is set when the client asked for a 3.x with x > 0. Either
	// calls for a NegotiateProtocolVersion message.
	unsupportedOptions []string
	newerMinor         bool
	// authMethod is the gateway parameter pgwarden.auth: the
	// authentication exchange the client asks for (auth.Request.Method).
	authMethod string
}

// paramAuthMethod is the gateway's own startup parameter, never forwarded.
const paramAuthMethod = "pgwarden.auth"

// truncateIdentifier clips s to maxIdentifier bytes at a character
// boundary, as the server's pg_mbcliplen does.
func truncateIdentifier(s string) string {
	if len(s) <= maxIdentifier {
		return s
	}
	n := maxIdentifier
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkStartup canonicalises a startup message and applies the parameter
// allow-list. Its errors are ready to send as FATAL.
func checkStartup(st *wire.Startup, allowed []string) (*startupRequest, *session.Error) {
	if st.Major != 3 {
		return nil, pgError(session.CodeFeatureNotSupported,
			fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", st.Major, st.Minor))
	}
	req := &startupRequest{params: map[string]string{}, newerMinor: st.Minor > 0}
	for _, p := range st.Params {
		name, value := p.Name, p.Value
		switch {
		case name == "user":
			req.user = truncateIdentifier(value)
		case name == "database":
			req.database = truncateIdentifier(value)
		case strings.HasPrefix(name, "_pq_."):
			req.unsupportedOptions = append(req.unsupportedOptions, name)
		case strings.EqualFold(name, paramAuthMethod):
			if value != auth.MethodPassword && value != auth.MethodOAuthBearer {
				return nil, pgError(session.CodeInvalidParameterValue,
					fmt.Sprintf("invalid value for parameter %q: %q (expected %q or %q)", paramAuthMethod, value, auth.MethodPassword, auth.MethodOAuthBearer))
			}
			req.authMethod = value
		case judge.IdentitySetting(name) && !strings.EqualFold(name, "application_name"):
			return nil, pgError(session.CodeInsufficientPrivilege,
				fmt.Sprintf("startup parameter %q is reserved: the gateway sets it to the session's identity", name))
		case name == "replication":
			if b, ok := parseBool(value); !ok || b {
				return nil, pgError(session.CodeInsufficientPrivilege,
					"replication connections are not allowed through this gateway")
			}
		case name == "options" && strings.TrimSpace(value) == "" && !allowedParam(name, allowed):
			// An empty options string changes nothing; drop it.
		default:
			canonical, ok := canonicalParam(name, allowed)
			if !ok {
				return nil, &session.Error{Code: session.CodeInsufficientPrivilege,
					Message: fmt.Sprintf("startup parameter %q is not allowed by the gateway", name),
					Hint:    "Remove it from the connection settings, or ask the gateway's operator to allow it."}
			}
			if len(value) > maxParamValue {
				return nil, pgError(session.CodeInvalidParameterValue,
					fmt.Sprintf("value of startup parameter %q is too long", name))
			}
			if canonical == "client_encoding" && !judge.SafeClientEncoding(value) {
				return nil, &session.Error{Code: session.CodeFeatureNotSupported,
					Message: fmt.Sprintf("client_encoding %q is not supported by the gateway", value),
					Hint:    "Use UTF8."}
			}
			req.params[canonical] = value
		}
	}
	if opts, ok := req.params["options"]; ok {
		// -c pgwarden.x=y in options reaches the server like a parameter.
		for _, set := range policy.StartupSettings(&session.Info{Params: map[string]string{"options": opts}}) {
			if judge.IdentitySetting(set.Name) && set.Name != "application_name" {
				return nil, pgError(session.CodeInsufficientPrivilege,
					fmt.Sprintf("startup options set %q, which is reserved: the gateway sets it to the session's identity", set.Name))
			}
		}
	}
	if req.user == "" {
		return nil, pgError(session.CodeInvalidAuthorization, "no PostgreSQL user name specified in startup packet")
	}
	if req.database == "" {
		req.database = req.user
	}
	return req, nil
}

// allowedParam reports whether name is in the extra allow-list.
func allowedParam(name string, allowed []string) bool {
	for _, a := range allowed {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

// canonicalParam returns the allowed spelling of a parameter name (setting
// names are case-insensitive on the server).
func canonicalParam(name string, allowed []string) (string, bool) {
	for _, a := range DefaultStartupParameters {
		if strings.EqualFold(a, name) {
			return a, true
		}
	}
	for _, a := range allowed {
		if strings.EqualFold(a, name) {
			return a, true
		}
	}
	return "", false
}

// parseBool parses a boolean as PostgreSQL's parse_bool does (prefixes of
// true/false/yes/no, on/off, 1/0).
func parseBool(v string) (value, ok bool) {
	s := strings.ToLower(strings.TrimSpace(v))
	switch {
	case s == "":
		return false, false
	case strings.HasPrefix("true", s), strings.HasPrefix("yes", s), s == "on", s == "1":
		return true, true
	case strings.HasPrefix("false", s), strings.HasPrefix("no", s), s == "of", s == "off", s == "0":
		return false, true
	}
	return false, false
}
