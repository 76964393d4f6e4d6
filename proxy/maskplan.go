package proxy

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgwarden/pgwarden/internal/lineage"
	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
)

// MaskPlan is what the gateway would do with one statement's results for
// an identity, worked out offline from the rules alone (see PlanMasks).
type MaskPlan struct {
	// SQL is the statement's text.
	SQL string
	// Refused, when not nil, is the refusal the client would get.
	Refused *policy.Decision
	// Columns are the result's columns, when the statement returns rows.
	Columns []PlannedColumn
}

// PlannedColumn is one result column of a MaskPlan.
type PlannedColumn struct {
	// Name is the column's name as the statement gives it ("" for an
	// expression without an alias; "*" for the columns of a `*` the plan
	// cannot list offline).
	Name string
	// Rules name the rules whose values the column carries; empty when it
	// carries none and is sent as the server sends it.
	Rules []string
	// Masker says how the column is masked: the rule's masker (its
	// configuration name, such as "email(keep_domain)"), or "redact" for a
	// value computed from masked ones; "" when not masked.
	Masker string
	// Computed is set when the values are computed from masked ones.
	Computed bool
}

// PlanMasks returns, for each statement of sql, what the gateway would do
// with it under rules for an identity in groups: the refusal, or how each
// result column is masked. It needs no database: a relation is known by
// the rules' names only, so views, partitions and inheritance children of
// masked tables, which the gateway finds in the catalog when a session
// starts, are not covered here, and `*` over a masked table lists its
// masked columns and then "*" for the others. Use it to check masks in
// tests and with `pgwarden check`.
func PlanMasks(rules mask.Rules, groups []string, sql string) ([]MaskPlan, error) {
	if err := rules.Validate(); err != nil {
		return nil, err
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("proxy: parsing the statement: %w", err)
	}
	active, _ := activeRules(rules, groups)
	cat := offlineCatalog{rules: rules, active: active}
	var plans []MaskPlan
	for _, raw := range tree.Stmts {
		text := sql
		if len(tree.Stmts) > 1 {
			end := len(sql)
			if raw.StmtLen > 0 {
				end = int(raw.StmtLocation + raw.StmtLen)
			}
			text = strings.TrimSpace(sql[raw.StmtLocation:end])
		}
		plan := lineage.Analyze(raw.Stmt, cat)
		mp := MaskPlan{SQL: text}
		if d, refused := checkMaskPlan(rules, plan); refused {
			mp.Refused = &d
		} else if plan.Returns {
			for _, o := range plan.Outputs {
				pc := PlannedColumn{Name: o.Name, Computed: o.Derived && len(o.Taint) > 0}
				if o.Unknown {
					pc.Name = "*"
				}
				for _, i := range o.Taint {
					pc.Rules = append(pc.Rules, rules[i].RuleName())
				}
				switch {
				case len(o.Taint) == 1 && !o.Derived:
					pc.Masker = maskerName(rules[o.Taint[0]].Masker)
				case len(o.Taint) > 0:
					pc.Masker = "redact"
				}
				mp.Columns = append(mp.Columns, pc)
			}
		}
		plans = append(plans, mp)
	}
	return plans, nil
}

// maskerName names a masker in a plan.
func maskerName(m mask.Masker) string {
	if s, ok := m.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", m)
}

// offlineCatalog knows the masked tables by the rules' names.
type offlineCatalog struct {
	rules  mask.Rules
	active []bool
}

func (c offlineCatalog) Relation(schema, name string) (lineage.Relation, bool) {
	var cols []lineage.Column
	var tableWide lineage.Taint
	found := false
	for i, r := range c.rules {
		s, t, col := r.Target()
		if t != name || (schema != "" && s != schema) {
			continue
		}
		found = true
		if !c.active[i] {
			continue
		}
		if col == "" {
			tableWide = tableWide.Union(lineage.Taint{i})
			continue
		}
		merged := false
		for j := range cols {
			if cols[j].Name == col {
				cols[j].Taint = cols[j].Taint.Union(lineage.Taint{i})
				merged = true
			}
		}
		if !merged {
			cols = append(cols, lineage.Column{Name: col, Taint: lineage.Taint{i}})
		}
	}
	if !found {
		return lineage.Relation{}, false
	}
	for j := range cols {
		cols[j].Taint = cols[j].Taint.Union(tableWide)
	}
	// The columns no rule names: unknown offline, carrying the table-wide
	// rules.
	cols = append(cols, lineage.Column{Unknown: true, Taint: tableWide})
	return lineage.Relation{Columns: cols}, true
}
