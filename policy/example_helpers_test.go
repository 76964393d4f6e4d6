package policy_test

// The plumbing of the examples.

import (
	"fmt"
	"testing"
)

// exampleT stands in for the *testing.T that a test gives
// policytest.New: an example has none. It prints what the test would
// report, so that the example's output shows it.
var exampleT testing.TB = exampleTB{}

type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                        {}
func (exampleTB) Errorf(format string, a ...any) { fmt.Printf("FAIL: "+format+"\n", a...) }
func (exampleTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (exampleTB) Error(args ...any)              { fmt.Println(append([]any{"FAIL:"}, args...)...) }
func (exampleTB) Fatal(args ...any)              { panic(fmt.Sprint(args...)) }
func (exampleTB) Logf(format string, a ...any)   { fmt.Printf(format+"\n", a...) }
func (exampleTB) Log(args ...any)                { fmt.Println(args...) }
