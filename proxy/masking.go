package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgwarden/pgwarden/internal/lineage"
	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// sessionMasking is a session's masking state; nil when no rule applies to
// the session's identity.
type sessionMasking struct {
	cat *maskCatalog
	// Frontend relay: the plans of SQL PREPAREd statements and DECLAREd
	// cursors, for EXECUTE and FETCH. A name declared again keeps what
	// both definitions carry (the server may have refused the second).
	prepared map[string]*lineage.Plan
	cursors  map[string]*lineage.Plan
	// active are the rules that apply to the session; stale is set after
	// the session changed the schema (DDL), so that the catalog is read
	// again before the next statement that reads a relation.
	active []bool
	stale  bool
	// ddlInTx is set when the schema changed inside a transaction, whose
	// ROLLBACK would undo it.
	ddlInTx bool
	// Backend relay: the scratch buffer for rewritten rows.
	buf []byte
	// everywhere masks the cells of every result that no column rule
	// masks (AllResults rules); nil when there is none.
	everywhere *cellMask
}

// newSessionMasking returns a session's masking state.
func newSessionMasking(cat *maskCatalog, rules mask.Rules, active []bool) *sessionMasking {
	m := &sessionMasking{cat: cat, prepared: map[string]*lineage.Plan{}, cursors: map[string]*lineage.Plan{}, active: active}
	var all []int
	for i, r := range rules {
		if active[i] && r.AllResults() {
			all = append(all, i)
		}
	}
	switch len(all) {
	case 0:
	case 1:
		r := rules[all[0]]
		m.everywhere = &cellMask{masker: r.Masker, detectors: r.Detectors, passUnreadable: true}
	default:
		m.everywhere = &cellMask{masker: mask.Redact(), passUnreadable: true}
		for _, i := range all {
			m.everywhere.detectors = append(m.everywhere.detectors, rules[i].Detectors...)
		}
	}
	return m
}

// describes reports whether a statement's results are masked, so that the
// gateway must know their columns.
func (m *sessionMasking) describes(st *statement) bool {
	return st.masks != nil || m.everywhere != nil
}

// statisticsRelations hold per-column statistics: most common values and
// histograms of masked columns.
var statisticsRelations = map[string]bool{
	"pg_stats": true, "pg_statistic": true, "pg_stats_ext": true, "pg_stats_ext_exprs": true,
	"pg_statistic_ext_data": true, "pg_statistic_ext": true,
}

// maskRefusal is a statement refused because the gateway cannot mask it
// soundly.
func maskRefusal(rule, format string, args ...any) policy.Decision {
	return policy.Decision{Verdict: policy.Block, Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// relevant reports whether a statement may return, infer or store masked
// values, and so needs its lineage.
func (m *sessionMasking) relevant(a *policy.Statement) bool {
	for x := a; x != nil; x = x.Inner {
		if len(x.RunTime) > 0 {
			return true
		}
		switch x.Kind {
		case policy.KindPrepare, policy.KindExecute, policy.KindDeclare, policy.KindFetch:
			return true
		}
		for _, r := range x.Reads {
			if m.cat.names(r.Name) || statisticsRelations[r.Name] || m.unknown(r) {
				return true
			}
		}
		for _, r := range x.Written {
			if m.cat.names(r.Name) {
				return true
			}
		}
	}
	return false
}

// unknown reports whether r names a relation that did not exist when the
// session's catalog was read: it may be a view over a masked table.
func (m *sessionMasking) unknown(r policy.Relation) bool {
	if r.Catalog || r.Schema == "pg_catalog" || r.Schema == "information_schema" || !m.cat.tables {
		return false
	}
	if r.Schema != "" {
		return !m.cat.known[r.Schema+"."+r.Name]
	}
	return !m.cat.known[r.Name]
}

// unseenCode returns why a statement may run code the gateway cannot see
// into, with masking on: a call of a function or an operator whose name was
// also defined in the database (it may not be the built-in), or a change
// of rows of a relation with user triggers; "" when none.
func (m *sessionMasking) unseenCode(a *policy.Statement) string {
	if !m.cat.tables {
		return ""
	}
	for x := a; x != nil; x = x.Inner {
		for _, f := range x.Functions {
			if m.cat.userCode[f.Name] {
				return "a function named " + f.Name + " is defined in the database besides the built-in one"
			}
		}
		for _, op := range x.Operators {
			if m.cat.userCode[op] {
				return "an operator " + op + " is defined in the database besides the built-in one"
			}
		}
		switch x.Kind {
		case policy.KindInsert, policy.KindUpdate, policy.KindDelete, policy.KindMerge, policy.KindCopy, policy.KindTruncate:
			for _, r := range x.Written {
				key := r.Name
				if r.Schema != "" {
					key = r.Schema + "." + r.Name
				}
				if m.cat.triggered[key] {
					return r.String() + " has triggers"
				}
			}
		}
	}
	return ""
}

// needsCatalog reports whether the catalog must be read again before sts
// are judged: the session changed the schema, or they read a relation the
// catalog does not know.
//
// must is set when the statement cannot be judged without it (the schema
// changed, or an unknown relation); otherwise the catalog is only older
// than maskCatalogMaxAge, and another session may have redefined a view
// to read masked columns: it is read again when the gateway can wait.
func (m *sessionMasking) needsCatalog(sts []*policy.Statement) (need, must bool) {
	if !m.cat.tables {
		return false, false
	}
	if m.stale {
		return true, true // the session changed the schema: maybe functions, triggers, views
	}
	old := time.Since(m.cat.loaded) > maskCatalogMaxAge
	for _, a := range sts {
		for x := a; x != nil; x = x.Inner {
			for _, r := range x.Reads {
				if m.unknown(r) {
					return true, true
				}
				if old && !r.Catalog && r.Schema != "pg_catalog" && r.Schema != "information_schema" {
					need = true
				}
			}
		}
	}
	return need, false
}

// maskCatalogMaxAge bounds how long a session trusts its catalog while it
// reads relations: changes by other sessions (a view redefined over a
// masked column) are seen within it.
const maskCatalogMaxAge = 2 * time.Second

// changesSchema reports whether an allowed statement may change what the
// catalog says: it creates, alters or drops relations (DDL, SELECT INTO,
// CREATE TABLE AS), as opposed to changing rows.
func changesSchema(sts []*policy.Statement) bool {
	for _, a := range sts {
		for x := a; x != nil; x = x.Inner {
			switch x.Kind {
			case policy.KindInsert, policy.KindUpdate, policy.KindDelete, policy.KindMerge, policy.KindCopy, policy.KindTruncate:
				continue
			}
			if len(x.Written) > 0 || x.Kind == policy.KindDDL {
				return true
			}
		}
	}
	return false
}

// reloadMaskCatalog reads the catalog again on the session's connection,
// once the server has answered everything sent before (like the run-time
// barrier). It returns a refusal when it cannot, and errSessionOver when
// the session ended meanwhile.
func (s *clientSession) reloadMaskCatalog() (*policy.Decision, *session.Error) {
	m := s.masking
	cannot := func(why string) (*policy.Decision, *session.Error) {
		d := maskRefusal("mask-new-relation", "Masking applies to this session, and the statement reads a relation created after the gateway last read the catalog (it may be a view over masked columns); %s", why)
		return &d, nil
	}
	if s.pipe.pending() > 0 {
		if !s.pipe.endsWithSync() {
			return cannot("the gateway reads the catalog again once the server has answered what came before: send Sync first.")
		}
		if err := s.uw.Flush(); err != nil {
			s.end(session.EndUpstreamClosed, pgError(session.CodeConnectionFailure, "lost the connection to the database server"))
			return nil, errSessionOver
		}
		s.blocking() // the answer comes through the backend relay
		if !s.pipe.waitEmpty() {
			return nil, errSessionOver
		}
	}
	if s.txStatus.Load() == 'E' {
		return cannot("the transaction is aborted: end it first.")
	}
	queries := catalogQueries(m.cat.rules, m.active)
	vs := make([]*verification, len(queries))
	for i, q := range queries {
		vs[i] = &verification{collect: true, done: make(chan struct{})}
		if err := s.forward(simpleQuery(q), op{kind: opQuery, verify: vs[i]}); err != nil {
			return nil, err
		}
	}
	if err := s.uw.Flush(); err != nil {
		s.end(session.EndUpstreamClosed, pgError(session.CodeConnectionFailure, "lost the connection to the database server"))
		return nil, errSessionOver
	}
	results := make([][][]string, len(vs))
	s.blocking() // the answers come through the backend relay
	for i, v := range vs {
		select {
		case <-v.done:
		case <-s.ctx.Done():
			return nil, errSessionOver
		}
		if v.failed {
			return cannot("the gateway could not read the catalog again.")
		}
		results[i] = v.rows
	}
	m.cat = buildMaskCatalog(m.cat.rules, m.active, results)
	m.stale = false
	return nil, nil
}

// ruleNames names the rules of t for a reason.
func ruleNames(rules mask.Rules, t lineage.Taint) string {
	var names []string
	for _, i := range t {
		names = append(names, rules[i].RuleName())
	}
	return strings.Join(names, ", ")
}

// judgeMasks works out the mask plans of an allowed statement, or refuses
// it: st.masks gets one plan per analysed statement (nil when it returns
// nothing masked).
func (s *clientSession) judgeMasks(st *statement, resolved []*policy.Statement) (policy.Decision, bool) {
	m := s.masking
	st.masks, st.maskTouched = nil, false
	if m.cat.tables && len(st.analysis) > 1 {
		for _, a := range st.analysis[:len(st.analysis)-1] {
			if changesSchema([]*policy.Statement{a}) {
				return maskRefusal("mask-new-relation", "Masking applies to this session: send a statement that changes the schema on its own, not followed by others in the same query string, so that the gateway reads the catalog before judging them."), true
			}
		}
	}
	endsTx := false
	for _, a := range st.analysis {
		if a.Kind == policy.KindTransaction {
			endsTx = true
		}
		if m.cat.tables && a.Kind == policy.KindDDL {
			for _, r := range a.Written {
				if m.cat.names(r.Name) {
					return maskRefusal("mask-ddl", "Masking applies to this session, and the statement changes %s, which holds masked columns: renaming, moving or re-typing them, indexes and constraints over them could move or reveal their values. An identity the masks exempt must do it.", r.String()), true
				}
			}
		}
	}
	if endsTx && m.ddlInTx {
		// A ROLLBACK may undo what the catalog was read after.
		m.stale, m.ddlInTx = true, false
	}
	reload := s.txStatus.Load() != 'E' // nothing but the end of an aborted transaction runs
	onlyTx := true
	for _, a := range st.analysis {
		onlyTx = onlyTx && a.Kind == policy.KindTransaction
	}
	if onlyTx {
		reload = false // COMMIT, ROLLBACK, SAVEPOINT read no relation
	}
	if need, must := m.needsCatalog(st.analysis); need && reload {
		d, err := s.reloadMaskCatalog()
		if err != nil {
			return maskRefusal("mask-new-relation", "The session ended while the gateway read the catalog."), true
		}
		if d != nil && must {
			return *d, true
		}
	}
	for _, a := range resolved { // EXECUTE's Inner is what it runs
		if why := m.unseenCode(a); why != "" {
			return maskRefusal("mask-runtime", "Masking applies to this session, and the statement may run code the gateway cannot see into (%s): it could return masked values unmasked.", why), true
		}
	}
	for i, a := range st.analysis {
		if !m.relevant(a) {
			continue
		}
		for x := a; x != nil; x = x.Inner {
			if len(x.RunTime) > 0 {
				return maskRefusal("mask-runtime", "Masking applies to this session, and the gateway cannot see what this statement reads (%s): it could return masked values unmasked.", strings.Join(x.RunTime, "; ")), true
			}
			for _, r := range x.Reads {
				if statisticsRelations[r.Name] && m.cat.tables {
					return maskRefusal("mask-statistics", "Masking applies to this session: the planner statistics in %s hold values of masked columns.", r.Name), true
				}
				if m.unknown(r) && s.txStatus.Load() == 'T' {
					// Read again inside a transaction whose snapshot may
					// not show what was created since.
					return maskRefusal("mask-new-relation", "Masking applies to this session, and %s is not in the catalog this transaction sees: it may be a view over masked columns created since. Run it in a new transaction.", r.String()), true
				}
			}
		}
		tree, err := pg_query.Parse(a.SQL)
		if err != nil || len(tree.Stmts) != 1 {
			return maskRefusal("mask-lineage", "Masking applies to this session, and the gateway could not parse the statement again to follow its values."), true
		}
		plan := lineage.Analyze(tree.Stmts[0].Stmt, m.cat)
		if d, refused := checkMaskPlan(m.cat.rules, plan); refused {
			return d, true
		}
		if len(plan.Touches) > 0 {
			st.maskTouched = true
			if a.Kind == policy.KindSelect && a.Writes {
				return maskRefusal("mask-flow", "The statement reads masked columns (%s) and changes data: the values could leave through what it changes.", ruleNames(m.cat.rules, plan.Touches)), true
			}
		}
		switch {
		case plan.Prepare != "":
			m.prepared[plan.Prepare] = mergePlans(m.prepared[plan.Prepare], plan)
			continue // PREPARE returns no rows
		case plan.Cursor != "":
			m.cursors[plan.Cursor] = mergePlans(m.cursors[plan.Cursor], plan)
			continue // DECLARE returns no rows
		case plan.Execute != "":
			def := m.prepared[plan.Execute]
			if ps := s.statements[plan.Execute]; ps != nil {
				for c := resolvePrev(ps); c != nil; c = resolvePrev(c.prev) {
					for _, p := range c.masks {
						def = mergePlans(def, p)
					}
				}
			}
			if def == nil {
				continue // not prepared here: the server refuses it
			}
			plan = &lineage.Plan{Returns: true, Outputs: def.Outputs, Touches: def.Touches}
			st.maskTouched = st.maskTouched || len(def.Touches) > 0
		case plan.Fetch != "":
			def, ok := m.cursors[plan.Fetch]
			if !ok {
				return maskRefusal("mask-cursor", "Masking applies to this session, and cursor %q was not declared through the gateway, so it cannot tell what the rows hold.", plan.Fetch), true
			}
			st.maskTouched = st.maskTouched || len(def.Touches) > 0
			if a.Kind == policy.KindFetch && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(a.SQL)), "MOVE") {
				continue // no rows, but its errors may quote values
			}
			plan = &lineage.Plan{Returns: true, Outputs: def.Outputs, Touches: def.Touches}
			st.maskTouched = st.maskTouched || len(def.Touches) > 0
		}
		if !plan.Returns {
			continue
		}
		if st.masks == nil {
			st.masks = make([]*lineage.Plan, len(st.analysis))
		}
		st.masks[i] = plan
	}
	if changesSchema(st.analysis) {
		m.stale = true
		if s.txStatus.Load() != 'I' || !endsTx {
			m.ddlInTx = true
		}
	}
	return policy.Decision{}, false
}

// chainMasked reports whether any definition a Bind of st may bind is
// masked.
func (m *sessionMasking) chainMasked(st *statement) bool {
	if m.everywhere != nil {
		return true
	}
	for c := st; c != nil; c = c.prev {
		if c.masks != nil {
			return true
		}
	}
	return false
}

// judgeMaskedBind checks a Bind of st, with masking on, against the
// catalog as it is when the statement runs, not when it was parsed: a
// schema change (a trigger, a function) may have run in between. It
// returns a refusal, and marks the catalog stale when the Bind runs a
// schema change.
func (s *clientSession) judgeMaskedBind(st *statement) (policy.Decision, bool) {
	m := s.masking
	if !m.cat.tables {
		return policy.Decision{}, false
	}
	if m.stale && s.txStatus.Load() != 'E' {
		d, err := s.reloadMaskCatalog()
		if err != nil {
			return maskRefusal("mask-new-relation", "The session ended while the gateway read the catalog."), true
		}
		if d != nil {
			return *d, true
		}
	}
	sts, _ := s.names.Resolve(st.analysis, s.info.UpstreamUser)
	for _, a := range sts {
		if why := m.unseenCode(a); why != "" {
			return maskRefusal("mask-runtime", "Masking applies to this session, and the statement may run code the gateway cannot see into (%s): it could return masked values unmasked.", why), true
		}
	}
	if changesSchema(st.analysis) {
		m.stale = true
	}
	return policy.Decision{}, false
}

// checkMaskPlan refuses what cannot be masked soundly.
func checkMaskPlan(rules mask.Rules, plan *lineage.Plan) (policy.Decision, bool) {
	if plan.Refusal != "" {
		return maskRefusal("mask-lineage", "Masking applies to this session, and the gateway cannot mask this statement: %s.", plan.Refusal), true
	}
	if len(plan.Flows) > 0 {
		return maskRefusal("mask-flow", "The statement would store values of masked columns (%s) where they would no longer be masked.", ruleNames(rules, plan.Flows)), true
	}
	var strict lineage.Taint
	for _, i := range plan.Inference {
		if rules[i].Inference == mask.Strict {
			strict = append(strict, i)
		}
	}
	if len(strict) > 0 {
		return maskRefusal("mask-inference", "The statement uses masked columns (%s) to filter, join, sort, group or deduplicate rows, which reveals their values.", ruleNames(rules, strict)), true
	}
	if e := plan.CopyOptions.Encoding; plan.Copy && e != "" && !strings.EqualFold(strings.ReplaceAll(e, "-", ""), "utf8") && len(tainted(plan.Outputs)) > 0 {
		return maskRefusal("mask-copy", "COPY of masked columns in an encoding other than UTF8 cannot be masked."), true
	}
	unknown := 0
	for _, o := range plan.Outputs {
		if o.Unknown {
			unknown++
		}
	}
	if unknown > 1 && len(tainted(plan.Outputs)) > 0 {
		return maskRefusal("mask-lineage", "Masking applies to this session, and the gateway cannot line up the masked columns of a result with several * expansions: list the columns."), true
	}
	if plan.Copy && !plan.CopyOptions.CSV && plan.CopyOptions.Null != nil && len(tainted(plan.Outputs)) > 0 {
		return maskRefusal("mask-copy", "COPY of masked columns in text format with a NULL string of your own cannot be masked: a value equal to it would pass as NULL."), true
	}
	if plan.CopyBinary {
		for _, o := range plan.Outputs {
			if len(o.Taint) > 0 {
				return maskRefusal("mask-copy-binary", "COPY in binary format cannot be masked; use text or CSV."), true
			}
		}
	}
	return policy.Decision{}, false
}

// tainted returns what the outputs carry.
func tainted(outs []lineage.Column) lineage.Taint {
	var t lineage.Taint
	for _, o := range outs {
		t = t.Union(o.Taint)
	}
	return t
}

// mergePlans returns a plan whose outputs carry what both plans' do.
func mergePlans(a, b *lineage.Plan) *lineage.Plan {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	out := &lineage.Plan{Returns: a.Returns || b.Returns, Touches: a.Touches.Union(b.Touches)}
	if len(a.Outputs) != len(b.Outputs) {
		var t lineage.Taint
		for _, o := range append(append([]lineage.Column(nil), a.Outputs...), b.Outputs...) {
			t = t.Union(o.Taint)
		}
		out.Outputs = []lineage.Column{{Unknown: true, Taint: t, Derived: true}}
		return out
	}
	for i := range a.Outputs {
		x, y := a.Outputs[i], b.Outputs[i]
		out.Outputs = append(out.Outputs, lineage.Column{Name: x.Name, Taint: x.Taint.Union(y.Taint),
			Derived: x.Derived || y.Derived || (len(x.Taint) > 0 && len(y.Taint) > 0 && !equalTaint(x.Taint, y.Taint)),
			Unknown: x.Unknown || y.Unknown})
	}
	return out
}

func equalTaint(a, b lineage.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// cellMask is how one result column is masked.
type cellMask struct {
	masker    mask.Masker
	detectors []mask.Detector
	typ       uint32
	format    mask.Format
	// passUnreadable lets a cell its detectors cannot read through (a rule
	// for every result); otherwise such a cell is masked whole.
	passUnreadable bool
}

// expandOutputs lines a plan's outputs up with the n columns of a result.
func expandOutputs(outs []lineage.Column, n int) ([]lineage.Column, error) {
	first, last := -1, -1
	for i, o := range outs {
		if o.Unknown {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		if len(outs) != n {
			return nil, fmt.Errorf("the result has %d columns where the gateway expected %d", n, len(outs))
		}
		return outs, nil
	}
	left, right := outs[:first], outs[last+1:]
	middle := n - len(left) - len(right)
	if middle < 0 {
		return nil, fmt.Errorf("the result has %d columns, fewer than the gateway expected", n)
	}
	var mt lineage.Taint
	derived := false
	for _, o := range outs[first : last+1] {
		if !o.Unknown && len(o.Taint) > 0 && first != last {
			return nil, fmt.Errorf("the gateway cannot place a masked column between two * expansions")
		}
		mt, derived = mt.Union(o.Taint), derived || o.Derived
	}
	if first != last && len(mt) > 0 {
		return nil, fmt.Errorf("the gateway cannot place masked columns between two * expansions")
	}
	out := make([]lineage.Column, 0, n)
	out = append(out, left...)
	for range middle {
		out = append(out, lineage.Column{Taint: mt, Derived: derived || len(mt) > 0})
	}
	return append(out, right...), nil
}

// cellsFor builds the masks of a result's columns from the statement's
// plan and the server's description of the result (whose table OID and
// column number name the source of plain column references). format gives
// each column's format. It returns nil when no column is masked.
func (m *sessionMasking) cellsFor(plan *lineage.Plan, fields []pgproto3.FieldDescription, format func(int) int16) ([]*cellMask, error) {
	outs := make([]lineage.Column, len(fields))
	if plan != nil {
		var err error
		if outs, err = expandOutputs(plan.Outputs, len(fields)); err != nil {
			return nil, err
		}
	}
	var cells []*cellMask
	for i, f := range fields {
		col := outs[i]
		if col.Named && len(col.Taint) > 0 && identifier(col.Name) != string(f.Name) {
			// The gateway lined the result up differently from the
			// server: it cannot tell which column to mask.
			return nil, fmt.Errorf("result column %d is %q where the gateway expected %q", i+1, f.Name, col.Name)
		}
		if rel := m.cat.byOID[f.TableOID]; rel != nil && f.TableAttributeNumber > 0 {
			if c, ok := rel.column(int16(f.TableAttributeNumber)); ok {
				col.Taint, col.Derived = col.Taint.Union(c.Taint), col.Derived || c.Derived
			}
		}
		if len(col.Taint) == 0 && m.everywhere == nil {
			continue
		}
		if cells == nil {
			cells = make([]*cellMask, len(fields))
		}
		if len(col.Taint) == 0 {
			c := *m.everywhere
			c.typ, c.format = f.DataTypeOID, mask.Format(format(i))
			cells[i] = &c
			continue
		}
		cells[i] = m.cellFor(col, f.DataTypeOID, mask.Format(format(i)))
	}
	return cells, nil
}

// identifier returns name as the server reports it: cut to 63 bytes
// (NAMEDATALEN - 1) on a character boundary.
func identifier(name string) string {
	if len(name) <= 63 {
		return name
	}
	cut := 63
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut]
}

// cellFor chooses the mask of a column: its rule's masker for a copy of one
// rule's column, and a mask that keeps nothing for anything computed from
// masked values or carrying several rules.
func (m *sessionMasking) cellFor(col lineage.Column, typ uint32, format mask.Format) *cellMask {
	c := &cellMask{typ: typ, format: format}
	if len(col.Taint) == 1 && !col.Derived {
		r := m.cat.rules[col.Taint[0]]
		c.masker, c.detectors = r.Masker, r.Detectors
		return c
	}
	// A computed value (a reversed or encoded one) may hide what a
	// detector looks for: it is masked whole, detectors or not.
	c.masker = keepNothing
	return c
}

// keepNothing masks a value computed from masked ones: mask.Redact, a
// fixed text for text types and NULL otherwise.
var keepNothing = mask.Redact()

// detectText returns the text detectors read in a cell: the value itself
// in text format and for text types, the decimal form of a binary integer
// (appended to scratch); ok is false when they cannot read it.
func (c *cellMask) detectText(v, scratch []byte) (text []byte, ok bool) {
	if c.format == mask.Text || mask.TextLike(c.typ) {
		return v, true
	}
	switch {
	case c.typ == 21 && len(v) == 2:
		return strconv.AppendInt(scratch[:0], int64(int16(binary.BigEndian.Uint16(v))), 10), true
	case c.typ == 23 && len(v) == 4:
		return strconv.AppendInt(scratch[:0], int64(int32(binary.BigEndian.Uint32(v))), 10), true
	case c.typ == 20 && len(v) == 8:
		return strconv.AppendInt(scratch[:0], int64(binary.BigEndian.Uint64(v)), 10), true
	}
	return nil, false
}

// textless are types whose values cannot carry text: bool, date, time,
// timetz, timestamp, timestamptz, interval, uuid, oid, inet, cidr, macaddr.
var textless = map[uint32]bool{16: true, 1082: true, 1083: true, 1266: true, 1114: true, 1184: true,
	1186: true, 2950: true, 26: true, 869: true, 650: true, 829: true}

// passes reports whether a cell goes through unmasked because the
// detectors of its mask find nothing in it.
func (c *cellMask) passes(v []byte) bool {
	if len(c.detectors) == 0 {
		return false
	}
	var scratch [24]byte
	text, ok := c.detectText(v, scratch[:])
	if !ok {
		// Only types that cannot hold text pass unread (a rule for every
		// result); records, arrays, bytea, JSON and numbers in binary are
		// masked whole.
		return c.passUnreadable && textless[c.typ]
	}
	return !detectsAny(c.detectors, text)
}

// detectsAny reports whether any detector finds something in v.
func detectsAny(ds []mask.Detector, v []byte) bool {
	for _, d := range ds {
		if d.Detect(v) {
			return true
		}
	}
	return false
}

// rowDescriptionFields decodes a RowDescription's fields.
func rowDescriptionFields(body []byte) ([]pgproto3.FieldDescription, error) {
	var rd pgproto3.RowDescription
	if err := rd.Decode(body); err != nil {
		return nil, err
	}
	return rd.Fields, nil
}

// maskFailed ends the session because a result could not be masked: fail
// closed, the rows never reach the client.
// The client reads the gateway's own reason, but not a masker's error,
// which could quote the value it failed on: that goes to the log only.
func (s *clientSession) maskFailed(err error) *session.Error {
	s.log.Error("pgwarden: a result could not be masked; session ended", "err", err)
	detail := err.Error()
	if me, ok := errors.AsType[*maskerError](err); ok {
		detail = me.public()
	}
	s.end(session.EndProtocolError, &session.Error{Code: session.CodeInternalError,
		Message: "pgwarden: a result could not be masked, so it was not sent; the session is ended",
		Detail:  detail})
	return errSessionOver
}

// maskerError is a masker's failure on a result column.
type maskerError struct {
	column int
	copy   bool
	err    error
}

func (e *maskerError) Error() string { return e.public() + ": " + e.err.Error() }
func (e *maskerError) Unwrap() error { return e.err }

// public is what the client may read: where, not what.
func (e *maskerError) public() string {
	if e.column == 0 {
		return "A masker or detector failed; the gateway's log has its error."
	}
	where := "column"
	if e.copy {
		where = "COPY column"
	}
	return fmt.Sprintf("The masker of %s %d failed; the gateway's log has its error.", where, e.column)
}

// recoverMasker turns a panic in a Masker or Detector into a maskerError
// in *err (deferred by the functions that call them).
func recoverMasker(err *error) {
	if r := recover(); r != nil {
		*err = &maskerError{err: pluginPanicked("masker or detector", r)}
	}
}

// scrubbedNotice replaces a notice in a transaction that read masked
// columns, keeping its severity and SQLSTATE.
func scrubbedNotice(body []byte) []byte {
	var n pgproto3.NoticeResponse
	severity, code := "NOTICE", "00000"
	if err := n.Decode(body); err == nil {
		if n.Severity != "" {
			severity = n.Severity
		}
		if n.Code != "" {
			code = n.Code
		}
	}
	out, _ := (&pgproto3.NoticeResponse{Severity: severity, SeverityUnlocalized: severity, Code: code,
		Message: "pgwarden: a notice is hidden because this transaction reads masked columns"}).Encode(nil)
	return out
}

// errorWithoutDetail returns the server's error without its detail, hint,
// context and internal query, which may quote values.
func errorWithoutDetail(body []byte, code string) []byte {
	var e pgproto3.ErrorResponse
	if err := e.Decode(body); err != nil {
		return scrubbedError(code)
	}
	e.Detail, e.Hint, e.Where, e.InternalQuery, e.InternalPosition = "", "", "", "", 0
	out, err := e.Encode(nil)
	if err != nil {
		return scrubbedError(code)
	}
	return out
}

// scrubbedError replaces a server error about a statement that reads masked
// columns: its message or detail may quote a masked value (a failed cast
// echoes it).
func scrubbedError(code string) []byte {
	return appendError(nil, severityError, &session.Error{Code: code,
		Message: "pgwarden: the statement failed; the server's message is hidden because the statement reads masked columns",
		Hint:    "SQLSTATE " + code + " says what went wrong."})
}

// nextResult moves a Query on to its next statement's result.
func (o *op) nextResult() {
	o.result++
	o.cells, o.cellsBuilt, o.copyOut = nil, false, nil
}

// planOf returns the mask plan of o's current result, or nil.
func (o *op) planOf() *lineage.Plan {
	st := o.stmt
	if st == nil {
		return nil
	}
	i := 0
	if o.kind == opQuery {
		i = o.result
	}
	if i >= len(st.masks) {
		return nil
	}
	return st.masks[i]
}

// copyOutStarted prepares the masks of a COPY TO STDOUT from its
// CopyOutResponse.
func (s *clientSession) copyOutStarted(o *op, body []byte) *session.Error {
	o.copyOut = nil
	plan := o.planOf()
	if plan == nil && s.masking.everywhere != nil {
		plan = &lineage.Plan{Copy: true, Outputs: []lineage.Column{{Unknown: true}}}
	}
	if plan == nil || !plan.Copy {
		return nil
	}
	if len(body) < 3 {
		return upstreamViolation("malformed CopyOutResponse")
	}
	if body[0] != 0 {
		return s.maskFailed(fmt.Errorf("a masked COPY in binary format"))
	}
	n := int(int16(binary.BigEndian.Uint16(body[1:])))
	if n < 0 || len(body) != 3+2*n {
		return upstreamViolation("malformed CopyOutResponse")
	}
	cm, err := s.masking.newCopyMask(plan, n)
	if err != nil {
		return s.maskFailed(err)
	}
	o.copyOut = cm
	return nil
}

// maskCopyRow returns the CopyData m as the client may see it.
func (s *clientSession) maskCopyRow(o *op, m wire.Message) ([]byte, *session.Error) {
	out, n, err := o.copyOut.row(s.masking.buf, m.Body)
	if err != nil {
		return nil, s.maskFailed(err)
	}
	s.masking.buf = out
	s.tel.masked += int64(n) // telemetry
	return out, nil
}

// described stores the server's answer to the gateway's own Describe of a
// masked statement (fields nil for NoData) and drops it.
func (s *clientSession) described(o *op, body []byte) *session.Error {
	st := o.describes
	if body != nil {
		fields, err := rowDescriptionFields(body)
		if err != nil {
			return upstreamViolation("malformed RowDescription: %v", err)
		}
		st.rowDesc = fields
	}
	st.described = true
	s.pop()
	return nil
}

// queryResult prepares the masks of a simple Query's next result from its
// RowDescription (whose format codes are the result's).
func (s *clientSession) queryResult(o *op, body []byte) *session.Error {
	o.cells, o.cellsBuilt = nil, true
	plan := o.planOf()
	if plan == nil && s.masking.everywhere == nil {
		return nil
	}
	fields, err := rowDescriptionFields(body)
	if err != nil {
		return upstreamViolation("malformed RowDescription: %v", err)
	}
	cells, err := s.masking.cellsFor(plan, fields, func(i int) int16 { return fields[i].Format })
	if err != nil {
		return s.maskFailed(err)
	}
	o.cells = cells
	return nil
}

// maskRow returns the DataRow m masked, and true, when its result has
// masked columns; false when the row goes as it is.
func (s *clientSession) maskRow(o *op, m wire.Message) ([]byte, bool, *session.Error) {
	if !o.cellsBuilt && o.kind == opExecute && o.stmt == nil {
		// A portal the gateway did not bind: a SQL cursor run through the
		// protocol. What its rows hold is unknown.
		return nil, false, s.maskFailed(fmt.Errorf("rows of a portal the gateway did not bind (a SQL cursor?)"))
	}
	if !o.cellsBuilt {
		o.cellsBuilt = true
		if plan := o.planOf(); o.kind == opExecute && o.stmt != nil && (plan != nil || s.masking.everywhere != nil) {
			st := o.stmt
			if !st.described {
				return nil, false, s.maskFailed(fmt.Errorf("no description of a masked statement's result"))
			}
			cells, err := s.masking.cellsFor(plan, st.rowDesc, func(i int) int16 { return resultFormat(o.formats, i) })
			if err != nil {
				return nil, false, s.maskFailed(err)
			}
			o.cells = cells
		}
	}
	if o.cells == nil {
		return nil, false, nil
	}
	out, n, err := maskDataRow(s.masking.buf, m.Body, o.cells)
	if err != nil {
		if errors.Is(err, errBadDataRow) {
			return nil, false, upstreamViolation("%v", err)
		}
		return nil, false, s.maskFailed(err)
	}
	s.masking.buf = out
	s.tel.masked += int64(n) // telemetry
	return out, true, nil
}
