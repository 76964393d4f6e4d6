package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/session"
)

var _ session.Archive = (*Store)(nil)
var _ session.Recorder = (*Store)(nil)

// asJSON is the SQL expression that reads the event column of alias a as
// jsonb, for searching. The stored text is never changed: only this view
// of it replaces the escapes jsonb refuses (\u0000, which a client can put
// in a bound parameter, and UTF-16 surrogates, which raw claims can hold)
// with U+FFFD, so that one such event cannot break every search.
func asJSON(a string) string {
	c := a + ".event"
	return `(CASE WHEN strpos(` + c + `, '\u') = 0 THEN ` + c + ` ELSE regexp_replace(` + c +
		`, '\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})', '\\ufffd', 'g') END)::jsonb`
}

// sessionsQuery lists every session of the table; %[1]s is the table.
// Parameters: $1 subject, $2 since, $3 until, $4 table, $5 the table's
// word pattern for SQL text, $6 verdict.
//
// The sessions are enumerated by skipping through the primary key (a
// recursive query, one index probe per session), so that a session whose
// start entry is gone is still listed (and its Verify tells why). Each
// session's start comes from its session.start event: Info.StartedAt, or
// the event's time, or (no start event) its first event's time.
var sessionsQuery = `
WITH RECURSIVE ids(session) AS (
	(SELECT session FROM %[1]s ORDER BY session LIMIT 1)
	UNION ALL
	SELECT (SELECT x.session FROM %[1]s x WHERE x.session > ids.session ORDER BY x.session LIMIT 1)
	FROM ids WHERE ids.session IS NOT NULL
),
starts AS MATERIALIZED (
	SELECT ids.session, st.event AS start_event, fe.at AS first_at, j.info,
		coalesce(nullif(j.info->>'StartedAt', '0001-01-01T00:00:00Z'), j.at, fe.at)::timestamptz AS started
	FROM ids
	LEFT JOIN LATERAL (SELECT x.event FROM %[1]s x
		WHERE x.session = ids.session AND x.kind = 'session.start' ORDER BY x.seq LIMIT 1) st ON true
	LEFT JOIN LATERAL (SELECT ` + asJSON("x") + `->>'time' AS at FROM %[1]s x
		WHERE st.event IS NULL AND x.session = ids.session AND NOT x.sealed ORDER BY x.seq LIMIT 1) fe ON true
	CROSS JOIN LATERAL (SELECT p.ev->'start'->'info' AS info, p.ev->>'time' AS at
		FROM (SELECT ` + asJSON("st") + ` AS ev OFFSET 0) p) j
	WHERE ids.session IS NOT NULL
),
matching AS MATERIALIZED (
	SELECT * FROM starts m
	WHERE ($1::text = '' OR m.info->'Identity'->>'Subject' = $1::text
			OR coalesce(m.info->'Identity'->'Chain', '[]') @> jsonb_build_array(jsonb_build_object('Subject', $1::text)))
		AND ($2::timestamptz IS NULL OR m.started >= $2::timestamptz)
		AND ($3::timestamptz IS NULL OR m.started < $3::timestamptz)
		AND ($4::text = '' OR EXISTS (
			SELECT 1 FROM %[1]s x CROSS JOIN LATERAL (SELECT ` + asJSON("x") + `->'statement' AS s OFFSET 0) y
			WHERE x.session = m.session AND x.kind = 'statement' AND CASE
				WHEN jsonb_typeof(y.s->'tables') = 'array' AND jsonb_array_length(y.s->'tables') > 0 THEN EXISTS (
					SELECT 1 FROM jsonb_array_elements_text(y.s->'tables') tb(name)
					WHERE lower(tb.name) = lower($4::text)
						OR (strpos($4::text, '.') = 0 AND right(lower(tb.name), length($4::text) + 1) = '.' || lower($4::text)))
				ELSE replace(coalesce(y.s->>'sql', ''), '"', '') ~* $5::text END))
		AND ($6::text = '' OR EXISTS (
			SELECT 1 FROM %[1]s x
			WHERE x.session = m.session AND x.kind = 'statement' AND ` + asJSON("x") + `->'statement'->>'verdict' = $6::text))
)
SELECT m.session, m.start_event, agg.end_event, agg.credential_user, m.first_at, agg.statements, agg.refused
FROM matching m
CROSS JOIN LATERAL (
	SELECT count(*) FILTER (WHERE x.kind = 'statement') AS statements,
		count(*) FILTER (WHERE x.kind = 'statement'
			AND coalesce(` + asJSON("x") + `->'statement'->>'verdict', '') NOT IN ('allow', 'mask')) AS refused,
		(array_agg(x.event ORDER BY x.seq) FILTER (WHERE x.kind = 'session.end'))[1] AS end_event,
		(array_agg(` + asJSON("x") + `->'credential'->>'user' ORDER BY x.seq) FILTER (WHERE x.kind = 'credential'))[1] AS credential_user
	FROM %[1]s x WHERE x.session = m.session) agg
ORDER BY m.started, m.session`

// Sessions lists the recorded sessions that match f, oldest first (by
// their start: the session.start event's Info.StartedAt, or its time).
// A session whose start entry is missing is listed too, with what its
// other events say (and started at its first event's time):
//
//   - Subject: the identity's subject or any actor of its delegation chain.
//   - Since and Until: Since <= start < Until.
//   - Table: a statement event whose tables field names it (case
//     insensitively; an unqualified name also matches it in any schema),
//     or, for statement events without that field, whose SQL text holds
//     it as a word (case insensitively, double quotes ignored: it can
//     match a string literal or a column of the same name).
//   - Verdict: a statement event decided so.
//
// Refused counts the statement events whose verdict is neither "allow"
// nor "mask". Upstream is the start's UpstreamUser, or else the user of
// the first credential event. The summary is read from the events as stored: Verify
// tells whether they can be trusted.
func (s *Store) Sessions(ctx context.Context, f session.Filter) ([]session.Summary, error) {
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf(sessionsQuery, s.table),
		f.Subject, since, until, f.Table, wordPattern(f.Table), f.Verdict)
	if err != nil {
		return nil, s.fail("listing sessions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (session.Summary, error) {
		var sum session.Summary
		var start, end, credUser, firstAt *string
		if err := r.Scan(&sum.ID, &start, &end, &credUser, &firstAt, &sum.Statements, &sum.Refused); err != nil {
			return sum, err
		}
		if firstAt != nil {
			sum.StartedAt, _ = time.Parse(time.RFC3339Nano, *firstAt)
		}
		if start != nil {
			var ev session.Event
			if err := json.Unmarshal([]byte(*start), &ev); err != nil || ev.Start == nil {
				return sum, fmt.Errorf("session %s: the start event is unreadable", sum.ID)
			}
			info := ev.Start.Info
			sum.Identity, sum.User, sum.Database = info.Identity, info.User, info.Database
			sum.ClientAddr, sum.Upstream, sum.StartedAt = info.ClientAddr, info.UpstreamUser, info.StartedAt
			if sum.StartedAt.IsZero() {
				sum.StartedAt = ev.Time
			}
		}
		if sum.Upstream == "" && credUser != nil {
			sum.Upstream = *credUser
		}
		if end != nil {
			var ee session.Event
			if err := json.Unmarshal([]byte(*end), &ee); err != nil {
				return sum, fmt.Errorf("session %s: the end event is unreadable", sum.ID)
			}
			sum.EndedAt = ee.Time
			if ee.End != nil {
				sum.EndReason = ee.End.Reason
			}
		}
		return sum, nil
	})
	if err != nil {
		return nil, s.fail("listing sessions", err)
	}
	return out, nil
}

// wordPattern is a regular expression (PostgreSQL's) matching name as a
// word of SQL text (its double quotes removed): not preceded or followed
// by a letter, digit, underscore or dollar sign.
func wordPattern(name string) string {
	if name == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString(`(^|[^[:alnum:]_$])`)
	for _, r := range name {
		if r < 128 && !isWordByte(byte(r)) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteString(`($|[^[:alnum:]_$])`)
	return b.String()
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// Events returns the events of session id in the order they were
// recorded (the seal is not an event). It does not verify them.
func (s *Store) Events(ctx context.Context, id string) ([]session.Event, error) {
	entries, err := s.readEntries(ctx, id)
	if err != nil {
		return nil, err
	}
	var evs []session.Event
	for _, e := range entries {
		if e.entry.Sealed {
			continue
		}
		var ev session.Event
		if err := json.Unmarshal(e.entry.Event, &ev); err != nil {
			return nil, fmt.Errorf("pgstore: session %s: entry %d: the event is unreadable: %w", id, e.entry.Seq, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// Verify checks the ledger of session id with the recording key (see
// session.VerifyLedger): nil when it is intact and sealed, a
// *session.TamperError otherwise. On top of the ledger's checks, it
// reports:
//
//   - an entry whose kind column does not match its event;
//   - a session.end without the seal after it. The store commits a
//     session's end and its seal together, so only a truncated ledger
//     looks like that.
//
// A ledger that verifies but is not sealed (session.IsNotSealed) is a
// session still recording, one whose gateway stopped before its end, or
// one whose record failed; a ledger cut just before its end looks the
// same.
func (s *Store) Verify(ctx context.Context, id string) error {
	rows, err := s.readEntries(ctx, id)
	if err != nil {
		return err
	}
	entries := make([]session.LedgerEntry, len(rows))
	for i, r := range rows {
		entries[i] = r.entry
	}
	verr := session.VerifyLedger(s.key, id, entries)
	var te *session.TamperError
	if verr != nil && !errors.As(verr, &te) {
		return verr // no key
	}
	// The first kind column that does not match its event, checked up
	// to the entry the ledger fails at.
	for i, r := range rows {
		if te != nil && int64(i+1) >= te.Seq {
			break
		}
		if r.entry.Sealed {
			if r.kind != nil {
				return &session.TamperError{Session: id, Seq: r.entry.Seq, Reason: "the seal has a kind"}
			}
			continue
		}
		var head struct {
			Kind session.EventKind `json:"kind"`
		}
		if json.Unmarshal(r.entry.Event, &head) != nil || r.kind == nil || *r.kind != string(head.Kind) {
			return &session.TamperError{Session: id, Seq: r.entry.Seq, Reason: "its kind column does not match its event"}
		}
	}
	if session.IsNotSealed(verr) && len(rows) > 0 && rows[len(rows)-1].kind != nil &&
		*rows[len(rows)-1].kind == string(session.KindSessionEnd) {
		return &session.TamperError{Session: id, Seq: int64(len(rows) + 1),
			Reason: "the seal after session.end is missing: the ledger was truncated"}
	}
	return verr
}

// row is an entry as stored, with its kind column.
type row struct {
	entry session.LedgerEntry
	kind  *string
}

// readEntries reads session id's entries in seq order.
func (s *Store) readEntries(ctx context.Context, id string) ([]row, error) {
	rows, err := s.pool.Query(ctx, fmt.Sprintf(
		`SELECT session, seq, prev, hash, sealed, event, kind FROM %s WHERE session = $1 ORDER BY seq`, s.table), id)
	if err != nil {
		return nil, s.fail("reading session "+id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var event *string
		err := r.Scan(&x.entry.Session, &x.entry.Seq, &x.entry.Prev, &x.entry.Hash, &x.entry.Sealed, &event, &x.kind)
		if event != nil {
			x.entry.Event = json.RawMessage(*event)
		}
		return x, err
	})
	if err != nil {
		return nil, s.fail("reading session "+id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return out, nil
}
