package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
)

// A session's record is a ledger: each event is an entry whose hash is a
// keyed MAC (HMAC-SHA-256, with the recording key) over the previous
// entry's hash, its sequence number and the event's JSON exactly as
// stored. The first entry's previous hash is derived from the key and the
// session id, and a session that ended cleanly closes its ledger with a
// seal entry. Without the key nobody can recompute a hash, so an edited,
// removed, inserted or reordered entry, a truncated ledger (no seal, or a
// seal that does not match) and a ledger moved to another session's name
// are all detected by VerifyLedger. Stores (files, PostgreSQL) keep
// entries; they never need the key except to verify.

// LedgerEntry is one entry of a session's ledger, as stored (one JSON line
// in a file store, one row in a database store).
type LedgerEntry struct {
	// Session is the session id.
	Session string `json:"session"`
	// Seq numbers entries from 1, with no gaps.
	Seq int64 `json:"seq"`
	// Prev is the previous entry's Hash (hex), or the ledger's genesis.
	Prev string `json:"prev"`
	// Hash is the entry's keyed MAC (hex).
	Hash string `json:"hash"`
	// Event is the recorded event's JSON, exactly as hashed. Empty for the
	// seal.
	Event json.RawMessage `json:"event,omitempty"`
	// Sealed marks the seal: the entry that closes a session's ledger.
	Sealed bool `json:"sealed,omitempty"`
}

// Ledger appends a session's events to its hash chain. It is not safe for
// concurrent use: a session's events are recorded one at a time.
type Ledger struct {
	key     []byte
	mac     hash.Hash // HMAC-SHA256 with key, reset for each entry
	session string
	seq     int64
	prev    string
	sealed  bool
}

// ErrLedgerSealed is returned when an event is appended to a sealed
// ledger.
var ErrLedgerSealed = errors.New("session: the ledger is sealed")

// NewLedger starts the ledger of session id with the recording key. The
// key must not be empty.
func NewLedger(key Secret, id string) (*Ledger, error) {
	if key.IsZero() {
		return nil, errors.New("session: a ledger needs a recording key")
	}
	k := []byte(key.Reveal())
	return &Ledger{key: k, mac: hmac.New(sha256.New, k), session: id, prev: genesis(k, id)}, nil
}

// ResumeLedger continues a ledger after its last stored entry (to seal it
// after a crash, for example).
func ResumeLedger(key Secret, last LedgerEntry) (*Ledger, error) {
	l, err := NewLedger(key, last.Session)
	if err != nil {
		return nil, err
	}
	l.seq, l.prev, l.sealed = last.Seq, last.Hash, last.Sealed
	return l, nil
}

// Append adds ev and returns its entry.
func (l *Ledger) Append(ev Event) (LedgerEntry, error) {
	if l.sealed {
		return LedgerEntry{}, ErrLedgerSealed
	}
	raw, err := marshalEvent(ev)
	if err != nil {
		return LedgerEntry{}, err
	}
	return l.add(raw, false), nil
}

// Seal closes the ledger: no event can be appended after it.
func (l *Ledger) Seal() (LedgerEntry, error) {
	if l.sealed {
		return LedgerEntry{}, ErrLedgerSealed
	}
	l.sealed = true
	return l.add(nil, true), nil
}

func (l *Ledger) add(raw json.RawMessage, seal bool) LedgerEntry {
	l.seq++
	e := LedgerEntry{Session: l.session, Seq: l.seq, Prev: l.prev, Event: raw, Sealed: seal}
	l.mac.Reset()
	e.Hash = writeMAC(l.mac, e)
	l.prev = e.Hash
	return e
}

// genesis is the previous hash of a ledger's first entry: bound to the
// session, so that a ledger cannot pass for another session's.
func genesis(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pgwarden ledger genesis\x00"))
	m.Write([]byte(id))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}

// entryMAC is an entry's keyed hash.
func entryMAC(key []byte, e LedgerEntry) string {
	return writeMAC(hmac.New(sha256.New, key), e)
}

// writeMAC computes e's keyed hash with m, a fresh (or reset) HMAC.
func writeMAC(m hash.Hash, e LedgerEntry) string {
	m.Write([]byte(e.Prev))
	var b [9]byte
	binary.BigEndian.PutUint64(b[:8], uint64(e.Seq))
	if e.Sealed {
		b[8] = 1
	}
	m.Write(b[:])
	m.Write(e.Event)
	return hex.EncodeToString(m.Sum(nil))
}

// TamperError says where a ledger stops being trustworthy.
type TamperError struct {
	// Session is the session whose ledger it is.
	Session string
	// Seq is the first entry that does not verify (the number expected
	// when an entry is missing; one past the last when the seal is).
	Seq int64
	// Reason says what is wrong ("not sealed" for a ledger whose entries
	// all verify, but that was not closed).
	Reason string
}

// Error names the session, the entry and the reason.
func (e *TamperError) Error() string {
	return fmt.Sprintf("session %s: ledger entry %d: %s", e.Session, e.Seq, e.Reason)
}

// VerifyLedger checks the entries of session id, in stored order, against
// the key. It returns nil for an intact, sealed ledger; a *TamperError for
// the first entry that does not verify; and, when every entry verifies but
// there is no seal, a *TamperError with Reason "not sealed" (a session
// still running, one whose gateway crashed before it could seal it, or a
// truncated ledger: the store knows which).
func VerifyLedger(key Secret, id string, entries []LedgerEntry) error {
	if key.IsZero() {
		return errors.New("session: verifying a ledger needs the recording key")
	}
	k := []byte(key.Reveal())
	prev := genesis(k, id)
	for i, e := range entries {
		seq := int64(i + 1)
		bad := func(why string) error { return &TamperError{Session: id, Seq: seq, Reason: why} }
		switch {
		case e.Session != id:
			return bad(fmt.Sprintf("belongs to session %q", e.Session))
		case e.Seq != seq:
			return bad(fmt.Sprintf("has number %d: an entry is missing or out of order", e.Seq))
		case e.Prev != prev:
			return bad("does not follow the previous entry: an entry is missing, inserted or out of order")
		case !hmac.Equal([]byte(e.Hash), []byte(entryMAC(k, e))):
			return bad("its content does not match its hash: edited")
		case e.Sealed && i != len(entries)-1:
			return bad("entries follow the seal")
		case e.Sealed && len(e.Event) != 0:
			return bad("the seal carries an event")
		case !e.Sealed && !json.Valid(e.Event):
			return bad("the event is not valid JSON")
		}
		prev = e.Hash
	}
	if len(entries) == 0 || !entries[len(entries)-1].Sealed {
		return &TamperError{Session: id, Seq: int64(len(entries) + 1), Reason: "not sealed"}
	}
	return nil
}

// IsNotSealed reports whether err is VerifyLedger's "not sealed" (every
// stored entry verifies, but the ledger was not closed).
func IsNotSealed(err error) bool {
	var te *TamperError
	return errors.As(err, &te) && te.Reason == "not sealed"
}
