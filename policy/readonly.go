package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ReadOnly refuses every statement that can change anything, and starts
// sessions read-only on the server too, so the guarantee holds twice: on
// the parse tree, and in the server (default_transaction_read_only), with
// every way back refused: SET and RESET of the read-only settings, SET
// SESSION CHARACTERISTICS, BEGIN/SET TRANSACTION READ WRITE, set_config(),
// RESET ALL and DISCARD ALL. It abstains on everything else. Its zero
// value is the strict rule.
//
// The server-side half applies to the whole session, whatever rule sits
// before ReadOnly in a combinator: a write another rule sends for
// approval (Approve) and a person approves then fails on the server
// (SQLSTATE 25006). To combine "read only" with approved writes, use the
// parse-tree half alone, Func(ReadOnly{}.Decide), and let the database
// role's grants be the server-side layer (examples/agent does this).
type ReadOnly struct {
	// AllowRunTime lets through statements whose effect is decided at run
	// time (calls to the database's own functions, SQL-running built-ins):
	// the server's read-only mode still refuses their writes, but not what
	// they reach outside the database (dblink, untrusted languages). DO and
	// CALL stay refused.
	AllowRunTime bool
}

// Decide refuses, under the rule "read-only", statements that write, lock
// rows, run code the gateway cannot see, or leave read-only mode.
func (r ReadOnly) Decide(_ context.Context, q *Query) (Decision, error) {
	block := func(format string, args ...any) (Decision, error) {
		return Decision{Verdict: Block, Rule: "read-only", Reason: "This session is read-only: " + fmt.Sprintf(format, args...)}, nil
	}
	for _, st := range q.Statements {
		for s := st; s != nil; s = s.Inner {
			if s.Kind == KindDo || s.Kind == KindCall || s.Kind == KindLoad {
				return block("%s runs code the gateway cannot see.", s.Command)
			}
		}
		// Writes and Locks count the nested statements that run (not the
		// DELETE of an EXPLAIN without ANALYZE).
		switch {
		case st.Writes:
			return block("%s changes data.", st.Command)
		case st.Locks:
			return block("%s takes locks for writing.", st.Command)
		}
		for s := st; s != nil; s = s.Inner {
			switch {
			case s.Kind == KindFunctionCall:
				return block("fast-path function calls are not allowed.")
			case s.Kind == KindNotify || slices.ContainsFunc(s.Functions, func(f Function) bool { return f.Builtin && f.Name == "pg_notify" }):
				return block("notifications are not allowed.")
			case len(s.RunTime) > 0 && !r.AllowRunTime:
				return block("the gateway cannot see what this statement does (%s).", s.RunTime[0])
			}
			for _, set := range s.Settings {
				if escapesReadOnly(set) {
					return block("%s of %s is not allowed.", set.Via, settingLabel(set.Name))
				}
			}
		}
	}
	return Decision{}, nil
}

// SetupSession asks that the upstream session start read-only.
func (r ReadOnly) SetupSession(_ *Query, s *Setup) { s.ReadOnly = true }

// escapesReadOnly reports whether a setting change could leave read-only
// mode.
func escapesReadOnly(s Setting) bool {
	switch s.Name {
	case "all", "*":
		return true
	case "transaction_read_only", "default_transaction_read_only":
		return s.Reset || !s.Known || !truthy(s.Value)
	}
	return false
}

// BlockSettings refuses statements that change one of the named settings
// (SET, RESET, set_config, BEGIN and SET TRANSACTION options), and those
// that change settings whose name is only known at run time or reset them
// all (RESET ALL, DISCARD ALL). It also refuses every statement of a
// session whose startup packet set one of them (see StartupSettings). See
// ProtectedSettings for a default list.
func BlockSettings(names ...string) Policy {
	return Func(func(_ context.Context, q *Query) (Decision, error) {
		if set, ok := startupSetting(q.Session, names); ok {
			return Decision{Verdict: Block, Rule: "block-settings",
				Reason: fmt.Sprintf("This session changed %s when it started (%s), which is not allowed.", set.Name, set.Via)}, nil
		}
		for _, st := range q.Statements {
			for s := st; s != nil; s = s.Inner {
				for _, set := range s.Settings {
					if set.Name == "*" || set.Name == "all" || slices.Contains(names, set.Name) {
						return Decision{Verdict: Block, Rule: "block-settings",
							Reason: fmt.Sprintf("Changing %s (%s) is not allowed.", settingLabel(set.Name), set.Via)}, nil
					}
				}
			}
		}
		return Decision{}, nil
	})
}

func settingLabel(name string) string {
	switch name {
	case "*":
		return "a setting named at run time"
	case "all":
		return "every setting"
	}
	return name
}

// ProtectedSettings returns the settings that change who the session acts
// as, how later statements are read, or the session's read-only mode: a
// fresh copy.
func ProtectedSettings() []string {
	return []string{"role", "session_authorization", "default_transaction_read_only",
		"transaction_read_only", "standard_conforming_strings", "backslash_quote", "client_encoding",
		"session_replication_role", "row_security", "lo_compat_privileges"}
}

// truthy reports whether a setting value means true the way PostgreSQL's
// boolean parser reads it.
func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "t", "yes", "y", "1", "tr", "tru", "ye":
		return true
	}
	return false
}
