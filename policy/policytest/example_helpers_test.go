package policytest_test

// The plumbing of the examples.

import (
	"fmt"
	"testing"
)

// exampleT stands in for the *testing.T a test gives New: an example has
// none. It prints what the test would report, so that the example's
// output shows it.
var exampleT testing.TB = exampleTB{}

type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                        {}
func (exampleTB) Errorf(format string, a ...any) { fmt.Printf("FAIL: "+format+"\n", a...) }
func (exampleTB) Fatalf(format string, a ...any) { fmt.Printf("FATAL: "+format+"\n", a...) }
