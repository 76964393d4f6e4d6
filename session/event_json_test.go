package session

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

// checkMarshalEvent fails unless marshalEvent(ev) is json.Marshal(ev).
func checkMarshalEvent(t *testing.T, ev Event) {
	t.Helper()
	want, werr := json.Marshal(ev)
	got, gerr := marshalEvent(ev)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("marshalEvent:\n%s (%v)\njson.Marshal:\n%s (%v)", got, gerr, want, werr)
	}
}

func TestMarshalEventIsJSONMarshal(t *testing.T) {
	tricky := []string{"", "select 1", `<script>&amp;</script>`, "line\u2028sep\u2029para", `quote " and \ backslash`,
		"\b\f\n\r\t\x00\x01\x1f\x7f", "ünïcödé ✓ 😀", "invalid \xff\xfe utf-8 \xe2\x80", "\xed\xa0\x80 surrogate"}
	times := []time.Time{{}, time.Date(2026, 11, 26, 14, 0, 0, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -5*3600-30*60)),
		time.Date(2026, 1, 2, 3, 4, 5, 100, time.FixedZone("secs", 3600+7)), // json.Marshal refuses: so must marshalEvent
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i, s := range tricky {
		for _, tm := range times {
			p := s
			checkMarshalEvent(t, Event{Kind: KindStatement, SessionID: s, Time: tm, Statement: &StatementEvent{
				Seq: int64(i), Protocol: Protocol(s), SQL: s, SQLBytes: []byte(s), Name: s, FunctionOID: uint32(i),
				Stage: s, Kinds: []string{s, "select"}, Tables: []string{s}, Portal: s, Params: []*string{&p, nil},
				Verdict: s, Rule: s, Reason: s}})
			checkMarshalEvent(t, Event{Kind: KindResult, SessionID: s, Time: tm, Result: &ResultEvent{
				Seq: int64(-i), Bind: int64(i), Tag: s, Rows: 1 << 40, Duration: -time.Duration(i), ErrorCode: s, ErrorMessage: s}})
		}
	}
	// Empty slices and zero values, and events left to json.Marshal.
	checkMarshalEvent(t, Event{Kind: KindStatement, Statement: &StatementEvent{Kinds: []string{}, Params: []*string{}}})
	checkMarshalEvent(t, Event{Kind: KindResult, Result: &ResultEvent{}})
	checkMarshalEvent(t, Event{Kind: KindStatement, Statement: &StatementEvent{}, Result: &ResultEvent{}})
	checkMarshalEvent(t, Event{Kind: KindSessionEnd, End: &EndEvent{Reason: EndClientExit}})
	checkMarshalEvent(t, Event{Kind: KindStatement})
}

func FuzzMarshalEvent(f *testing.F) {
	f.Add("select <1>", []byte("\xff"), int64(1), "t\u2028", false)
	f.Add("", []byte(nil), int64(-1), "", true)
	f.Fuzz(func(t *testing.T, s string, raw []byte, n int64, tag string, result bool) {
		tm := time.Unix(n%(1<<36), n%1e9).UTC()
		if result {
			checkMarshalEvent(t, Event{Kind: EventKind(s), SessionID: tag, Time: tm, Result: &ResultEvent{
				Seq: n, Bind: -n, Tag: tag, Rows: n >> 3, Duration: time.Duration(n), ErrorCode: s, ErrorMessage: string(raw)}})
			return
		}
		p := string(raw)
		checkMarshalEvent(t, Event{Kind: EventKind(tag), SessionID: s, Time: tm, Statement: &StatementEvent{
			Seq: n, Protocol: Protocol(tag), SQL: s, SQLBytes: raw, Name: tag, FunctionOID: uint32(n), Stage: s,
			Kinds: []string{tag}, Tables: []string{s, p}, Portal: p, Params: []*string{nil, &p, &s}, Verdict: tag, Rule: s, Reason: p}})
	})
}

// The fast path writes the fields it knows: a field added to one of these
// types must be added to appendEvent too (and to this list).
func TestMarshalEventKnowsEveryField(t *testing.T) {
	for typ, want := range map[reflect.Type][]string{
		reflect.TypeFor[Event](): {"Kind", "SessionID", "Time", "Start", "Statement", "Result", "End", "Credential", "Approval"},
		reflect.TypeFor[StatementEvent](): {"Seq", "Protocol", "SQL", "SQLBytes", "Name", "FunctionOID", "Stage", "Kinds",
			"Tables", "Portal", "Params", "Verdict", "Rule", "Reason"},
		reflect.TypeFor[ResultEvent](): {"Seq", "Bind", "Tag", "Rows", "Duration", "ErrorCode", "ErrorMessage"},
	} {
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s has the fields %v; appendEvent writes %v", typ, got, want)
		}
	}
}
