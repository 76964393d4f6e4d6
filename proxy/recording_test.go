package proxy

import (
	"testing"

	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// TestRecordingKeepsBytesThatAreNotUTF8: with client_encoding SQL_ASCII a
// client may send bytes that are not UTF-8; JSON would replace them, so the
// statement event keeps them in SQLBytes and parameters in hex.
func TestRecordingKeepsBytesThatAreNotUTF8(t *testing.T) {
	sql := "select 'caf\xe9'"
	st := &statement{protocol: session.ProtocolSimple, sql: sql}
	ev := statementEvent(1, st, policy.StageQuery, policy.Decision{Verdict: policy.Allow})
	if ev.SQL != "" || string(ev.SQLBytes) != sql {
		t.Fatalf("SQL %q, SQLBytes %q; want the bytes kept in SQLBytes", ev.SQL, ev.SQLBytes)
	}
	ok := statementEvent(2, &statement{sql: "select 'café'"}, policy.StageQuery, policy.Decision{Verdict: policy.Allow})
	if ok.SQL != "select 'café'" || ok.SQLBytes != nil {
		t.Fatalf("valid UTF-8 recorded as SQL %q, SQLBytes %q", ok.SQL, ok.SQLBytes)
	}
	b := bindEvent(3, st, "", []wire.BindParam{{Value: []byte("caf\xe9")}, {Value: []byte("ok")}, {Value: nil}}, policy.Decision{Verdict: policy.Allow})
	if b.Params[0] == nil || *b.Params[0] != `\x636166e9` || *b.Params[1] != "ok" || b.Params[2] != nil {
		t.Fatalf("params %v", b.Params)
	}
}
