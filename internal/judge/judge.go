package judge

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/internal/analysis"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// maxPrepareCandidates bounds how many definitions the gateway remembers
// for one SQL prepared statement name (see Names); past it the name
// counts as unknown.
const maxPrepareCandidates = 8

// Names is what the gateway knows of a session's state that changes
// the meaning of later statements: SQL-level prepared statements and
// cursors, and the schemas unqualified names may resolve to. It is
// conservative: a name the server may hold with one of several
// definitions keeps them all, and the search path only grows.
type Names struct {
	// Prepared maps a PREPAREd name to every definition it may have.
	Prepared map[string][]*policy.Statement
	// Cursors maps a DECLAREd cursor to its query.
	Cursors map[string]*policy.Statement
	// SearchPath is the union of every search_path the session may have;
	// nil when unknown.
	SearchPath []string
	// Protocol, when set, returns what a statement prepared by the
	// protocol's Parse under name is (SQL EXECUTE may run one: the two
	// share one namespace), or nil.
	Protocol func(name string) []*policy.Statement
}

// GatewaySettings refuses, whatever the policy says, the settings the
// gateway depends on:
//   - those that would make the server read later statements differently
//     from the gateway's parser, which reads them as UTF-8 with
//     standard_conforming_strings on (rule "parser-settings");
//   - those that carry the client's identity to the server,
//     application_name and pgwarden.* (rule "identity-settings"): the
//     gateway sets them at login, and RESET (back to the login value) is
//     all a client may do with them.
func GatewaySettings(sts []*policy.Statement) (policy.Decision, bool) {
	if _, _, ok := AppNameSet(sts); ok {
		// The gateway rewrites it to keep the identity (see AppNameSet).
		return policy.Decision{}, false
	}
	for _, st := range sts {
		for s := st; s != nil; s = s.Inner {
			for _, set := range s.Settings {
				if changesParsing(set) {
					return policy.Decision{Verdict: policy.Block, Rule: "parser-settings",
						Reason: fmt.Sprintf("Changing %s would make the server read statements differently from the gateway; it is not allowed.", settingName(set))}, true
				}
				if !set.Reset && IdentitySetting(set.Name) {
					return policy.Decision{Verdict: policy.Block, Rule: "identity-settings",
						Reason: fmt.Sprintf("%s carries this session's identity to the database; the gateway sets it and it cannot be changed.", set.Name)}, true
				}
			}
		}
	}
	return policy.Decision{}, false
}

// AppNameSet recognises a query that is exactly one SET [SESSION | LOCAL]
// application_name to a constant, as drivers send after login (pgjdbc
// does, with its default ApplicationName). The gateway runs it rewritten,
// with the session's identity kept in front of the client's value, so
// the client can name itself as without a gateway and the server still
// shows who it is. It returns the client's value and whether the change is
// local to the transaction.
func AppNameSet(sts []*policy.Statement) (value string, local bool, ok bool) {
	if len(sts) != 1 || sts[0].Inner != nil || len(sts[0].Settings) != 1 {
		return "", false, false
	}
	set := sts[0].Settings[0]
	if set.Name != "application_name" || set.Via != "SET" || !set.Known || set.Reset {
		return "", false, false
	}
	// One value: the server refuses a list ('a', 'b'), which the analysis
	// joins into one text.
	tree, err := sts[0].Tree()
	if err != nil {
		return "", false, false
	}
	if vs := tree.GetStmt().GetVariableSetStmt(); vs == nil || len(vs.GetArgs()) != 1 {
		return "", false, false
	}
	return set.Value, set.Local, true
}

// IdentitySetting reports whether a setting carries the identity to the
// server: application_name, or any pgwarden.* setting.
func IdentitySetting(name string) bool {
	name = strings.ToLower(name)
	return name == "application_name" || strings.HasPrefix(name, "pgwarden.")
}

func changesParsing(set policy.Setting) bool {
	value := strings.ToLower(strings.Trim(set.Value, `'" `))
	switch set.Name {
	case "*":
		return true
	case "standard_conforming_strings":
		return !set.Reset && !(set.Known && (value == "on" || value == "true" || value == "1"))
	case "client_encoding":
		return !set.Reset && !(set.Known && SafeClientEncoding(value))
	case "backslash_quote":
		return !set.Reset
	}
	return false
}

func settingName(set policy.Setting) string {
	if set.Name == "*" {
		return "a setting whose name is computed at run time"
	}
	return set.Name
}

// resolve fills in what EXECUTE and FETCH statements run (from the
// session's PREPAREs and DECLAREs, including those earlier in the same
// text), and returns the statements to judge and the names as they will
// be if the statements run. sts is shared and never modified: statements
// that gain an Inner are copies.
func (n Names) Resolve(sts []*policy.Statement, upstreamUser string) ([]*policy.Statement, Names) {
	if !changesNames(sts) {
		return sts, n
	}
	out := make([]*policy.Statement, len(sts))
	next := Names{Prepared: n.Prepared, Cursors: n.Cursors, SearchPath: n.SearchPath, Protocol: n.Protocol}
	cloned := false
	own := func() {
		if !cloned {
			next.Prepared = cloneMap(n.Prepared)
			next.Cursors = cloneMap(n.Cursors)
			next.SearchPath = slices.Clone(n.SearchPath)
			cloned = true
		}
	}
	for i, st := range sts {
		out[i] = st
		switch st.Kind {
		case policy.KindExecute:
			c := *st
			defs := next.Prepared[st.Name]
			if defs == nil && n.Protocol != nil {
				defs = n.Protocol(st.Name)
			}
			c.Inner = preparedInner(st.Name, defs)
			for in := c.Inner; in != nil; in = in.Inner {
				// Every candidate definition may be the one that runs.
				c.Writes = c.Writes || in.Writes
				c.Locks = c.Locks || in.Locks
				c.AllRows = c.AllRows || in.AllRows
			}
			out[i] = &c
		case policy.KindFetch:
			c := *st
			if cur, ok := next.Cursors[st.Name]; ok {
				c.Inner = cur
			} else {
				c.Inner = &policy.Statement{Kind: policy.KindOther, Command: "UNKNOWN CURSOR",
					RunTime: []string{fmt.Sprintf("cursor %q was not declared through the gateway", st.Name)}}
			}
			out[i] = &c
		case policy.KindPrepare:
			own()
			defs := next.Prepared[st.Name]
			if len(defs) < maxPrepareCandidates {
				next.Prepared[st.Name] = append(slices.Clip(defs), st.Inner)
			} else {
				next.Prepared[st.Name] = append(slices.Clip(defs), unknownStatement("too many definitions of "+st.Name))
			}
		case policy.KindDeallocate:
			own()
			if st.Name == "" {
				clear(next.Prepared)
			} else {
				delete(next.Prepared, st.Name)
			}
		case policy.KindDeclare:
			own()
			next.Cursors[st.Name] = st.Inner
		case policy.KindClose:
			own()
			if st.Name == "" {
				clear(next.Cursors)
			} else {
				delete(next.Cursors, st.Name)
			}
		case policy.KindDiscard:
			own()
			clear(next.Prepared)
			clear(next.Cursors)
		}
		for _, set := range settingsOf(st) {
			switch {
			case set.Name == "search_path" && set.Known:
				own()
				if next.SearchPath != nil {
					for _, schema := range SplitSearchPath(set.Value, upstreamUser) {
						if !slices.Contains(next.SearchPath, schema) {
							next.SearchPath = append(next.SearchPath, schema)
						}
					}
				}
			case set.Name == "search_path" && !set.Reset, set.Name == "*":
				// Unknown from now on.
				own()
				next.SearchPath = nil
			}
		}
	}
	return out, next
}

// changesNames reports whether any statement involves the tracked names.
func changesNames(sts []*policy.Statement) bool {
	for _, st := range sts {
		switch st.Kind {
		case policy.KindExecute, policy.KindFetch, policy.KindPrepare, policy.KindDeallocate,
			policy.KindDeclare, policy.KindClose, policy.KindDiscard:
			return true
		}
		if len(settingsOf(st)) > 0 {
			return true
		}
	}
	return false
}

// settingsOf returns the settings a statement and the ones nested in it
// change.
func settingsOf(st *policy.Statement) []policy.Setting {
	if st.Inner == nil {
		return st.Settings
	}
	var out []policy.Setting
	for s := st; s != nil; s = s.Inner {
		out = append(out, s.Settings...)
	}
	return out
}

// preparedInner returns what EXECUTE name runs: the one definition, or a
// statement combining every definition the name may have (writing if any
// writes), or an unknown statement.
func preparedInner(name string, defs []*policy.Statement) *policy.Statement {
	switch len(defs) {
	case 0:
		st := unknownStatement(fmt.Sprintf("prepared statement %q was not prepared through the gateway", name))
		return st
	case 1:
		return defs[0]
	}
	// Chain the candidates so that rules walking Inner see all of them.
	var head *policy.Statement
	for i := len(defs) - 1; i >= 0; i-- {
		c := *defs[i]
		c.Inner = head
		head = &c
	}
	return head
}

func unknownStatement(why string) *policy.Statement {
	return &policy.Statement{Kind: policy.KindOther, Command: "UNKNOWN", Writes: true, RunTime: []string{why}}
}

func cloneMap[V any](m map[string]V) map[string]V {
	c := make(map[string]V, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// splitSearchPath reads a search_path value the way the server does:
// comma-separated, unquoted names folded to lower case, "$user" meaning the
// session's role. pg_temp is left out (it holds only the session's own
// tables).
func SplitSearchPath(v, user string) []string {
	var out []string
	for len(v) > 0 {
		v = strings.TrimLeft(v, " \t\n\r")
		var name string
		if strings.HasPrefix(v, `"`) {
			var b strings.Builder
			i := 1
			for i < len(v) {
				if v[i] == '"' {
					if i+1 < len(v) && v[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(v[i])
				i++
			}
			name, v = b.String(), v[i:]
		} else {
			end := strings.IndexByte(v, ',')
			if end < 0 {
				end = len(v)
			}
			name, v = strings.ToLower(strings.TrimSpace(v[:end])), v[end:]
		}
		v = strings.TrimLeft(v, " \t\n\r")
		v = strings.TrimPrefix(v, ",")
		if name == "$user" {
			name = user
		}
		if name == "" || name == "pg_temp" || strings.HasPrefix(name, "pg_temp_") {
			continue
		}
		out = append(out, name)
	}
	return out
}

// SafeClientEncoding reports whether the server would read statements in
// this encoding exactly as a UTF-8 parser does: UTF8 itself, and SQL_ASCII,
// which disables conversion (the server then checks the bytes as UTF-8).
// Other encodings (SJIS, BIG5, GBK, ...) can hide quote characters inside
// multibyte sequences and are refused.
func SafeClientEncoding(v string) bool {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(v))
	return n == "utf8" || n == "unicode" || n == "sqlascii"
}

// Decide asks pol about q and returns what the gateway does: a missing
// policy, an error (returned too, for the log) and an abstention each
// refuse the statement, naming why.
//
// A panic in the policy (a bug in a custom rule) is an error too: the
// statement is refused, the gateway goes on.
func Decide(ctx context.Context, pol policy.Policy, q *policy.Query) (d policy.Decision, err error) {
	if pol == nil {
		return policy.Decision{Verdict: policy.Block, Rule: "no-policy",
			Reason: "The gateway has no policy configured, so it refuses every statement."}, nil
	}
	defer func() {
		if r := recover(); r != nil {
			d, err = policyError, fmt.Errorf("the policy panicked: %v\n%s", r, debug.Stack())
		}
	}()
	d, err = pol.Decide(ctx, q)
	switch {
	case err != nil:
		return policyError, err
	case d.Verdict == policy.Abstain:
		return policy.Decision{Verdict: policy.Block, Rule: "no-decision",
			Reason: "No rule of the policy decided about this statement, so the gateway refuses it."}, nil
	case d.Verdict < policy.Abstain || d.Verdict > policy.Terminate:
		return policy.Decision{Verdict: policy.Block, Rule: d.Rule,
			Reason: fmt.Sprintf("The policy returned %v, which is not a verdict; the statement is refused.", d.Verdict)}, nil
	}
	return d, nil
}

// Enforced is what the proxy does with a decision: a Mask verdict is
// refused, because masks are declared on the Proxy (Proxy.Masks), where
// the gateway reads the catalog for them at session start; a verdict alone
// cannot be honoured. Other decisions are returned unchanged.
func Enforced(d policy.Decision) policy.Decision {
	if d.Verdict != policy.Mask {
		return d
	}
	return policy.Decision{Verdict: policy.Block, Rule: d.Rule,
		Reason: "The policy asked to mask this statement's results, which this gateway does only for the columns declared in its masks (Proxy.Masks, policy.masks); the statement is refused."}
}

// policyError refuses a statement the policy failed on.
var policyError = policy.Decision{Verdict: policy.Block, Rule: "policy-error",
	Reason: "The policy could not decide about this statement, so the gateway refuses it."}

// AnalysisRefusal is the decision for a statement the analyzer could not
// read: err is the analyzer's error, whose reason the client reads.
func AnalysisRefusal(err error) policy.Decision {
	reason := "internal error"
	if ae, ok := err.(*analysis.Error); ok {
		reason = ae.Reason
	}
	return policy.Decision{Verdict: policy.Block, Rule: "analysis",
		Reason: "The gateway cannot analyse this statement: " + reason + "."}
}

// Offline judges SQL text as the gateway judges a simple-protocol Query
// message, without a connection: analysis, the gateway's own rules, the
// policy, and the session's names. It is not safe for concurrent use.
type Offline struct {
	Policy   policy.Policy      // the policy to ask
	Info     *session.Info      // the session the statements arrive on
	Names    Names              // the session's names, updated by allowed statements
	Analyzer *analysis.Analyzer // analyses the text
}

// Query returns the query the gateway puts to the policy for sql at now,
// and the names as they will be if it is allowed; the error is the
// analyzer's.
func (o *Offline) Query(sql string, now time.Time) (*policy.Query, Names, error) {
	sts, err := o.Analyzer.Analyze(sql)
	if err != nil {
		return nil, o.Names, err
	}
	resolved, next := o.Names.Resolve(sts, o.Info.UpstreamUser)
	return &policy.Query{Session: o.Info, Protocol: session.ProtocolSimple, Stage: policy.StageQuery,
		Time: now, SQL: sql, Statements: resolved, SearchPath: next.SearchPath}, next, nil
}

// Decide returns the decision about sql at now and, when the policy
// failed, its error. An allowed statement's effect on the names is kept.
func (o *Offline) Decide(ctx context.Context, sql string, now time.Time) (policy.Decision, error) {
	q, next, err := o.Query(sql, now)
	if err != nil {
		return AnalysisRefusal(err), nil
	}
	if d, refused := GatewaySettings(q.Statements); refused {
		return d, nil
	}
	d, err := Decide(ctx, o.Policy, q)
	if d.Verdict == policy.Allow {
		o.Names = next
	}
	return d, err
}
