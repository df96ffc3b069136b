package sse

import "time"

// SetFinalTimeout sets how long closing waits for a full socket to take a
// stream's ending, for the engine tests; it returns the undo.
func SetFinalTimeout(d time.Duration) (restore func()) {
	old := finalTimeoutNanos.Swap(int64(d))
	return func() { finalTimeoutNanos.Store(old) }
}
