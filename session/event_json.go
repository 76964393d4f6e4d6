package session

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// The two events of every statement (KindStatement, KindResult) are the
// bulk of a recording, and the ledger hashes each as JSON: marshalEvent
// writes them without reflection, byte for byte what json.Marshal writes
// (TestMarshalEventIsJSONMarshal, FuzzMarshalEvent), and leaves every
// other event to json.Marshal. TestMarshalEventKnowsEveryField fails when
// a field is added to the types it writes, until it writes that field too.

// marshalEvent returns ev's JSON, as json.Marshal encodes it.
func marshalEvent(ev Event) ([]byte, error) {
	if b, ok := appendEvent(make([]byte, 0, 512), ev); ok {
		return b, nil
	}
	return json.Marshal(ev)
}

// appendEvent appends the JSON of a statement or result event to b, and
// reports false (b unspecified) for any other event, or a time that
// json.Marshal refuses.
func appendEvent(b []byte, ev Event) ([]byte, bool) {
	if ev.Start != nil || ev.End != nil || ev.Credential != nil || ev.Approval != nil ||
		(ev.Statement == nil) == (ev.Result == nil) {
		return b, false
	}
	if y := ev.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := ev.Time.Zone(); off%60 != 0 || off <= -24*60*60 || off >= 24*60*60 {
		return b, false
	}
	b = append(b, `{"kind":`...)
	b = appendJSONString(b, string(ev.Kind))
	b = append(b, `,"session":`...)
	b = appendJSONString(b, ev.SessionID)
	b = append(b, `,"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if st := ev.Statement; st != nil {
		b = append(b, `,"statement":{"seq":`...)
		b = strconv.AppendInt(b, st.Seq, 10)
		b = append(b, `,"protocol":`...)
		b = appendJSONString(b, string(st.Protocol))
		b = appendOmitEmpty(b, "sql", st.SQL)
		if len(st.SQLBytes) > 0 {
			b = append(b, `,"sql_bytes":"`...)
			b = base64.StdEncoding.AppendEncode(b, st.SQLBytes)
			b = append(b, '"')
		}
		b = appendOmitEmpty(b, "name", st.Name)
		if st.FunctionOID != 0 {
			b = append(b, `,"function_oid":`...)
			b = strconv.AppendUint(b, uint64(st.FunctionOID), 10)
		}
		b = appendOmitEmpty(b, "stage", st.Stage)
		b = appendStrings(b, "kinds", st.Kinds)
		b = appendStrings(b, "tables", st.Tables)
		b = appendOmitEmpty(b, "portal", st.Portal)
		if len(st.Params) > 0 {
			b = append(b, `,"params":[`...)
			for i, p := range st.Params {
				if i > 0 {
					b = append(b, ',')
				}
				if p == nil {
					b = append(b, "null"...)
				} else {
					b = appendJSONString(b, *p)
				}
			}
			b = append(b, ']')
		}
		b = append(b, `,"verdict":`...)
		b = appendJSONString(b, st.Verdict)
		b = appendOmitEmpty(b, "rule", st.Rule)
		b = appendOmitEmpty(b, "reason", st.Reason)
		b = append(b, '}')
	} else {
		r := ev.Result
		b = append(b, `,"result":{"seq":`...)
		b = strconv.AppendInt(b, r.Seq, 10)
		if r.Bind != 0 {
			b = append(b, `,"bind":`...)
			b = strconv.AppendInt(b, r.Bind, 10)
		}
		b = appendOmitEmpty(b, "tag", r.Tag)
		b = append(b, `,"rows":`...)
		b = strconv.AppendInt(b, r.Rows, 10)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, int64(r.Duration), 10)
		b = appendOmitEmpty(b, "error_code", r.ErrorCode)
		b = appendOmitEmpty(b, "error_message", r.ErrorMessage)
		b = append(b, '}')
	}
	return append(b, '}'), true
}

// appendOmitEmpty appends `,"name":"s"`, or nothing when s is empty.
func appendOmitEmpty(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, s)
}

// appendStrings appends `,"name":[...]`, or nothing when ss is empty.
func appendStrings(b []byte, name string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as json.Marshal quotes a string: '"', '\\'
// and control characters escaped, '<', '>' and '&' escaped for HTML,
// invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
