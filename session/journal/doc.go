// Package journal records sessions to files: a session.Recorder that
// writes each session's ledger (see session.Ledger) to its own
// append-only file, and a session.Archive that lists, reads and verifies
// them.
//
// # Files
//
// A journal is a directory (created 0700) holding one file per session,
// <dir>/<session-id>.jsonl (created 0600, never reopened once closed), and
// journal.lock, which the open Journal holds locked (flock) so that no
// other Journal, in this process or another, writes or recovers the same
// directory. A session id is 1 to 128 of a-z, 0-9, '_' and '-', not
// starting with '-': never a path.
//
// Each line of a session's file is one session.LedgerEntry, exactly as
// json.Marshal encodes it, followed by "\n":
//
//	{"session":"5f1c…","seq":1,"prev":"<genesis>","hash":"<hmac>","event":{"kind":"session.start",…}}
//	{"session":"5f1c…","seq":2,"prev":"<hash 1>","hash":"<hmac>","event":{"kind":"statement",…}}
//	…
//	{"session":"5f1c…","seq":9,"prev":"<hash 8>","hash":"<hmac>","sealed":true}
//
// "event" is the session.Event's JSON as the ledger hashed it. The entry
// after the session.end event is the seal, written with it (one write),
// after which the file is closed. A ledger sealed after any other event
// was sealed by recovery (see below).
//
// # Write-ahead and group commit
//
// Record appends the event to the session's file (write(2)) before it
// returns, whatever the event: a crash of the gateway process loses no
// event Record acknowledged. A durable event is also on disk (fdatasync)
// before Record returns: statement events always (so a statement is on
// disk before the proxy forwards it to the server), the seal always, and
// the other events unless Options.Durable says otherwise (by default
// every event is durable).
//
// Durable Records wait for one committer goroutine, which collects the
// pending syncs of every session, syncs each touched file, then wakes all
// the waiters: sessions that record concurrently share a commit
// (Stats.Commits counts them). Options.GroupCommit can make it wait for
// more. The committer fdatasyncs the batch's files in parallel, and
// fsyncs the directory when a file was created since its last sync.
// syncfs(2) (one call per batch) was measured against it: faster with
// many concurrent sessions on an idle disk, but it flushes every dirty
// page of the filesystem (a database's or a log's on the same disk
// included), reports a write-back error to every session at once (and
// not at all before Linux 5.8), and exists on Linux only; fdatasync
// costs a call per file and attributes errors to their file.
//
// An error fails the Record, and the proxy ends the session (fail closed).
// A write or fsync error also marks the session's file broken: after a
// failed fsync the kernel may have dropped the unwritten pages, so every
// later event of that session fails too. Other sessions carry on.
//
// # Crashes
//
// A crash loses no acknowledged event. At Open, the journal recovers every
// ledger a previous run left unsealed (the gateway crashed, a file broke,
// or the journal was closed while sessions ran; Close seals nothing): a
// torn last line (a write cut short, never acknowledged) is cut, and the
// ledger is sealed with session.ResumeLedger. Nothing is invented: no
// session.end is added. Recovered tells such a session from one sealed at
// its end, from the verified entries themselves (sealed, but not after a
// session.end event); its summary has no EndReason. A ledger whose whole
// lines do not verify is left as it is and logged. Every recovery is
// logged with the number of entries kept.
//
// # Tamper evidence, and its limits
//
// Verify reads a session's file and checks it with session.VerifyLedger:
// an edited, removed, inserted, duplicated or reordered line, a line from
// another session's ledger, a file renamed to another session's name, a
// missing seal and content after the seal are each reported as a
// *session.TamperError naming the first wrong entry. Verify also requires
// every line to be the canonical encoding of its entry (no reformatting,
// no extra or duplicated fields, no torn line), and every field of an
// entry is bound by the chain; so Verify returns nil only for a file byte
// for byte as the journal wrote it. That is the guarantee, and
// FuzzReadJournal checks it.
//
// The limits:
//   - Anyone with the recording key can forge a whole ledger. The gateway
//     has the key; keep it out of the journal's directory and its
//     backups, and verify with a copy held elsewhere.
//   - Deleting a session's whole file leaves nothing in the directory to
//     notice. A reviewer notices through what else saw the session: the
//     gateway's log (every session start and end is logged with its id),
//     or a second recorder (session.Multi with the PostgreSQL store),
//     whose sessions the directory must all have.
//   - Cutting a ledger's tail while the gateway is down looks like a crash
//     to the next Open, which seals what is left: Recovered then says the
//     session's end is missing, and the log shows the recovery, but not
//     whether a crash or a person cut it.
//
// # Reading
//
// Events, Sessions, Verify, VerifyAll and Recovered read the files as they
// are (also after Close). Sessions reads every file: a listing costs a
// read of the whole directory. OpenReadOnly opens a directory to read it
// while a gateway records to it (a review tool, for example).
package journal
