package proxy

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/internal/judge"
	"github.com/pgwarden/pgwarden/session"
)

// The upstream session carries the client's identity in these settings
// (startup parameters), readable by triggers and functions with
// current_setting('pgwarden.subject'), and in application_name, which
// pg_stat_activity shows. Clients cannot change them: statements that set
// them are refused (rule "identity-settings"), but for a lone SET of
// application_name, which runs with the identity kept in front of the
// client's value; an application_name reported by the server that the
// gateway did not make ends the session, and after code the gateway
// cannot see, the run-time barrier checks the pgwarden.* settings.
const (
	settingSubject = "pgwarden.subject"
	settingIssuer  = "pgwarden.issuer"
	settingChain   = "pgwarden.chain"
	settingSession = "pgwarden.session_id"
	settingAppName = "application_name"
)

// maxAppName is what the server keeps of application_name (NAMEDATALEN-1).
const maxAppName = 63

// identityParams returns the upstream startup parameters: the client's,
// with application_name and the pgwarden.* settings naming the identity.
func identityParams(info *session.Info, client map[string]string) map[string]string {
	out := make(map[string]string, len(client)+5)
	for k, v := range client {
		out[k] = v
	}
	id := info.Identity
	out[settingSubject] = id.Subject
	out[settingIssuer] = id.Issuer
	out[settingChain] = chainJSON(id)
	out[settingSession] = info.ID
	out[settingAppName] = taggedAppName(id, client[settingAppName])
	return out
}

// chainJSON renders the delegation chain from the original subject to the
// party on the wire: [{"sub":..,"iss":..}, ...].
func chainJSON(id session.Identity) string {
	type hop struct {
		Sub string `json:"sub"`
		Iss string `json:"iss,omitempty"`
	}
	hops := make([]hop, 0, 1+len(id.Chain))
	hops = append(hops, hop{id.Subject, id.Issuer})
	for _, a := range id.Chain {
		hops = append(hops, hop{a.Subject, a.Issuer})
	}
	b, _ := json.Marshal(hops)
	return string(b)
}

// taggedAppName is the application_name the server gets: who, through
// which agent, and the client's own name, cut to what the server keeps,
// in printable ASCII (the server replaces anything else with '?').
func taggedAppName(id session.Identity, clientApp string) string {
	var b strings.Builder
	b.WriteString("pgwarden:")
	b.WriteString(id.Subject)
	if n := len(id.Chain); n > 0 {
		b.WriteString(" via ")
		b.WriteString(id.Chain[n-1].Subject)
	}
	if clientApp != "" {
		b.WriteString(" | ")
		b.WriteString(clientApp)
	}
	s := []byte(b.String())
	for i, c := range s {
		if c < 32 || c > 126 {
			s[i] = '?'
		}
	}
	if len(s) > maxAppName {
		s = s[:maxAppName]
	}
	return string(s)
}

// keepIdentityInAppName returns the message to send for an allowed Query
// or Parse: raw, or, for a lone SET application_name (judge.AppNameSet),
// the same SET of the tagged name, so the client names itself and the
// server still shows who it is. The recording keeps the client's text.
func (s *clientSession) keepIdentityInAppName(raw []byte, kind opKind, st *statement) []byte {
	value, local, ok := judge.AppNameSet(st.analysis)
	if !ok {
		return raw
	}
	scope := ""
	if local {
		scope = "LOCAL "
	}
	tagged := taggedAppName(s.info.Identity, value)
	s.appNames.remember(tagged, value)
	sql := "SET " + scope + "application_name = " + quoteLiteral(tagged)
	var out []byte
	if kind == opParse {
		out, _ = (&pgproto3.Parse{Name: st.name, Query: sql, ParameterOIDs: st.paramTypes}).Encode(nil)
	} else {
		out, _ = (&pgproto3.Query{String: sql}).Encode(nil)
	}
	return out
}

// appNames remembers, for the application_name values the gateway made
// (cut to what the server keeps), the names the client gave, so that the
// client is told its own name as the server would report it. The frontend
// relay writes it, the backend relay reads it.
type appNames struct {
	mu    sync.Mutex
	names map[string]string
}

// maxAppNames bounds what a session remembers; past it, older names are
// forgotten (the client is then told the name as cut upstream).
const maxAppNames = 16

func (a *appNames) remember(tagged, client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.names == nil || len(a.names) >= maxAppNames {
		a.names = map[string]string{}
	}
	a.names[tagged] = client
}

// clientName is the name the client gave for tagged, if remembered.
func (a *appNames) clientName(tagged string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name, ok := a.names[tagged]
	return name, ok
}

// clientAppName is the application_name the client set, from one the
// server reports: ok only when the value is one the gateway made for this
// session's identity (at login, or by keepIdentityInAppName), possibly cut
// to the server's length inside the separator.
func clientAppName(id session.Identity, value string) (string, bool) {
	base := taggedAppName(id, "")
	rest, ok := strings.CutPrefix(value, base)
	switch {
	case !ok:
		return "", false
	case rest == "":
		return "", true
	case strings.HasPrefix(rest, " | "):
		return rest[len(" | "):], true
	case len(value) == maxAppName && strings.HasPrefix(" | ", rest):
		return "", true
	}
	return "", false
}

// clientAppNameStatus is the ParameterStatus for application_name that the
// client sees: the name it gave (as the server would report it), not the
// one that carries the identity upstream.
func clientAppNameStatus(clientApp string) []byte {
	s := []byte(clientApp)
	for i, c := range s {
		if c < 32 || c > 126 {
			s[i] = '?'
		}
	}
	if len(s) > maxAppName {
		s = s[:maxAppName]
	}
	b, _ := (&pgproto3.ParameterStatus{Name: settingAppName, Value: string(s)}).Encode(nil)
	return b
}
