// Package pgstore records sessions in a PostgreSQL table, for teams that
// run several gateways and want one place to search and verify what their
// sessions did. A Store is a session.Recorder (give it to the proxy) and a
// session.Archive (give it to whoever reviews recordings).
//
// # The audit database
//
// Open connects to a database the operator names: an audit database, not
// the one the gateway protects, so that the sessions being recorded cannot
// reach their own record. Its encoding must be UTF8. Open creates the table
// if it is missing (Options.Table, default pgwarden_events):
//
//	CREATE TABLE pgwarden_events (
//		session     text        NOT NULL,
//		seq         bigint      NOT NULL,
//		kind        text,                 -- the event's kind; NULL for the seal
//		sealed      boolean     NOT NULL DEFAULT false,
//		prev        text        NOT NULL, -- the previous entry's hash (hex)
//		hash        text        NOT NULL, -- this entry's keyed hash (hex)
//		event       text,                 -- the event's JSON, exactly as hashed; NULL for the seal
//		recorded_at timestamptz NOT NULL DEFAULT now(),
//		PRIMARY KEY (session, seq)
//	);
//
// Each row is one session.LedgerEntry. The event is kept as text, never
// jsonb (which would reformat it and break its hash); searches parse it
// when they run, walking the primary key session by session (no other
// index is needed). Gateways sharing the table need INSERT on it (and CREATE
// on the schema, for the first Open, unless the table is created
// beforehand); reviewers need SELECT. Nobody needs UPDATE or DELETE:
// grant them to no one the record should be safe from.
//
// # Guarantees
//
//   - Fail closed: Record of a durable event (Options.Durable; by default
//     every event) returns only once the entry is committed, with the
//     server's synchronous_commit (set it on the audit role or database to
//     wait for a standby). Any failure fails the Record, so the proxy
//     refuses the statement and ends the session. A Record that does not
//     wait learns of a failed write too late for its own event: the
//     session's next Record fails instead.
//   - No silent holes: once a write of a session's entries failed, every
//     later Record of that session fails; what was committed verifies as a
//     ledger that is not sealed (session.IsNotSealed).
//   - Batches: one writer collects the entries of every session and writes
//     them with one COPY per batch (Options.MaxBatch, Options.MaxDelay), on
//     a connection of its own: a Record waits for a commit it shares with
//     the other sessions, never for a search. One session whose entries the
//     server refuses does not fail the others.
//   - Tamper evidence: each session's entries form a hash chain keyed with
//     the recording key, closed by a seal entry committed with the
//     session's end. Verify detects an edited, removed, inserted or
//     reordered entry, an entry moved to another session, a missing seal
//     and a kind column that does not match its event. It cannot tell a
//     session cut just before its end (every entry from session.end on
//     deleted) from one whose gateway stopped, and nothing detects a
//     session deleted whole: keep the table where the people it records
//     cannot write.
//   - Secrets: the DSN's password never appears in an error or a log.
//     Events never carry passwords.
//
// # The key
//
// The recording key is needed to record (every entry's hash is keyed with
// it) and to verify, never to read: the database never sees it, so
// whoever can write to the table cannot forge a ledger that verifies. A
// Store opened without a key lists and reads recordings (Sessions, Events)
// but cannot record or verify them.
package pgstore
