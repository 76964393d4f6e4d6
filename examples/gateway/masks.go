package main

import (
	"fmt"
	"strings"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
)

// policyConfig is the policy section: a policy.RuleSet, and the masking
// rules that apply whatever the rules decide.
type policyConfig struct {
	policy.RuleSet `yaml:",inline"`
	// Masks are the masked columns and tables (see maskConfig). Empty:
	// nothing is masked.
	Masks []maskConfig `yaml:"masks"`
	// MaskKey keys the hash and digits maskers (at least 16 bytes; use
	// ${VAR}). Required when a mask uses one of them; never logged.
	MaskKey envSecret `yaml:"mask_key"`
}

// maskConfig is one masking rule.
type maskConfig struct {
	// Name names the rule in refusals; default "mask <column or table>".
	Name string `yaml:"name"`
	// Column is schema.table.column; Table is schema.table (every
	// column), or "*" (every column of every result, with detectors).
	// Exactly one.
	Column envString `yaml:"column"`
	Table  envString `yaml:"table"`
	// The masker: method (redact, partial, email, hash, null, digits) and
	// its parameters (keep_first, keep_last, keep_domain).
	mask.MaskerSpec `yaml:",inline"`
	// Detectors, when set, mask only the cells in which one of them finds
	// something: email, card, iban, ssn, phone, jwt, api_key, private_key.
	Detectors []string `yaml:"detectors"`
	// UnlessGroups exempts identities in any of these groups.
	UnlessGroups []string `yaml:"unless_groups"`
	// Inference is strict (the default: statements that filter, join,
	// sort or group by the column are refused) or allow.
	Inference string `yaml:"inference"`
}

// validateMasks checks the policy section's masks.
func (c *config) validateMasks(v *validator) {
	if c.Policy == nil {
		return
	}
	for i, r := range c.Policy.Rules {
		if r.Verdict == "mask" || len(r.Masks) > 0 {
			v.warn(keyPath("policy.rules").index(i), "verdict mask is refused by the gateway, which masks only the columns of policy.masks: every statement this rule matches is refused; declare the columns in policy.masks instead")
		}
	}
	needKey := false
	for i, m := range c.Policy.Masks {
		p := keyPath("policy.masks").index(i)
		if (m.Column == "") == (m.Table == "") {
			v.fail(p, "set exactly one of column (schema.table.column) and table (schema.table)")
		}
		if m.Column != "" && strings.Count(string(m.Column), ".") != 2 {
			v.fail(p.key("column"), "is not schema.table.column")
		}
		if m.Table == "*" && len(m.Detectors) == 0 {
			v.fail(p.key("detectors"), "table \"*\" (every result) needs detectors")
		}
		if m.Table != "" && m.Table != "*" && strings.Count(string(m.Table), ".") != 1 {
			v.fail(p.key("table"), "is not schema.table (or \"*\" for every result)")
		}
		if m.Method == "" {
			v.fail(p.key("method"), "is required: redact, partial, email, hash, null or digits")
		} else if err := m.MaskerSpec.Validate(); err != nil {
			v.fail(p.key("method"), "%v", err)
		}
		needKey = needKey || m.Method == "hash" || m.Method == "digits"
		for j, d := range m.Detectors {
			if _, err := mask.DetectorByName(d); err != nil {
				v.fail(p.key("detectors").index(j), "%v", err)
			}
		}
		if m.Inference != "" && m.Inference != "strict" && m.Inference != "allow" {
			v.fail(p.key("inference"), "must be strict or allow")
		}
	}
	if needKey && len(c.Policy.MaskKey.Reveal()) < 16 {
		v.fail("policy.mask_key", "the hash and digits maskers need a key of at least 16 bytes")
	}
}

// buildMasks returns the masking rules of the policy section (validated
// already).
func buildMasks(cfg *config) (mask.Rules, error) {
	if cfg.Policy == nil {
		return nil, nil
	}
	var rules mask.Rules
	for i, m := range cfg.Policy.Masks {
		masker, err := m.MaskerSpec.Masker([]byte(cfg.Policy.MaskKey.Reveal()))
		if err != nil {
			return nil, fmt.Errorf("policy.masks[%d]: %w", i, err)
		}
		r := mask.Rule{Name: m.Name, Column: string(m.Column), Table: string(m.Table), Masker: masker,
			UnlessGroups: m.UnlessGroups}
		if m.Inference == "allow" {
			r.Inference = mask.AllowInference
		}
		for _, d := range m.Detectors {
			det, err := mask.DetectorByName(d)
			if err != nil {
				return nil, fmt.Errorf("policy.masks[%d]: %w", i, err)
			}
			r.Detectors = append(r.Detectors, det)
		}
		rules = append(rules, r)
	}
	return rules, rules.Validate()
}
