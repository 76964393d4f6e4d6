// Package mask will hold the maskers (redact, partial, email, keyed hash,
// null, format-preserving) and content detectors that hide sensitive values
// in results. It knows nothing of the wire: the proxy applies masks to the
// result cells a policy marks.
//
// The package is empty in this release: masking is not implemented yet, and
// the gateway never claims to mask.
package mask
