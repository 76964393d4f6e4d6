package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxIdPResponse bounds what the gateway reads from an identity provider.
const maxIdPResponse = 1 << 20

// keySet is the issuer's JSON Web Key Set, cached. It implements go-oidc's
// KeySet. A token signed by a key the cache does not know makes it fetch
// the set again (the IdP rotated its keys), at most once per minRefresh, so
// that tokens with made-up key ids cannot make the gateway flood the IdP.
// Keys the IdP stopped publishing stop verifying at the next fetch; the
// whole set is fetched again when older than maxAge.
type keySet struct {
	url        string
	client     *http.Client
	algs       []jose.SignatureAlgorithm
	minRefresh time.Duration
	maxAge     time.Duration
	now        func() time.Time

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	fetched  time.Time     // last successful fetch
	tried    time.Time     // last attempt
	lastErr  error         // of the last attempt
	inFlight chan struct{} // closed when the fetch under way ends
}

var errUnknownKey = errors.New("the token's signing key is not in the issuer's key set")

// VerifySignature verifies the JWS and returns its payload.
func (ks *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, ks.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("a token must have exactly one signature")
	}
	hdr := jws.Signatures[0].Header
	keys, err := ks.current(ctx, false)
	if err != nil {
		return nil, err
	}
	if payload, ok, err := verifyWith(jws, hdr, keys); ok || err != nil {
		return payload, err
	}
	// Not verified by any known key: the IdP may have rotated.
	keys, err = ks.current(ctx, true)
	if err != nil {
		return nil, err
	}
	if payload, ok, err := verifyWith(jws, hdr, keys); ok || err != nil {
		return payload, err
	}
	return nil, errUnknownKey
}

// verifyWith tries the keys that match the header's key id (all keys when
// the token names none) and algorithm.
func verifyWith(jws *jose.JSONWebSignature, hdr jose.Header, keys []jose.JSONWebKey) ([]byte, bool, error) {
	for _, k := range keys {
		if hdr.KeyID != "" && k.KeyID != hdr.KeyID {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		payload, err := jws.Verify(k.Key)
		if err == nil {
			return payload, true, nil
		}
		if hdr.KeyID != "" {
			// The named key does not verify it: tampered or forged.
			return nil, false, errors.New("the token's signature does not verify")
		}
	}
	return nil, false, nil
}

// current returns the cached keys. It fetches the set when there are no
// keys, when they are older than maxAge, or when refresh is set (a token
// named a key the cache does not know), but never more than once per
// minRefresh, whatever the outcome of the last attempt: a failing IdP or
// made-up key ids cannot turn logins into a flood of requests. A failed
// fetch keeps the keys it had. The fetch runs on its own context, so a
// client that gives up does not make it fail for the others; callers stop
// waiting when their ctx ends.
func (ks *keySet) current(ctx context.Context, refresh bool) ([]jose.JSONWebKey, error) {
	ks.mu.Lock()
	now := ks.now()
	need := ks.keys == nil || now.Sub(ks.fetched) >= ks.maxAge || refresh
	wait := ks.inFlight
	if need && wait == nil && (ks.tried.IsZero() || now.Sub(ks.tried) >= ks.minRefresh) {
		wait = make(chan struct{})
		ks.inFlight, ks.tried = wait, now
		go ks.refresh(ctx, wait)
	}
	ks.mu.Unlock()
	if need && wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.keys == nil {
		return nil, fmt.Errorf("fetching the issuer's keys: %w", ks.lastErr)
	}
	return ks.keys, nil
}

// refresh fetches the key set and closes done.
func (ks *keySet) refresh(ctx context.Context, done chan struct{}) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idpTimeout)
	defer cancel()
	keys, err := ks.fetch(fctx)
	ks.mu.Lock()
	if err == nil {
		ks.keys, ks.fetched, ks.lastErr = keys, ks.now(), nil
	} else {
		ks.lastErr = err
	}
	ks.inFlight = nil
	ks.mu.Unlock()
	close(done)
}

// fetch downloads the key set and keeps the public signing keys of the
// types the gateway verifies with.
func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIdPResponse))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", ks.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("invalid key set from %s: %w", ks.url, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			keys = append(keys, k)
		}
		// Symmetric and private keys are never used: a published "oct"
		// key would let anyone who reads the set forge tokens.
	}
	return keys, nil
}
