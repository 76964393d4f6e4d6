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
// A Masker gets one non-NULL cell, with its type OID and wire format, and
// appends the masked value (or reports NULL). It must return a value the
// client can decode as the column's type in that format, or NULL; it must
// return nothing of its input beyond what its documentation says it keeps;
// an error refuses the statement (fail closed). It is called concurrently,
// must not block, and must not keep or modify the slices it is given.
//
// # Implementing a Detector
//
// A Detector reports whether a value contains what it looks for. It reads
// untrusted bytes: linear time, no allocation, no panic, on any input; it
// must not keep or modify them.
package mask
