package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pgwarden/pgwarden/session"
)

// narrator prints the story: numbered steps, the parent's remarks under
// them, and the child's output relayed line by line. The parent, the
// child's relay and the approval desk print from their own goroutines;
// the narrator keeps their lines whole. It never prints a secret: there
// is none in what it is given.
type narrator struct {
	mu   sync.Mutex
	w    io.Writer
	step int
}

func newNarrator(w io.Writer) *narrator { return &narrator{w: w} }

// Step starts the next numbered step.
func (n *narrator) Step(format string, a ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.step++
	fmt.Fprintf(n.w, "\n%d. %s\n", n.step, fmt.Sprintf(format, a...))
}

// Say prints a remark of the parent's under the current step.
func (n *narrator) Say(format string, a ...any) {
	n.print("   ", fmt.Sprintf(format, a...))
}

// Child prints a line the child wrote.
func (n *narrator) Child(line string) {
	n.print("   child │ ", line)
}

func (n *narrator) print(prefix, text string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for line := range strings.SplitSeq(text, "\n") {
		fmt.Fprintf(n.w, "%s%s\n", prefix, line)
	}
}

// chainOf returns the delegation chain of id, person first:
// ["alice", "parent-agent", "child-agent"].
func chainOf(id session.Identity) []string {
	out := []string{id.Subject}
	for _, a := range id.Chain {
		out = append(out, a.Subject)
	}
	return out
}

// arrows renders a chain for people: "alice → parent-agent".
func arrows(chain []string) string { return strings.Join(chain, " → ") }
