package proxy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/internal/analysis"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// maxPrepareCandidates bounds how many definitions the gateway remembers
// for one SQL prepared statement name (see sqlNames); past it the name
// counts as unknown.
const maxPrepareCandidates = 8

// sqlNames is what the gateway knows of a session's state that changes
// the meaning of later statements: SQL-level prepared statements and
// cursors, and the schemas unqualified names may resolve to. It is
// conservative: a name the server may hold with one of several
// definitions keeps them all, and the search path only grows.
type sqlNames struct {
	// prepared maps a PREPAREd name to every definition it may have.
	prepared map[string][]*policy.Statement
	// cursors maps a DECLAREd cursor to its query.
	cursors map[string]*policy.Statement
	// searchPath is the union of every search_path the session may have;
	// nil when unknown.
	searchPath []string
}

// analyzer returns the proxy's analyzer, made on first use.
func (p *Proxy) analyzer() *analysis.Analyzer {
	p.analyzerOnce.Do(func() {
		lim := p.Limits.effective()
		p.analysis = analysis.New(analysis.Limits{MaxBytes: lim.MaxStatementSize}, lim.AnalysisCacheSize)
	})
	return p.analysis
}

// judge analyses a statement and asks the policy about it at stage. It
// fails closed: an analysis error, a missing policy, a policy error or an
// abstention refuses the statement. On an allowed Query or Parse, the
// session's names are updated.
func (s *clientSession) judge(st *statement, stage policy.Stage, params []policy.Param) policy.Decision {
	if st.protocol == session.ProtocolFunctionCall {
		st.analysis = []*policy.Statement{{Kind: policy.KindFunctionCall, Command: "FUNCTION CALL",
			RunTime: []string{fmt.Sprintf("fast-path call of function %d", st.fnOID)}}}
	} else if stage != policy.StageBind {
		sts, err := s.p.analyzer().Analyze(st.sql)
		if err != nil {
			reason := err.Error()
			if ae, ok := err.(*analysis.Error); ok {
				reason = "The gateway cannot analyse this statement: " + ae.Reason + "."
			}
			return policy.Decision{Verdict: policy.Block, Rule: "analysis", Reason: reason}
		}
		if d, refused := parserSettings(sts); refused {
			return d
		}
		st.analysis = sts
	}
	sts, overlay := s.names.resolve(st.analysis, s.info.UpstreamUser)
	pol := s.p.Policy
	if pol == nil {
		return policy.Decision{Verdict: policy.Block, Rule: "no-policy",
			Reason: "The gateway has no policy configured, so it refuses every statement."}
	}
	// The contract lets the policy see q only during the call, so one per
	// session will do.
	q := &s.query
	*q = policy.Query{Session: s.info, Protocol: st.protocol, Stage: stage, Time: time.Now(), SQL: st.sql,
		Statements: sts, StatementName: st.name, Params: params, FunctionOID: st.fnOID, SearchPath: overlay.searchPath}
	if stage == policy.StageBind {
		q.Portal = st.portal
	}
	d, err := pol.Decide(s.ctx, q)
	*q = policy.Query{}
	switch {
	case err != nil:
		s.log.Error("pgwarden: policy failed; statement refused", "err", err, "seq", st.seq)
		return policy.Decision{Verdict: policy.Block, Rule: "policy-error",
			Reason: "The policy could not decide about this statement, so the gateway refuses it."}
	case d.Verdict == policy.Abstain:
		return policy.Decision{Verdict: policy.Block, Rule: "no-decision",
			Reason: "No rule of the policy decided about this statement, so the gateway refuses it."}
	case d.Verdict == policy.Mask || d.Verdict == policy.Approve || d.Verdict > policy.Terminate:
		return policy.Decision{Verdict: policy.Block, Rule: d.Rule,
			Reason: fmt.Sprintf("The policy asked to %v this statement, which this gateway cannot do yet; the statement is refused.", d.Verdict)}
	}
	if d.Verdict == policy.Allow && stage != policy.StageBind {
		s.names = overlay
	}
	return d
}

// parserSettings refuses settings that would make the server read later
// statements differently from the gateway's parser (which reads them as
// UTF-8, with standard_conforming_strings on). This is the gateway's own
// rule; no policy can lift it.
func parserSettings(sts []*policy.Statement) (policy.Decision, bool) {
	for _, st := range sts {
		for s := st; s != nil; s = s.Inner {
			for _, set := range s.Settings {
				if !changesParsing(set) {
					continue
				}
				return policy.Decision{Verdict: policy.Block, Rule: "parser-settings",
					Reason: fmt.Sprintf("Changing %s would make the server read statements differently from the gateway; it is not allowed.", settingName(set))}, true
			}
		}
	}
	return policy.Decision{}, false
}

func changesParsing(set policy.Setting) bool {
	value := strings.ToLower(strings.Trim(set.Value, `'" `))
	switch set.Name {
	case "*":
		return true
	case "standard_conforming_strings":
		return !set.Reset && !(set.Known && (value == "on" || value == "true" || value == "1"))
	case "client_encoding":
		return !set.Reset && !(set.Known && safeClientEncoding(value))
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
func (n sqlNames) resolve(sts []*policy.Statement, upstreamUser string) ([]*policy.Statement, sqlNames) {
	if !changesNames(sts) {
		return sts, n
	}
	out := make([]*policy.Statement, len(sts))
	next := sqlNames{prepared: n.prepared, cursors: n.cursors, searchPath: n.searchPath}
	cloned := false
	own := func() {
		if !cloned {
			next.prepared = cloneMap(n.prepared)
			next.cursors = cloneMap(n.cursors)
			next.searchPath = slices.Clone(n.searchPath)
			cloned = true
		}
	}
	for i, st := range sts {
		out[i] = st
		switch st.Kind {
		case policy.KindExecute:
			c := *st
			c.Inner = preparedInner(st.Name, next.prepared[st.Name])
			c.Writes = c.Writes || c.Inner.Writes
			out[i] = &c
		case policy.KindFetch:
			c := *st
			if cur, ok := next.cursors[st.Name]; ok {
				c.Inner = cur
			} else {
				c.Inner = &policy.Statement{Kind: policy.KindOther, Command: "UNKNOWN CURSOR",
					RunTime: []string{fmt.Sprintf("cursor %q was not declared through the gateway", st.Name)}}
			}
			out[i] = &c
		case policy.KindPrepare:
			own()
			defs := next.prepared[st.Name]
			if len(defs) < maxPrepareCandidates {
				next.prepared[st.Name] = append(slices.Clip(defs), st.Inner)
			} else {
				next.prepared[st.Name] = append(slices.Clip(defs), unknownStatement("too many definitions of "+st.Name))
			}
		case policy.KindDeallocate:
			own()
			if st.Name == "" {
				clear(next.prepared)
			} else {
				delete(next.prepared, st.Name)
			}
		case policy.KindDeclare:
			own()
			next.cursors[st.Name] = st.Inner
		case policy.KindClose:
			own()
			if st.Name == "" {
				clear(next.cursors)
			} else {
				delete(next.cursors, st.Name)
			}
		case policy.KindDiscard:
			own()
			clear(next.prepared)
			clear(next.cursors)
		}
		for _, set := range settingsOf(st) {
			switch {
			case set.Name == "search_path" && set.Known:
				own()
				if next.searchPath != nil {
					for _, schema := range splitSearchPath(set.Value, upstreamUser) {
						if !slices.Contains(next.searchPath, schema) {
							next.searchPath = append(next.searchPath, schema)
						}
					}
				}
			case set.Name == "search_path" && !set.Reset, set.Name == "*":
				// Unknown from now on.
				own()
				next.searchPath = nil
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
func splitSearchPath(v, user string) []string {
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
