package postgres

// SweepLock is the advisory lock key of the retention sweep (tests).
const SweepLock = sweepLock
