// Package judge holds the parts of judging a statement that the proxy and
// policytest share: the gateway's own rules that no policy can lift, the
// fail-closed handling of a policy's answer, and the session names
// (SQL-level prepared statements, cursors, search path) that change what
// later statements mean.
package judge
