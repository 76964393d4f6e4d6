// Package mask holds the maskers (redact, partial, email, keyed hash, null,
// format-preserving digits) and content detectors (email, payment cards,
// IBAN, US SSN, phone numbers, JWTs, API keys, private key blocks) that hide
// sensitive values in results, and the Rules that say which columns they
// apply to and for whom.
//
// The package knows nothing of the wire: the proxy works out which result
// cells come from a masked column (from the server's RowDescription and the
// statement's parse tree), refuses statements whose results it cannot mask
// soundly, and calls a Masker for each affected cell.
//
// # Implementing a Masker
//
// A Masker gets one non-NULL cell, with its type OID and wire format, and
// appends the masked value (or reports NULL). It must return a value the
// client can decode as the column's type in that format, or NULL; it must
// never return its input; an error refuses the statement (fail closed). It
// is called concurrently, must not block, and must not keep the slices it is
// given.
//
// # Implementing a Detector
//
// A Detector reports whether a value contains what it looks for. It reads
// untrusted bytes: linear time, no allocation, no panic, on any input.
package mask
