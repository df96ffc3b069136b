//go:build !unix

package sqlite

import "os"

// lockFile opens path without locking it: outside Unix the instance lock is
// not enforced (README, SQLite: one instance).
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
