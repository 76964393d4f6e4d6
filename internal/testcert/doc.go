// Package testcert creates throwaway X.509 certificates for tests and demos.
//
// An [Authority] is a self-signed ECDSA P-256 certificate authority that
// lives only in memory until written out. It issues [Leaf] certificates that
// are valid for both TLS server and TLS client authentication, so one
// authority can back a whole test topology (server certificates, client
// certificates and the trust pool that verifies them).
//
// Nothing produced here is suitable for production: keys are generated on
// the fly, never protected by a passphrase, and the validity window is
// short (one hour in the past to thirty days in the future, so that small
// clock skews between processes do not matter).
package testcert
