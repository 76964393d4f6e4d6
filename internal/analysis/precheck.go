package analysis

import "fmt"

// Limits bound what the analyzer hands to the parser. libpg_query runs
// in C: very deep trees overflow its stack and kill the process (not a Go
// panic), and huge statements take seconds to parse, so both are checked
// on the raw text first.
type Limits struct {
	// MaxBytes is the longest SQL text analysed; 0 means 1 MiB.
	MaxBytes int
	// MaxDepth is the deepest parenthesis nesting; 0 means 256.
	MaxDepth int
	// MaxTokens is the most keywords, identifiers and operator characters
	// in one text; 0 means 5000. Each may add a level to the parse tree
	// (a+b+c+..., x::int::int..., a UNION b UNION c..., t JOIN t JOIN
	// t...: trees as deep as they are long), while literals, commas and
	// parentheses (counted apart) do not, so long lists of values pass.
	MaxTokens int
}

func (l Limits) maxBytes() int  { return orDefault(l.MaxBytes, 1<<20) }
func (l Limits) maxDepth() int  { return orDefault(l.MaxDepth, 256) }
func (l Limits) maxTokens() int { return orDefault(l.MaxTokens, 5000) }

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// precheck scans sql the way PostgreSQL's lexer would, skipping comments
// and literals (see skipNonCode), and
// refuses texts over the limits. It errs on the side of refusing: a
// construct it does not understand is counted as if it were code.
func (l Limits) precheck(sql string) error {
	if len(sql) > l.maxBytes() {
		return &Error{Reason: fmt.Sprintf("the statement is %d bytes long; the gateway analyses at most %d", len(sql), l.maxBytes())}
	}
	maxDepth, maxTokens := l.maxDepth(), l.maxTokens()
	depth, tokens := 0, 0
	tooMany := func() error {
		return &Error{Reason: fmt.Sprintf("the statement has more than %d keywords, names and operators", maxTokens)}
	}
	for i := 0; i < len(sql); {
		if end, kind := skipNonCode(sql, i); kind != notSkipped {
			i = end
			if kind == quotedIdentifier {
				// A quoted identifier is a name.
				if tokens++; tokens > maxTokens {
					return tooMany()
				}
			}
			continue
		}
		c := sql[i]
		switch {
		case c == '(' || c == '[':
			depth++
			if depth > maxDepth {
				return &Error{Reason: fmt.Sprintf("the statement nests parentheses more than %d deep", maxDepth)}
			}
			i++
		case c == ')' || c == ']':
			if depth > 0 {
				depth--
			}
			i++
		case isOperator(c) && isLiteralPunctuation(sql, i):
			// The point of 12.50, the sign of -1 in a list: parts of a
			// literal, not levels of a tree.
			i++
		case isOperator(c):
			// Every character counts: the lexer may split a run of them
			// into one token each ("-+-+"), and a comment may start inside
			// a run ("+/*"), which ends it.
			for i < len(sql) && isOperator(sql[i]) {
				if (sql[i] == '/' && i+1 < len(sql) && sql[i+1] == '*') || (sql[i] == '-' && i+1 < len(sql) && sql[i+1] == '-') {
					break
				}
				i++
				if tokens++; tokens > maxTokens {
					return tooMany()
				}
			}
		case isIdentStart(c):
			start := i
			for i < len(sql) && isIdent(sql[i]) {
				i++
			}
			if isLiteralKeyword(sql[start:i]) {
				continue
			}
			if tokens++; tokens > maxTokens {
				return tooMany()
			}
		default:
			i++
		}
	}
	return nil
}

// What skipNonCode skipped.
const (
	notSkipped = iota
	comment
	stringLiteral
	quotedIdentifier
)

// skipNonCode reports whether a comment, a string literal (plain, E”,
// U&”, B”, X”, dollar-quoted) or a quoted identifier starts at i, the
// way PostgreSQL's lexer reads them (with standard_conforming_strings on),
// and returns the index after it.
func skipNonCode(sql string, i int) (int, int) {
	c := sql[i]
	switch {
	case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
		// A comment runs to the end of the line; the lexer ends it at \n
		// or \r.
		i += 2
		for i < len(sql) && sql[i] != '\n' && sql[i] != '\r' {
			i++
		}
		return i, comment
	case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
		// Block comments nest.
		i += 2
		for n := 1; n > 0 && i < len(sql); {
			switch {
			case sql[i] == '/' && i+1 < len(sql) && sql[i+1] == '*':
				n++
				i += 2
			case sql[i] == '*' && i+1 < len(sql) && sql[i+1] == '/':
				n--
				i += 2
			default:
				i++
			}
		}
		return i, comment
	case c == '\'':
		// E'...' strings take backslash escapes; others double quotes.
		escapes := i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i < 2 || !isIdent(sql[i-2]))
		return skipQuoted(sql, i+1, '\'', escapes), stringLiteral
	case c == '"':
		return skipQuoted(sql, i+1, '"', false), quotedIdentifier
	case c == '$' && (i == 0 || !isIdent(sql[i-1])):
		if end, ok := dollarTag(sql, i); ok {
			tag := sql[i:end]
			i = end
			for i < len(sql) && !(sql[i] == '$' && hasPrefixAt(sql, i, tag)) {
				i++
			}
			return min(i+len(tag), len(sql)), stringLiteral
		}
	}
	return i, notSkipped
}

// skipQuoted returns the index after the quote that closes a literal
// starting at i.
func skipQuoted(sql string, i int, quote byte, escapes bool) int {
	for i < len(sql) {
		switch {
		case escapes && sql[i] == '\\':
			i += 2
		case sql[i] == quote:
			if i+1 < len(sql) && sql[i+1] == quote {
				i += 2
				continue
			}
			return i + 1
		default:
			i++
		}
	}
	return i
}

// dollarTag reports whether a dollar-quote tag ($$ or $tag$) starts at i,
// and where it ends.
func dollarTag(sql string, i int) (int, bool) {
	j := i + 1
	if j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
		return 0, false // $1 is a parameter
	}
	for j < len(sql) && isIdent(sql[j]) && sql[j] != '$' {
		j++
	}
	if j < len(sql) && sql[j] == '$' {
		return j + 1, true
	}
	return 0, false
}

func hasPrefixAt(s string, i int, prefix string) bool {
	return len(s)-i >= len(prefix) && s[i:i+len(prefix)] == prefix
}

func isIdentStart(c byte) bool {
	return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$' }

func isOperator(c byte) bool {
	switch c {
	case '+', '-', '*', '/', '<', '>', '=', '~', '!', '@', '#', '%', '^', '&', '|', '`', '?', ':', '.':
		return true
	}
	return false
}

// isLiteralPunctuation reports whether the operator character at i is part
// of a numeric literal: a decimal point between digits, or a sign right
// before a digit that starts a list item (after '(' or ',').
func isLiteralPunctuation(sql string, i int) bool {
	digitAt := func(j int) bool { return j >= 0 && j < len(sql) && sql[j] >= '0' && sql[j] <= '9' }
	switch sql[i] {
	case '.':
		return digitAt(i-1) || digitAt(i+1)
	case '-', '+':
		if !digitAt(i + 1) {
			return false
		}
		j := i - 1
		for j >= 0 && (sql[j] == ' ' || sql[j] == '\t' || sql[j] == '\n' || sql[j] == '\r') {
			j--
		}
		return j >= 0 && (sql[j] == '(' || sql[j] == ',')
	}
	return false
}

// isLiteralKeyword reports whether word is a keyword that is a constant
// (TRUE, FALSE, NULL, DEFAULT): it adds no level to a tree.
func isLiteralKeyword(word string) bool {
	if len(word) < 4 || len(word) > 7 {
		return false
	}
	var b [7]byte
	for i := range len(word) {
		b[i] = word[i] | 0x20
	}
	switch string(b[:len(word)]) {
	case "true", "false", "null", "default":
		return true
	}
	return false
}
