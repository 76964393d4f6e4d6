package proxy

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// statementEvent describes a judged statement for the recorder.
func statementEvent(seq int64, st *statement, stage policy.Stage, d policy.Decision) *session.StatementEvent {
	sql := st.shownSQL()
	ev := &session.StatementEvent{Seq: seq, Protocol: st.protocol, SQL: sql, Name: st.name, FunctionOID: st.fnOID,
		Stage: string(stage), Verdict: d.Verdict.String(), Rule: d.Rule, Reason: d.Reason}
	if !utf8.ValidString(sql) {
		// JSON would replace the invalid bytes: keep them all.
		ev.SQL, ev.SQLBytes = "", []byte(sql)
	}
	for _, a := range st.analysis {
		for x := a; x != nil; x = x.Inner {
			if k := string(x.Kind); k != "" && !slices.Contains(ev.Kinds, k) {
				ev.Kinds = append(ev.Kinds, k)
			}
			for _, r := range x.Relations() {
				name := r.Name
				if r.Schema != "" {
					name = r.Schema + "." + r.Name
				}
				if !slices.Contains(ev.Tables, name) {
					ev.Tables = append(ev.Tables, name)
				}
			}
		}
	}
	return ev
}

// credentialCommands are the statements whose text may carry a password
// (CREATE ROLE ... PASSWORD, user mappings and foreign servers with a
// password option).
var credentialCommands = map[string]bool{
	"CREATE ROLE": true, "ALTER ROLE": true, "ALTER ROLE SET": true, "ALTER DATABASE SET": true,
	"CREATE USER MAPPING": true, "ALTER USER MAPPING": true,
	"CREATE FOREIGN SERVER": true, "ALTER FOREIGN SERVER": true,
	"CREATE SUBSCRIPTION": true, "ALTER SUBSCRIPTION": true, "ALTER SYSTEM": true,
}

// credentialWords are words whose presence in a text the gateway could not
// parse makes it withhold the text (see withheldUnparsed).
var credentialWords = []string{"password", "connection", "conninfo", "secret", "user mapping"}

// withheldUnparsed is withheldText for a text the analyzer refused: when
// it mentions a credential, its constants are replaced (or the whole text
// withheld when even that fails); otherwise "".
func (s *clientSession) withheldUnparsed(sql string) string {
	lower := strings.ToLower(sql)
	if !slices.ContainsFunc(credentialWords, func(w string) bool { return strings.Contains(lower, w) }) {
		return ""
	}
	if n, err := s.p.analyzer().Normalize(sql); err == nil && n != sql {
		return n
	}
	return "-- pgwarden: the text of this statement is not kept: it could not be analysed and may carry a credential"
}

// withheldText returns, for a query with a statement that may carry a
// credential, the text the gateway keeps and shows instead of sql: sql
// with its constants replaced by $1, $2, ... (PostgreSQL's own
// normalisation), or, when that replaces nothing, a note that the text was
// withheld. Otherwise "": sql may be kept as it is.
func (s *clientSession) withheldText(sql string, sts []*policy.Statement) string {
	command := ""
	for _, a := range sts {
		for x := a; x != nil && command == ""; x = x.Inner {
			if credentialCommands[x.Command] {
				command = x.Command
			}
		}
	}
	if command == "" {
		return ""
	}
	if n, err := s.p.analyzer().Normalize(sql); err == nil && n != sql {
		return n
	}
	return "-- pgwarden: the text of this " + command + " is not kept: it may carry a credential"
}

// bindEvent describes a Bind for the recorder, with its parameters.
func bindEvent(seq int64, st *statement, portal string, params []wire.BindParam, d policy.Decision) *session.StatementEvent {
	ev := statementEvent(seq, st, policy.StageBind, d)
	ev.Portal = portal
	ev.Params = recordedParams(params)
	return ev
}

// stageOf is the judging stage of a request that carries a statement.
func stageOf(kind opKind) policy.Stage {
	switch kind {
	case opParse:
		return policy.StageParse
	case opFunctionCall:
		return policy.StageFunctionCall
	}
	return policy.StageQuery
}
