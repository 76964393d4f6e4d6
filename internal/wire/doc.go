// Package wire frames and checks PostgreSQL protocol messages read from
// untrusted peers (clients and upstream servers alike).
//
// A Reader returns whole messages as raw frames without decoding them, so that
// the proxy can forward them byte for byte; it checks every declared length
// before allocating, and grows its buffer only as bytes actually arrive, so a
// peer that declares a huge message and sends nothing costs nothing. The
// decoders here check every length and terminator and never panic; message
// encoding is left to pgproto3.
package wire
