package policy

import (
	"slices"
	"sort"
	"strings"

	"github.com/pgwarden/pgwarden/session"
)

// StartupSettings returns the settings the session's startup packet
// changes: each allowed startup parameter that is a setting (search_path,
// statement_timeout, ..., Via "startup"), and each -c name=value or
// --name=value of the options parameter (Via "startup options"), split the
// way the server splits it (whitespace separates, a backslash escapes the
// next character). A policy may refuse statements of sessions that
// started with settings it does not accept.
func StartupSettings(info *session.Info) []Setting {
	if info == nil {
		return nil
	}
	var out []Setting
	names := make([]string, 0, len(info.Params))
	for name := range info.Params {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := info.Params[name]
		if lower := strings.ToLower(name); lower == "options" {
			out = append(out, optionSettings(value)...)
		} else {
			out = append(out, Setting{Name: lower, Value: value, Known: true, Via: "startup"})
		}
	}
	return out
}

// optionSettings reads the settings of an options startup parameter.
func optionSettings(options string) []Setting {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(options); i++ {
		c := options[i]
		switch {
		case c == '\\' && i+1 < len(options):
			i++
			cur.WriteByte(options[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	var out []Setting
	add := func(kv string) {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return
		}
		// The server reads - in a name as _ (--work-mem=64MB).
		name = strings.ReplaceAll(strings.ToLower(name), "-", "_")
		out = append(out, Setting{Name: name, Value: value, Known: true, Via: "startup options"})
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			add(words[i])
		case strings.HasPrefix(w, "-c"):
			add(w[2:])
		case strings.HasPrefix(w, "--"):
			add(w[2:])
		default:
			// Another switch: the server refuses those it does not allow.
			out = append(out, Setting{Name: "*", Via: "startup options"})
		}
	}
	return out
}

// startupSetting returns the first setting among names that the session's
// startup packet changed. It runs for every statement, so it allocates
// only to split an options parameter.
func startupSetting(info *session.Info, names []string) (Setting, bool) {
	if info == nil {
		return Setting{}, false
	}
	for name, value := range info.Params {
		lower := strings.ToLower(name)
		if lower == "client_encoding" {
			// The gateway admits only the encodings its parser reads (many
			// drivers send UTF8 at startup): nothing for a policy to refuse.
			continue
		}
		if lower != "options" {
			if slices.Contains(names, lower) {
				return Setting{Name: lower, Value: value, Known: true, Via: "startup"}, true
			}
			continue
		}
		for _, set := range optionSettings(value) {
			if set.Name != "*" && slices.Contains(names, set.Name) {
				return set, true
			}
		}
	}
	return Setting{}, false
}
