package proxy

import (
	"slices"
	"unicode/utf8"

	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// statementEvent describes a judged statement for the recorder.
func statementEvent(seq int64, st *statement, stage policy.Stage, d policy.Decision) *session.StatementEvent {
	ev := &session.StatementEvent{Seq: seq, Protocol: st.protocol, SQL: st.sql, Name: st.name, FunctionOID: st.fnOID,
		Stage: string(stage), Verdict: d.Verdict.String(), Rule: d.Rule, Reason: d.Reason}
	if !utf8.ValidString(st.sql) {
		// JSON would replace the invalid bytes: keep them all.
		ev.SQL, ev.SQLBytes = "", []byte(st.sql)
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
