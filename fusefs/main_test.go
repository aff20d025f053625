package fusefs

import (
	"testing"

	"go.uber.org/goleak"
)

// Every mount a test starts is unmounted and its goroutines gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
