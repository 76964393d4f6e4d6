// Command agent is pgwarden's nested-agent story:
//
//	go run ./examples/agent
//
// A parent agent acts for a person, alice. It embeds a pgwarden gateway
// (proxy.Proxy) on a loopback port, obtains a delegated token for a child
// agent by RFC 8693 token exchange at the identity provider, and starts
// the child as a separate process. The child connects through the
// embedded gateway with that token as its password and never sees a
// database credential: the gateway logs in upstream with a role made for
// that one session (credstore.Dynamic). Every statement of the child is
// judged by a policy (read only, customers' e-mail addresses masked,
// writes to orders held until a person approves them) and recorded with
// the whole delegation chain alice → parent-agent → child-agent in a
// tamper-evident journal. When the parent revokes itself
// (Proxy.Revoke), the child's session ends with FATAL 28000, the child's
// role is dropped, and the child exits. The parent then replays and
// verifies the recording.
//
// One binary plays both parts: started plainly it is the parent, which
// starts itself again with PGWARDEN_AGENT_ROLE=child for the child (see
// child.go). The child gets the gateway's address, the CA certificate's
// path and, on its standard input, its token: nothing else.
//
// The world the story runs in (a PostgreSQL cluster, an OpenID provider,
// a certificate authority) is made up on the spot by pgwarden's internal
// test packages; in production they are your database, your identity
// provider and your certificates. README.md walks through the output.
package main
