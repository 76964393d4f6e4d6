package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getenv(roleEnv) == roleChild {
		os.Exit(childMain())
	}
	os.Exit(parentMain())
}

// parentMain tells the story in a temporary directory and removes
// everything afterwards, also after Ctrl-C (a second Ctrl-C stops at
// once; the database then goes with the process, see pgtest).
func parentMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "pgwarden-agent-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent: %v\n", err)
		return 1
	}
	fmt.Println("pgwarden: the nested-agent story (alice → parent-agent → child-agent)")
	_, err = runStory(ctx, os.Stdout, dir)
	err = errors.Join(err, os.RemoveAll(dir))
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "\nagent: interrupted; the child, the gateway, the database and the files are gone")
		return 130
	case err != nil:
		fmt.Fprintf(os.Stderr, "agent: %v\n", err)
		return 1
	}
	fmt.Printf("\nDone: the gateway, the database and the identity provider are stopped, and %s is removed.\n", dir)
	return 0
}
