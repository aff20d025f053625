package routing

import (
	"io"
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Process-wide background workers of libp2p's dependencies, started once.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}
