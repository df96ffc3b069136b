package auth

// WithoutVerifiedCache turns off the cache of verified tokens, for
// benchmarks of the full verification (a new stream's new token).
func WithoutVerifiedCache(a *Authenticator) { a.verified = nil }
