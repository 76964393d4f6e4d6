// Package mask holds the maskers (Redact, Partial, Email, KeyedHash, Null,
// Digits) and content detectors (EmailAddress, PaymentCard, IBAN, USSSN,
// Phone, JWT, APIKey, PrivateKey; All and DetectorByName list them) that
// hide sensitive values in results, and the Rules that say which columns
// they apply to and for whom.
//
// The package knows nothing of the wire: the proxy (proxy.Proxy.Masks)
// works out which result cells come from a masked column (from the server's
// RowDescription and the statement's parse tree), refuses statements whose
// results it cannot mask soundly, and calls a Masker for each affected
// cell. MaskerSpec and DetectorByName give the names configuration uses
// ("partial(0,4)", "email(keep_domain)", "hash", ...; "email", "card",
// "iban", "ssn", "phone", "jwt", "api_key", "private_key").
//
// # Implementing a Masker
//
// MaskerFunc adapts a function. The proxy calls Mask for each non-NULL
// cell of a masked column (and, for a rule with Detectors, of a cell they
// flag) while it relays the result, on the session's goroutine that reads
// from the server. A masker that cannot keep this contract must not be
// used: the promise that a masked value never reaches the client rests on
// it.
//
//   - Concurrency: Mask is called from many sessions at once; it must be
//     safe for concurrent use, and must not block: every row of the
//     result waits for it.
//   - Ownership: c.Value aliases the server's message: read it during the
//     call only, never keep or modify it. dst is the proxy's buffer, which
//     may already hold the rest of the row: append the masked value to it
//     and return the extended slice (out must be dst with the value
//     appended, never a slice of its own), and do not keep it.
//   - Values: the result must be a value the client can decode as c.Type
//     in c.Format, or NULL (null true; out is then ignored). Return nothing
//     of the input beyond what the masker says it keeps; for a type or
//     format it does not handle, return NULL, never the input.
//   - Errors: an error means the value could not be masked: the row is not
//     sent, and the session ends with FATAL XX000, whose detail names the
//     column; the error's text goes to the proxy's log only. Still, never
//     quote the value or a key in an error.
//   - A panic is treated as an error.
//
// There is no context: a masker computes, it does not wait.
//
// # Implementing a Detector
//
// The proxy calls Detect on the text of the cells a rule with Detectors
// may mask (see Rule.Detectors), on the same goroutine, to decide whether
// to mask each one; a value the detectors do not flag passes unmasked.
//
//   - Concurrency: Detect is called from many sessions at once; it must be
//     safe for concurrent use.
//   - Input: b is untrusted (any bytes, any length, invalid UTF-8): run in
//     time linear in len(b), allocate nothing, never panic (a panic is
//     treated as a masker's error). Read b during the call only; never
//     keep or modify it.
//   - Name is for configuration: the built-in detectors' names are the ones
//     DetectorByName accepts.
package mask
