package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RuleSet is a declarative policy: the example gateway's `policy:` section
// in YAML, mapped onto the same Go rules (the yaml tags are the keys). Its
// zero value is invalid (Default is required); build it with Policy.
//
// Rules are combined strictest-wins by default: every rule that applies is
// asked, the strictest verdict wins, and Default decides when no rule
// applies. With Combine "first-match" the first rule that applies decides,
// in order.
type RuleSet struct {
	// Default is "allow" or "block": the verdict when no rule applies. It
	// never applies to fast-path function calls, which stay refused unless
	// a rule of kind function-call allows them.
	Default string `yaml:"default"`
	// Combine is "strictest" (the default) or "first-match".
	Combine string `yaml:"combine"`
	// Rules are the rules, in order.
	Rules []RuleSpec `yaml:"rules"`
}

// RuleSpec is one declarative rule: who and when it applies to, what it
// matches, and its verdict. Every condition given must hold; a rule with
// no condition applies to every statement.
type RuleSpec struct {
	// Name names the rule in errors and recordings. Required, unique.
	Name string `yaml:"name"`
	// Verdict is allow, mask, approve, block (the default) or terminate.
	Verdict string `yaml:"verdict"`
	// Reason is what the user reads when the rule refuses.
	Reason string `yaml:"reason"`
	// Suspend, with verdict terminate, keeps the identity's delegation
	// chain out for this long (a Go duration: "30m", "24h").
	Suspend string `yaml:"suspend"`

	// Who: the session's identity.
	Groups        []string `yaml:"groups"`          // in one of these groups
	Subjects      []string `yaml:"subjects"`        // one of these subjects
	Involves      []string `yaml:"involves"`        // one of these subjects anywhere in the delegation chain
	Issuers       []string `yaml:"issuers"`         // issued by one of these
	MinChainDepth *int     `yaml:"min_chain_depth"` // at least this many agents in the chain
	MaxChainDepth *int     `yaml:"max_chain_depth"` // at most this many

	// When: time windows, "HH:MM-HH:MM [ZONE]" (see ParseWindow).
	During  []string `yaml:"during"`  // inside one of these windows
	Outside []string `yaml:"outside"` // outside all of these windows

	// What: the statement.
	Kinds     []string `yaml:"kinds"`     // of one of these kinds (see Kind)
	Tables    []string `yaml:"tables"`    // touching a relation matching one of these patterns
	Functions []string `yaml:"functions"` // calling one of these; "dangerous" stands for DangerousFunctions()
	Settings  []string `yaml:"settings"`  // changing one of these; "protected" stands for ProtectedSettings()
	Writes    bool     `yaml:"writes"`    // that writes
	AllRows   bool     `yaml:"all_rows"`  // an UPDATE or DELETE without WHERE

	// Built-in rules, instead of a verdict on the conditions above (the
	// who and when conditions still restrict them):
	ReadOnly   bool     `yaml:"read_only"`   // ReadOnly{}: refuses every change, sessions start read-only
	OnlyTables []string `yaml:"only_tables"` // OnlyTables(...): refuses relations not listed

	// Masks, with verdict mask: the columns to mask.
	Masks []MaskSpec `yaml:"masks"`

	// Approve, with verdict approve: how the statement is approved.
	Approve *ApproveSpec `yaml:"approve"`
}

// ApproveSpec is how a RuleSpec's approve verdict is approved (see
// ApprovalSpec): durations are Go durations ("5m", "1h").
type ApproveSpec struct {
	Mode              string   `yaml:"mode"`                // hold (default) or defer
	Timeout           string   `yaml:"timeout"`             // hold: the longest wait (default 5m)
	Validity          string   `yaml:"validity"`            // defer: how long an approval may be used (default 1h)
	Uses              int      `yaml:"uses"`                // defer: how many times (default 1)
	Approvers         []string `yaml:"approvers"`           // groups whose members may decide (default: any approver)
	Grant             string   `yaml:"grant"`               // a just-in-time grant of the rule for this long
	AllowSelfApproval bool     `yaml:"allow_self_approval"` // let the requester approve (default false)
}

// spec checks s and returns the ApprovalSpec.
func (s *ApproveSpec) spec(fail func(p, format string, args ...any)) *ApprovalSpec {
	out := &ApprovalSpec{Uses: s.Uses, Approvers: s.Approvers, AllowSelfApproval: s.AllowSelfApproval}
	switch s.Mode {
	case "", "hold":
		out.Mode = Hold
	case "defer":
		out.Mode = Defer
	default:
		fail("approve.mode", "must be hold or defer")
	}
	for _, d := range []struct {
		key, val string
		dst      *time.Duration
	}{{"timeout", s.Timeout, &out.Timeout}, {"validity", s.Validity, &out.Validity}, {"grant", s.Grant, &out.Grant}} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil || v <= 0 {
			fail("approve."+d.key, "must be a positive duration such as 5m or 1h")
		}
		*d.dst = v
	}
	if s.Uses < 0 {
		fail("approve.uses", "must not be negative")
	}
	if out.Mode == Hold && (s.Validity != "" || s.Uses != 0) {
		fail("approve", "validity and uses apply to mode defer")
	}
	if out.Mode == Defer && s.Timeout != "" {
		fail("approve.timeout", "applies to mode hold")
	}
	return out
}

// MaskSpec is a column mask in a RuleSpec.
type MaskSpec struct {
	Column string `yaml:"column"` // schema.table.column
	Masker string `yaml:"masker"` // a masker's name (see package mask)
}

// RuleSetProblem is one thing wrong in a RuleSet.
type RuleSetProblem struct {
	// Path is where, relative to the rule set: "default",
	// "rules[2].kinds[0]".
	Path string
	// Message says what is wrong.
	Message string
}

// RuleSetError lists every problem of a RuleSet.
type RuleSetError struct {
	// Problems are in the order of the rule set.
	Problems []RuleSetProblem
}

// Error lists the problems, separated by semicolons.
func (e *RuleSetError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Path + ": " + p.Message)
	}
	return b.String()
}

// Policy checks the rule set and builds its policy. The error, when not
// nil, is a *RuleSetError naming every problem.
func (rs *RuleSet) Policy() (Policy, error) {
	var problems []RuleSetProblem
	fail := func(path, format string, args ...any) {
		problems = append(problems, RuleSetProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	var def Verdict
	switch rs.Default {
	case "allow":
		def = Allow
	case "block":
		def = Block
	case "":
		fail("default", "is required: allow or block")
	default:
		fail("default", "must be allow or block")
	}
	firstMatch := false
	switch rs.Combine {
	case "", "strictest":
	case "first-match":
		firstMatch = true
	default:
		fail("combine", "must be strictest or first-match")
	}
	var rules []Policy
	seen := map[string]bool{}
	for i, spec := range rs.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		switch {
		case spec.Name == "":
			fail(path+".name", "is required")
		case seen[spec.Name]:
			fail(path+".name", "%q names another rule too", spec.Name)
		}
		seen[spec.Name] = true
		p, ps := spec.build(path)
		problems = append(problems, ps...)
		if p != nil {
			rules = append(rules, p)
		}
	}
	if len(problems) > 0 {
		return nil, &RuleSetError{Problems: problems}
	}
	reason := ""
	if def == Block {
		reason = "No rule allows this statement."
	}
	fallback := Default("default", def, reason)
	if firstMatch {
		return FirstMatch(append(rules, fallback)...), nil
	}
	return FirstMatch(Strictest(rules...), fallback), nil
}

// build turns one spec into a policy.
func (spec RuleSpec) build(path string) (Policy, []RuleSetProblem) {
	var problems []RuleSetProblem
	fail := func(p, format string, args ...any) {
		problems = append(problems, RuleSetProblem{Path: path + "." + p, Message: fmt.Sprintf(format, args...)})
	}
	verdict := Block
	if spec.Verdict != "" {
		v, ok := ParseVerdict(spec.Verdict)
		if !ok {
			fail("verdict", "must be allow, mask, approve, block or terminate")
		}
		verdict = v
	}
	var suspend time.Duration
	if spec.Suspend != "" {
		d, err := time.ParseDuration(spec.Suspend)
		switch {
		case err != nil || d <= 0:
			fail("suspend", "must be a positive duration such as 30m or 24h")
		case verdict != Terminate:
			fail("suspend", "only applies to verdict terminate")
		}
		suspend = d
	}
	var approval *ApprovalSpec
	if spec.Approve != nil {
		if verdict != Approve {
			fail("approve", "only applies to verdict approve")
		}
		approval = spec.Approve.spec(fail)
	}
	if verdict == Mask && len(spec.Masks) == 0 {
		fail("masks", "verdict mask needs at least one column")
	}
	if len(spec.Masks) > 0 && verdict != Mask {
		fail("masks", "only apply to verdict mask")
	}
	var masks []ColumnMask
	for i, m := range spec.Masks {
		if strings.Count(m.Column, ".") != 2 {
			fail(fmt.Sprintf("masks[%d].column", i), "must be schema.table.column")
		}
		if m.Masker == "" {
			fail(fmt.Sprintf("masks[%d].masker", i), "is required")
		}
		masks = append(masks, ColumnMask(m))
	}

	// Who and when.
	var who []Condition
	if len(spec.Groups) > 0 {
		who = append(who, InGroup(spec.Groups...))
	}
	if len(spec.Subjects) > 0 {
		who = append(who, Subject(spec.Subjects...))
	}
	if len(spec.Involves) > 0 {
		who = append(who, Involves(spec.Involves...))
	}
	if len(spec.Issuers) > 0 {
		who = append(who, Issuer(spec.Issuers...))
	}
	if spec.MinChainDepth != nil || spec.MaxChainDepth != nil {
		lo, hi := 0, -1
		if spec.MinChainDepth != nil {
			lo = *spec.MinChainDepth
		}
		if spec.MaxChainDepth != nil {
			hi = *spec.MaxChainDepth
		}
		switch {
		case lo < 0:
			fail("min_chain_depth", "must be 0 or more")
		case spec.MaxChainDepth != nil && hi < 0:
			fail("max_chain_depth", "must be 0 or more")
		case hi >= 0 && hi < lo:
			fail("max_chain_depth", "is below min_chain_depth: no delegation chain would match")
		}
		who = append(who, ChainDepth(lo, hi))
	}
	windows := func(key string, specs []string) []Window {
		var ws []Window
		for i, s := range specs {
			w, err := ParseWindow(s)
			if err != nil {
				fail(fmt.Sprintf("%s[%d]", key, i), "%v", strings.TrimPrefix(err.Error(), "policy: "))
				continue
			}
			ws = append(ws, w)
		}
		return ws
	}
	if ws := windows("during", spec.During); len(spec.During) > 0 {
		who = append(who, During(ws...))
	}
	if ws := windows("outside", spec.Outside); len(spec.Outside) > 0 {
		who = append(who, Not(During(ws...)))
	}

	// What.
	var what []Condition
	if len(spec.Kinds) > 0 {
		var kinds []Kind
		for i, k := range spec.Kinds {
			kind, ok := ParseKind(k)
			if !ok {
				fail(fmt.Sprintf("kinds[%d]", i), "unknown statement kind %q", k)
				continue
			}
			kinds = append(kinds, kind)
		}
		what = append(what, IsKind(kinds...))
	}
	for i, t := range spec.Tables {
		if !validPattern(t) {
			fail(fmt.Sprintf("tables[%d]", i), "must be table, schema.table, schema.* or *.table")
		}
	}
	if len(spec.Tables) > 0 {
		what = append(what, Touches(spec.Tables...))
	}
	if len(spec.Functions) > 0 {
		var names []string
		for _, f := range spec.Functions {
			if f == "dangerous" {
				names = append(names, DangerousFunctions()...)
			} else {
				names = append(names, f)
			}
		}
		what = append(what, Calls(names...))
	}
	if len(spec.Settings) > 0 {
		var names []string
		for _, s := range spec.Settings {
			if s == "protected" {
				names = append(names, ProtectedSettings()...)
			} else {
				names = append(names, strings.ToLower(s))
			}
		}
		what = append(what, ChangesSetting(names...))
	}
	if spec.Writes {
		what = append(what, Writes())
	}
	if spec.AllRows {
		what = append(what, AllRows())
	}

	var p Policy
	switch {
	case spec.ReadOnly && len(spec.OnlyTables) > 0:
		fail("read_only", "a rule is read_only or only_tables, not both")
	case spec.ReadOnly || len(spec.OnlyTables) > 0:
		key := "read_only"
		if !spec.ReadOnly {
			key = "only_tables"
		}
		if len(what) > 0 {
			fail(key, "cannot be combined with kinds, tables, functions, settings, writes or all_rows in one rule")
		}
		if spec.Verdict != "" && verdict != Block {
			fail("verdict", "%s rules refuse (block); leave verdict out", key)
		}
		if spec.ReadOnly {
			p = ReadOnly{}
		} else {
			for i, t := range spec.OnlyTables {
				if !validPattern(t) {
					fail(fmt.Sprintf("only_tables[%d]", i), "must be table, schema.table, schema.* or *.table")
				}
			}
			p = OnlyTables(spec.OnlyTables...)
		}
		p = Named(spec.Name, withReason(p, spec.Reason))
	default:
		cond := Always()
		if len(what) > 0 {
			cond = All(what...)
		}
		p = Rule{Name: spec.Name, When: cond, Verdict: verdict, Reason: spec.Reason, Masks: masks, Suspend: suspend, Approval: approval}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	if len(who) > 0 {
		p = When(All(who...), p)
	}
	return p, nil
}

// withReason replaces the reason of p's decisions when reason is set.
func withReason(p Policy, reason string) Policy {
	if reason == "" {
		return p
	}
	return &reasoned{p: p, reason: reason}
}

type reasoned struct {
	p      Policy
	reason string
}

func (r *reasoned) Decide(ctx context.Context, q *Query) (Decision, error) {
	d, err := r.p.Decide(ctx, q)
	if err == nil && d.Verdict != Abstain {
		d.Reason = r.reason
	}
	return d, err
}

func (r *reasoned) SetupSession(q *Query, s *Setup) { setupOf(r.p, q, s) }

// validPattern reports whether p is a relation pattern BlockTables reads.
func validPattern(p string) bool {
	parts := strings.Split(p, ".")
	return len(parts) <= 2 && !slices.Contains(parts, "")
}
