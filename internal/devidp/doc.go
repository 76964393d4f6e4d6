// Package devidp is a development and test OpenID Provider. It is NEVER for
// production: it runs on loopback over plain HTTP, keeps every client, user,
// key and token in memory, and offers deliberate back doors (forged tokens,
// dev-only person logins) for tests and for the demo.
//
// The provider is a real OP built with github.com/zitadel/oidc/v3/pkg/op and
// served over real HTTP on 127.0.0.1 (random port); its issuer is
// http://127.0.0.1:<port>. It serves discovery, JWKS, the token endpoint and
// RFC 7662 introspection. Access tokens are RS256-signed JWTs carrying iss,
// sub, aud, exp, iat, nbf, jti, client_id, groups, name and email.
//
// Grants at the token endpoint:
//
//   - client_credentials: a [Client] (workload or agent) gets a token whose
//     sub is its client ID.
//   - urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693): an
//     authenticated client exchanges a subject_token (and optionally an
//     actor_token) issued by this OP. The result keeps the subject's sub,
//     groups, name and email, and gets act = {sub: <actor>, act: <the
//     subject token's act>}: the newest actor outermost (RFC 8693 §4.1).
//     When the request names no audience, the configured audience is used.
//   - urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523 JWT profile):
//     how a person ([User]) gets a token. [Provider.PersonToken] signs a
//     short-lived assertion (iss = sub = the user's subject, aud = issuer)
//     with a dev-only ES256 key that only this process holds, and redeems
//     it at the token endpoint; the OP then mints the access token through
//     its ordinary token code path. The issued token's aud is the
//     configured audience, not the assertion's.
package devidp
