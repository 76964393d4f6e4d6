package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// problem is one thing wrong with a configuration file.
type problem struct {
	// Line is the 1-based line the problem is on; 0 when unknown.
	Line int
	// Path is the key path, such as auth.users[0].password; empty when
	// unknown.
	Path string
	// Err says what is wrong, and may wrap the cause (such as
	// fs.ErrNotExist for a missing certificate file). Its message never
	// contains a secret.
	Err error
}

// String formats p as "line L: PATH: MSG", leaving out what is unknown.
func (p problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Err.Error())
	return b.String()
}

// configError is everything wrong with a configuration file.
type configError struct {
	File     string
	Problems []problem
}

// Error returns "config FILE: PROBLEM", with one problem per line when
// there are several.
func (e *configError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("config %s: %s", e.File, e.Problems[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problems:", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns the problems' errors, for errors.Is and errors.As.
func (e *configError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p.Err
	}
	return errs
}

// keyPath names a place in the configuration, as auth.users[0].password
// (list indexes count from 0).
type keyPath string

// key returns the path of the key k inside p.
func (p keyPath) key(k string) keyPath {
	if p == "" {
		return keyPath(k)
	}
	return p + "." + keyPath(k)
}

// index returns the path of the i-th item of the list at p.
func (p keyPath) index(i int) keyPath {
	return p + keyPath("["+strconv.Itoa(i)+"]")
}

// parent returns the path that contains p, and false for a top-level key.
func (p keyPath) parent() (keyPath, bool) {
	s := string(p)
	cut := max(strings.LastIndexByte(s, '.'), strings.LastIndexByte(s, '['))
	if cut <= 0 {
		return "", false
	}
	return keyPath(s[:cut]), true
}

// locator maps key paths to lines and back, from the parsed document.
type locator struct {
	lines   map[keyPath]int      // path -> line of its key (or list item)
	byValue map[[2]int]keyPath   // line, column of a value -> its path
	keys    map[int][]locatedKey // line -> the keys written on it
}

// locatedKey is a mapping key and its path.
type locatedKey struct {
	name string
	path keyPath
}

// newLocator indexes the document root (nil for an empty file).
func newLocator(root *yaml.Node) *locator {
	l := &locator{
		lines:   map[keyPath]int{},
		byValue: map[[2]int]keyPath{},
		keys:    map[int][]locatedKey{},
	}
	if root != nil && root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		l.walk(root.Content[0], "", 0)
	}
	return l
}

// walk indexes n, found at path p.
func (l *locator) walk(n *yaml.Node, p keyPath, depth int) {
	if n == nil || depth > 64 {
		return
	}
	if n.Kind == yaml.AliasNode {
		// An alias's values are written elsewhere; point at the alias.
		return
	}
	if p != "" {
		if _, seen := l.byValue[[2]int{n.Line, n.Column}]; !seen {
			l.byValue[[2]int{n.Line, n.Column}] = p
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := p.key(k.Value)
			if _, dup := l.lines[kp]; !dup {
				l.lines[kp] = k.Line
			}
			l.keys[k.Line] = append(l.keys[k.Line], locatedKey{name: k.Value, path: kp})
			l.walk(v, kp, depth+1)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			ip := p.index(i)
			l.lines[ip] = item.Line
			l.walk(item, ip, depth+1)
		}
	}
}

// line returns the line of p, or of the closest enclosing key that is in
// the file when p itself is not (a missing key is reported where its
// section is); 0 when nothing is.
func (l *locator) line(p keyPath) int {
	for {
		if line, ok := l.lines[p]; ok {
			return line
		}
		parent, ok := p.parent()
		if !ok {
			return 0
		}
		p = parent
	}
}

// problemAt returns a problem about the key path p, with its line; format
// and args make its error, as for fmt.Errorf (so %w wraps).
func (l *locator) problemAt(p keyPath, format string, args ...any) problem {
	return problem{Line: l.line(p), Path: string(p), Err: fmt.Errorf(format, args...)}
}

var (
	// yamlLineRE matches the errors yaml.v3 and leafError produce.
	yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (?:column (\d+): )?(.*)$`)
	// fieldRE finds the key in yaml.v3's unknown or duplicate field errors.
	fieldRE = regexp.MustCompile(`^(?:field (\S+) (?:not found|already set) in type|mapping key "([^"]*)" already defined)`)
)

// decodeProblems turns an error from the YAML parser or decoder into
// problems with key paths, removing the value excerpts yaml.v3 puts in its
// type errors (they could be part of a password).
func (l *locator) decodeProblems(err error) []problem {
	var msgs []string
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]problem, 0, len(msgs))
	for _, msg := range msgs {
		out = append(out, l.decodeProblem(msg))
	}
	return out
}

// decodeProblem parses one yaml.v3 error message.
func (l *locator) decodeProblem(msg string) problem {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return problem{Err: errors.New(strings.TrimPrefix(msg, "yaml: "))}
	}
	line, _ := strconv.Atoi(m[1])
	text := plainTypeError(redactValue(m[3]))
	p := problem{Line: line, Err: errors.New(text)}
	if m[2] != "" {
		col, _ := strconv.Atoi(m[2])
		p.Path = string(l.byValue[[2]int{line, col}])
		return p
	}
	keys := l.keys[line]
	if f := fieldRE.FindStringSubmatch(text); f != nil {
		name := f[1] + f[2]
		var named []locatedKey
		for _, k := range keys {
			if k.name == name {
				named = append(named, k)
			}
		}
		keys = named
		switch {
		case strings.Contains(text, " not found in type"):
			p.Err = fmt.Errorf("unknown key %s (see the YAML reference)", name)
		case strings.Contains(text, " already set in type"):
			p.Err = fmt.Errorf("key %s is set twice", name)
		}
	}
	switch {
	case len(keys) == 1:
		p.Path = string(keys[0].path)
	case len(keys) > 1:
		// Several keys on one line (a flow mapping): name the innermost
		// mapping, when its keys are all in one.
		depth := func(k locatedKey) int { return strings.Count(string(k.path), ".") + strings.Count(string(k.path), "[") }
		deepest := slices.MaxFunc(keys, func(a, b locatedKey) int { return depth(a) - depth(b) })
		keys = slices.DeleteFunc(slices.Clone(keys), func(k locatedKey) bool { return depth(k) != depth(deepest) })
		parent, ok := keys[0].path.parent()
		for _, k := range keys[1:] {
			if pk, _ := k.path.parent(); pk != parent {
				ok = false
			}
		}
		if ok {
			p.Path = string(parent)
		}
	}
	return p
}

// goTypeWords names the Go types of yaml.v3's type errors for people.
var goTypeWords = map[string]string{
	"int": "an integer", "int64": "an integer", "int32": "an integer", "uint": "an integer", "uint16": "an integer", "uint32": "an integer", "uint64": "an integer",
	"bool": "true or false", "string": "text", "float64": "a number", "time.Duration": "a duration such as 30s",
}

// yamlTagWords names YAML's tags for people.
var yamlTagWords = map[string]string{
	"!!str": "text", "!!int": "an integer", "!!bool": "true or false", "!!float": "a number",
	"!!map": "a mapping", "!!seq": "a list", "!!null": "nothing",
}

// plainTypeError rewords yaml.v3's "cannot unmarshal !!str into int" as
// "must be an integer, not text"; other messages are returned unchanged.
func plainTypeError(msg string) string {
	rest, ok := strings.CutPrefix(msg, "cannot unmarshal ")
	if !ok {
		return msg
	}
	tag, into, ok := strings.Cut(rest, " into ")
	if !ok {
		return msg
	}
	want, ok := goTypeWords[into]
	switch {
	case ok:
	case strings.HasPrefix(into, "[]"):
		want = "a list"
	case strings.HasPrefix(into, "map[") || strings.HasSuffix(into, "Config") || strings.HasSuffix(into, "Spec") || strings.HasSuffix(into, "RuleSet"):
		want = "a mapping"
	default:
		return msg
	}
	got := yamlTagWords[tag]
	if got == "" {
		return "must be " + want
	}
	return "must be " + want + ", not " + got
}

// redactValue removes the value excerpt from a yaml.v3 type error:
// "cannot unmarshal !!str `hunter2` into int" becomes
// "cannot unmarshal !!str into int".
func redactValue(msg string) string {
	rest, ok := strings.CutPrefix(msg, "cannot unmarshal ")
	if !ok {
		return msg
	}
	tag, _, _ := strings.Cut(rest, " ")
	into := strings.LastIndex(rest, " into ")
	if into < 0 {
		return "cannot unmarshal " + tag
	}
	return "cannot unmarshal " + tag + rest[into:]
}
