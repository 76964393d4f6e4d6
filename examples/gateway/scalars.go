package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pgwarden/pgwarden/session"
)

// The configuration's leaf values are decoded by the types in this file.
// Each one receives the parsed YAML scalar and expands ${VAR} in it when it
// is a string (see expandEnv): expansion happens after parsing, on one
// value at a time, so an environment variable can never add YAML structure
// (a key, a list, another document) to the file. Numbers and booleans
// written as such in the file have no $ to expand and are used as they are.
//
// Their errors are *yaml.TypeError values, so that the decoder collects all
// of them rather than stopping at the first, in the form
// "line L: column C: message" (see leafError); loadConfig turns the line and
// column into a key path. A message never contains the value itself: it may
// be a password.

// envString is a string in which ${VAR} is expanded.
type envString string

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *envString) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalarText(n)
	if err != nil {
		return err
	}
	*s = envString(v)
	return nil
}

// envSecret is a password: a string in which ${VAR} is expanded, held as a
// session.Secret from the moment it is decoded, so that printing or logging
// the configuration shows REDACTED.
type envSecret struct {
	session.Secret
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *envSecret) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalarText(n)
	if err != nil {
		return err
	}
	s.Secret = session.NewSecret(v)
	return nil
}

// envInt is an integer, written as a number or as a string (after ${VAR}
// expansion) of decimal digits.
type envInt int

// UnmarshalYAML implements yaml.Unmarshaler.
func (i *envInt) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		var v int
		if err := n.Decode(&v); err != nil {
			return leafError(n, "not an integer")
		}
		*i = envInt(v)
		return nil
	}
	v, err := scalarText(n)
	if err != nil {
		return err
	}
	parsed, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return leafError(n, "not an integer")
	}
	*i = envInt(parsed)
	return nil
}

// envBool is a boolean, written as true or false (also as a string, after
// ${VAR} expansion).
type envBool bool

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *envBool) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalarText(n)
	if err != nil {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return leafError(n, "not a boolean (want true or false)")
	}
	return nil
}

// envDuration is a duration in Go syntax (300ms, 10s, 1m30s); a bare 0 is
// allowed. Negative durations are refused.
type envDuration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *envDuration) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalarText(n)
	if err != nil {
		return err
	}
	parsed, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return leafError(n, "invalid duration (use Go syntax such as 10s, 1m or 1h30m)")
	}
	if parsed < 0 {
		return leafError(n, "negative duration")
	}
	*d = envDuration(parsed)
	return nil
}

// envSize is a size in bytes, written as an integer or as a string with a
// unit (see parseSize).
type envSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *envSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalarText(n)
	if err != nil {
		return err
	}
	parsed, err := parseSize(v)
	if err != nil {
		return leafError(n, err.Error())
	}
	*s = envSize(parsed)
	return nil
}

// sizeUnits are the units parseSize accepts, longest first so that "MiB"
// is not read as "B".
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

// parseSize parses a size in bytes: a non-negative integer, optionally
// followed (with or without a space) by B, KiB, MiB or GiB (powers of 1024)
// or KB, MB or GB (powers of 1000). Units are case-sensitive: "kB" and "mb"
// are refused rather than guessed at.
func parseSize(s string) (int64, error) {
	text := strings.TrimSpace(s)
	number, factor := text, int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(text, u.suffix); ok {
			number, factor = strings.TrimSpace(rest), u.factor
			break
		}
	}
	bad := errors.New("invalid size (want bytes as an integer, or an integer with B, KiB, MiB, GiB, KB, MB or GB)")
	if number == "" || strings.ContainsAny(number, "+-") {
		return 0, bad
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil {
		return 0, bad
	}
	if n > math.MaxInt64/factor {
		return 0, errors.New("size too large")
	}
	return n * factor, nil
}

// scalarText returns a scalar's text: for a string, with ${VAR} expanded
// from the environment; for a number or boolean, as written. It refuses
// lists, mappings and values with unknown tags.
func scalarText(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", leafError(n, "expected a single value, not a "+kindName(n.Kind))
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		v, err := expandEnv(n.Value, os.LookupEnv)
		if err != nil {
			return "", leafError(n, err.Error())
		}
		return v, nil
	case "!!int", "!!float", "!!bool":
		return n.Value, nil
	case "!!null":
		return "", nil
	default:
		return "", leafError(n, "unsupported YAML tag "+tag)
	}
}

// kindName names a node kind for error messages.
func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	case yaml.DocumentNode:
		return "document"
	}
	return "scalar"
}

// leafError reports a problem with the value n, in the form loadConfig
// parses back ("line L: column C: message") to find the key path.
func leafError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, msg)}}
}

// expandEnv expands environment variables in s: ${NAME} becomes the value
// of NAME (an error when NAME is not set; an empty value is a value), $$
// becomes a literal $, and any other $ stays as it is. NAME is letters,
// digits and underscores, not starting with a digit. The result is not
// expanded again. Errors name the variable but never quote s, which may be
// a secret.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write $$ for a literal $)")
			}
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				return "", errors.New("invalid environment variable reference ${...}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)")
			}
			v, ok := lookup(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// validEnvName reports whether name is a usable environment variable name.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
