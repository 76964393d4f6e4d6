// Package journal records sessions to files: a session.Recorder that
// writes each session's ledger (see session.Ledger) to its own
// append-only file, and a session.Archive that lists, reads and verifies
// them.
//
// # Files
//
// A journal is a directory (created 0700) holding one file per session,
// <dir>/<session-id>.jsonl (created 0600, never reopened to record once
// closed), and journal.lock, which the open Journal holds locked (flock)
// so that no other Journal, in this process or another, writes or
// recovers the same directory. A session id is 1 to 128 of a-z, 0-9, '_'
// and '-', not starting with '-': never a path. While a Journal is open
// (or after a crash, until the next Open), the directory also holds its
// write-ahead log: segments named wal-<16 hex digits>.log (created 0600),
// which no session's file can be named. A journal closed cleanly leaves
// none.
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
// Record appends the event's lines to the session's file (write(2)) and
// the same bytes to the journal's write-ahead log (one write(2) to its
// current segment) before it returns, whatever the event: a crash of the
// gateway process loses no event Record acknowledged. A durable event is
// also on disk before Record returns: statement events always (so a
// statement is on disk before the proxy forwards it to the server), the
// seal always, and the other events unless Options.Durable says otherwise
// (by default every event is durable).
//
// The log is shared: every session appends to the same segment, in the
// order the Records happen. A commit (Stats.Commits) is one fdatasync of
// the current segment, covering every line appended before it, whatever
// the number of sessions. One runs at a time: the first durable Record
// that needs one starts it (it leads it, without a hop through a
// committer goroutine), the others that need it wait for its end, and
// those appended while it ran are covered by the next, which one of them
// starts. Sessions that record concurrently share a commit;
// Options.GroupCommit can make it wait for more. Sessions' files are not synced on this path,
// nor is the directory when a session's file is created: until a
// checkpoint, the log is what makes their content durable, and recovery
// rebuilds from it what a power loss took from a file (a file the
// directory lost included).
//
// Why one log: an fdatasync costs about the same whether it flushes one
// line or a hundred (the filesystem's journal commit and the device's
// cache flush dominate), so syncing each session's file cost one
// fdatasync per session in a batch (8 with 8 concurrent sessions) where
// the log costs one. The price is writing each line twice (the second
// write goes to the page cache) and the checkpoints. syncfs(2) is also one
// call per batch, but it flushes every dirty page of the filesystem (a
// database's or a log's on the same disk included), reports a write-back
// error to every session at once (and not at all before Linux 5.8), and
// exists on Linux only; the log's fdatasync flushes the log, and its
// error is the log's.
//
// A segment is written in place over zeros laid ahead of its end, 1 MiB
// at a time, as PostgreSQL prepares its WAL segments: a commit's fdatasync
// then flushes data only, where after an append it must also journal the
// file's new size (on ext4 here, 140 µs against 240 µs per fdatasync).
// The written part of a segment ends at the first line that starts with
// a zero byte; a line cut short by zeros is a torn line.
//
// A checkpoint ends a segment: when the current segment reaches
// Options.WALSegmentSize (64 MiB by default), or has held events for
// Options.CheckpointInterval (one minute), a checkpoint goroutine creates
// the next segment and fsyncs the directory, the next commit switches the
// appends to it (and syncs the old segment to its end; a committer
// goroutine runs that commit when no Record does), and the checkpoint fdatasyncs every session's file that received
// bytes while the old segment was current (open, or closed since: it is
// reopened read-only, and fdatasync flushes a file through any
// descriptor), fsyncs the directory (for the files created meanwhile),
// removes the old segment and fsyncs the directory again. One checkpoint
// runs at a time. It costs one fdatasync per session's file the segment
// covers (up to 8 at once) and three fsyncs of the directory, beside the
// commits, which it slows only by sharing the disk; a rotation itself
// stalls no commit. Close is a last checkpoint: it syncs every file the
// log still covers and the directory, then removes the segments.
// Stats.Syncs counts every sync call (commits, checkpoints, Close), and
// Stats.Checkpoints the segments checkpointed.
//
// An error fails the Record, and the proxy ends the session (fail closed).
// A write error on a session's file marks that session broken: every
// later event of the session fails; the other sessions carry on. A write
// or fdatasync error of the log fails every Record waiting for it and
// breaks the journal: every later Record fails, until the journal is
// reopened (after a failed fdatasync the kernel may have dropped the
// log's unwritten pages, and a later call would succeed without them, so
// nothing appended since the last commit can be made durable). A failed
// fdatasync of a session's file at a checkpoint breaks that session, for
// the same reason; that checkpoint then keeps its segment, no later one
// or Close removes any (Close says so), and the next Open recovers from
// them.
//
// # Crashes
//
// A crash loses no acknowledged event, and neither does a power loss:
// every event a durable Record acknowledged, and every event before it,
// is in the synced part of the log or of its file (a checkpoint synced
// it). At Open, the journal first replays the log a previous run left (it
// crashed, or a sync failed). It reads every segment in order. A torn or
// invalid last line of a segment (a write cut short, never acknowledged)
// is ignored; an invalid line before others (the disk or someone changed
// the segment) is logged and skipped: the session it belonged to cannot
// be restored past it, since its next line would not follow in the
// chain, and the other sessions' lines after it still can. For each
// session in the log, it keeps its file's verified prefix (the whole
// lines that are entries as the journal writes them and verify, in
// order, with the key), cuts what follows (a torn line, or what a power
// loss left of writes never synced), and appends, byte for byte, the
// log's lines that continue the chain, stopping at the first that does
// not verify (logged). Nothing that does not verify is ever written to a
// file, and a restored file is byte for byte what the journal wrote. A
// missing file is created. A file whose verified prefix stops before the
// log's first entry of its session lost what a checkpoint had synced:
// someone changed it, and it is left as it is (logged). The restored
// files and the directory are synced, then the segments removed.
//
// Then the journal recovers every ledger left unsealed (the gateway
// crashed, a file broke, or the journal was closed while sessions ran;
// Close seals nothing): a torn last line (a write cut short, never
// acknowledged) is cut, and the ledger is sealed with
// session.ResumeLedger. Nothing is invented: no session.end is added.
// Recovered tells such a session from one sealed at its end, from the
// verified entries themselves (sealed, but not after a session.end
// event); its summary has no EndReason. A ledger whose whole lines do not
// verify is left as it is and logged. Every recovery is logged with the
// number of entries kept.
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
//   - After a crash, until the next Open, the write-ahead log holds what
//     the files received since their last checkpoint, and recovery
//     restores it over a file changed in that part (logged): such an
//     edit is undone, not reported by Verify.
//
// # Reading
//
// Events, Sessions, Verify, VerifyAll and Recovered read the files as they
// are (also after Close). Sessions reads every file: a listing costs a
// read of the whole directory. OpenReadOnly opens a directory to read it
// while a gateway records to it (a review tool, for example).
package journal
