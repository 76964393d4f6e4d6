// Package scramhash turns passwords into SCRAM-SHA-256 verifiers in
// PostgreSQL's pg_authid format, so that neither the gateway's
// configuration nor a CREATE ROLE statement (which the server may log) has
// to hold a password.
package scramhash

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"
)

// Iterations is the PBKDF2 iteration count, PostgreSQL's default
// (scram_iterations).
const Iterations = 4096

// Credentials derives the stored SCRAM-SHA-256 credentials of password with
// a random salt, normalising it with SASLprep as PostgreSQL does (and using
// it as is when SASLprep rejects it, as PostgreSQL does too).
func Credentials(password string) (scram.StoredCredentials, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return scram.StoredCredentials{}, err
	}
	client, err := scram.SHA256.NewClient("", password, "")
	if err != nil {
		client, err = scram.SHA256.NewClientUnprepped("", password, "")
		if err != nil {
			return scram.StoredCredentials{}, errors.New("password cannot be used with SCRAM")
		}
	}
	return client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: Iterations})
}

// Format renders credentials as PostgreSQL stores them:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
func Format(cred scram.StoredCredentials) string {
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", cred.Iters, enc([]byte(cred.Salt)),
		enc(cred.StoredKey), enc(cred.ServerKey))
}

// Verifier returns the verifier of password with a random salt.
func Verifier(password string) (string, error) {
	cred, err := Credentials(password)
	if err != nil {
		return "", err
	}
	return Format(cred), nil
}
