package mask

import (
	"errors"
	"fmt"
	"strings"
)

// Format is the wire format of a result column: text or binary, as the
// client asked for it in Bind (the simple protocol is always text).
type Format int16

// The two result formats of the PostgreSQL protocol.
const (
	Text   Format = 0
	Binary Format = 1
)

// Cell is one non-NULL value of a result column, exactly as the server sent
// it: Value is in Format, for a column of type Type (a pg_type OID). The
// proxy never hands a NULL to a Masker (NULL stays NULL).
type Cell struct {
	Type   uint32
	Format Format
	Value  []byte
}

// Masker masks one value.
//
// Mask appends the masked value to dst and returns the extended slice, or
// reports null when the masked value is SQL NULL (then out is ignored).
// The contract (see the package documentation):
//   - The result is valid for c.Type in c.Format (the client must be able to
//     decode it), or null. A masker that cannot produce a valid value of a
//     type returns null for it, never the input.
//   - The result never contains the input, or a part of it, beyond what the
//     masker's documentation says it keeps (Partial keeps its N leading and
//     trailing characters; Email may keep the domain).
//   - out is dst with the masked value appended.
//   - An error means the value could not be masked: the proxy never sends
//     c.Value; it ends the session (FATAL XX000, the error's text in the
//     detail), so the error must not quote the value or a key.
//   - Mask is called from many sessions at once, must not block, and must
//     not keep c.Value or dst after it returns.
type Masker interface {
	// Mask masks the value of c, appending it to dst.
	Mask(dst []byte, c Cell) (out []byte, null bool, err error)
}

// MaskerFunc adapts a function to a Masker.
type MaskerFunc func(dst []byte, c Cell) ([]byte, bool, error)

// Mask calls f.
func (f MaskerFunc) Mask(dst []byte, c Cell) ([]byte, bool, error) { return f(dst, c) }

// Detector finds sensitive content in a value (a text cell, or the text of
// a COPY field).
//
// Detect reports whether b contains what the detector looks for anywhere in
// it. The contract: Detect runs in time linear in len(b) (no backtracking),
// allocates nothing, never panics on any input (b is untrusted: invalid
// UTF-8, any length), and is safe for concurrent use.
type Detector interface {
	// Name is the detector's name, as configuration spells it ("email",
	// "card", ...).
	Name() string
	// Detect reports whether b contains what the detector looks for.
	Detect(b []byte) bool
}

// Inference says whether a statement may use a masked column where its
// values decide the result without appearing in it: WHERE, JOIN
// conditions, ORDER BY, GROUP BY, DISTINCT, window partitions.
type Inference uint8

const (
	// Strict (the default) refuses such statements: `WHERE email LIKE
	// 'a%'` reveals the masked value one question at a time.
	Strict Inference = iota
	// AllowInference accepts them: the owner accepts that values can be
	// inferred, and only wants them out of the result.
	AllowInference
)

// Rule masks a column, or every column of a table, for everyone except the
// members of UnlessGroups.
type Rule struct {
	// Name names the rule in refusals and recordings; defaults to the
	// column or table.
	Name string
	// Column is "schema.table.column"; Table is "schema.table" for every
	// column of the table, or "*" for every column of every result (which
	// needs Detectors). Exactly one is set. Names are compared as
	// PostgreSQL compares unquoted identifiers' folded forms: write them as
	// the catalog spells them (lower case unless created quoted).
	Column string
	Table  string
	// Masker masks the values. Required.
	Masker Masker
	// Detectors, when set, restrict the rule to the cells in which one of
	// them finds something; the other cells pass unchanged. Detectors read
	// a cell's text: any cell in text format, and text types in binary
	// format; a cell of another type in binary format is masked whole.
	Detectors []Detector
	// UnlessGroups exempts identities in any of these groups.
	UnlessGroups []string
	// Inference is Strict unless the owner accepts inference.
	Inference Inference
}

// AllResults reports whether the rule applies to every result (Table "*").
func (r Rule) AllResults() bool { return r.Column == "" && r.Table == "*" }

// Target returns the rule's schema, table and column (empty for a table
// rule; all empty for an AllResults rule).
func (r Rule) Target() (schema, table, column string) {
	name := r.Column
	if name == "" {
		name = r.Table
	}
	parts := strings.Split(name, ".")
	switch {
	case r.Column != "" && len(parts) == 3:
		return parts[0], parts[1], parts[2]
	case r.Column == "" && len(parts) == 2:
		return parts[0], parts[1], ""
	}
	return "", "", ""
}

// RuleName is Name, or the column or table when Name is empty.
func (r Rule) RuleName() string {
	switch {
	case r.Name != "":
		return r.Name
	case r.Column != "":
		return "mask " + r.Column
	case r.AllResults():
		return "mask every result"
	}
	return "mask " + r.Table
}

// Exempt reports whether an identity in groups escapes the rule.
func (r Rule) Exempt(groups []string) bool {
	for _, g := range groups {
		for _, u := range r.UnlessGroups {
			if g == u {
				return true
			}
		}
	}
	return false
}

// Rules is a set of masking rules. The zero value masks nothing.
type Rules []Rule

// Validate checks every rule: exactly one of Column ("schema.table.column")
// and Table ("schema.table"), each part non-empty, and a Masker.
func (rs Rules) Validate() error {
	var errs []error
	for i, r := range rs {
		if (r.Column == "") == (r.Table == "") {
			errs = append(errs, fmt.Errorf("mask rule %d: set exactly one of column and table", i+1))
			continue
		}
		s, t, c := r.Target()
		if r.AllResults() {
			if len(r.Detectors) == 0 {
				errs = append(errs, fmt.Errorf("mask rule %d (%s): a rule for every result needs detectors", i+1, r.RuleName()))
			}
		} else if s == "" || t == "" || (r.Column != "" && c == "") {
			errs = append(errs, fmt.Errorf("mask rule %d: %q is not schema.table.column or schema.table", i+1, r.Column+r.Table))
		}
		if r.Masker == nil {
			errs = append(errs, fmt.Errorf("mask rule %d (%s): no masker", i+1, r.RuleName()))
		}
		if r.Inference > AllowInference {
			errs = append(errs, fmt.Errorf("mask rule %d (%s): unknown inference mode", i+1, r.RuleName()))
		}
	}
	return errors.Join(errs...)
}
