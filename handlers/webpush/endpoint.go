package webpush

import (
	"crypto/ecdh"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// MaxSubscriptions is how many subscriptions an employee keeps; a new one
// beyond it replaces the oldest by creation.
const MaxSubscriptions = 10

// MaxEndpointLength bounds an endpoint URL (the browsers' are a few
// hundred characters).
const MaxEndpointLength = 2048

// DefaultHosts are the push services of the browsers (PUSH_HOSTS' default):
// Chrome and Edge's FCM, Firefox's autopush, Windows' WNS, Safari's.
var DefaultHosts = []string{
	"fcm.googleapis.com",
	"updates.push.services.mozilla.com",
	"*.notify.windows.com",
	"*.push.apple.com",
}

// Hosts is a list of push service host patterns: a host name, or
// "*.example.com" for every subdomain of example.com (not example.com
// itself). Ports are not part of a pattern.
type Hosts []string

// CheckHostPattern says what is wrong with a PUSH_HOSTS entry.
func CheckHostPattern(p string) error {
	name := strings.TrimPrefix(p, "*.")
	switch {
	case name == "" || strings.ContainsAny(name, "*/:@ ?#[]"):
		return fmt.Errorf("%q is not a host name or *.domain (no scheme, port or path)", p)
	case strings.HasPrefix(p, "*.") && !strings.Contains(name, ".") && net.ParseIP(name) == nil:
		return fmt.Errorf("%q would match every subdomain of a top-level domain", p)
	}
	return nil
}

// Allows reports whether host (without port) matches a pattern.
func (hs Hosts) Allows(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range hs {
		p = strings.ToLower(p)
		if suffix, ok := strings.CutPrefix(p, "*"); ok {
			if len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// CheckEndpoint refuses an endpoint that is not https on an allowed host,
// so a subscription cannot aim Herald's requests at internal addresses.
func (hs Hosts) CheckEndpoint(endpoint string) error {
	if len(endpoint) > MaxEndpointLength {
		return fmt.Errorf("longer than %d characters", MaxEndpointLength)
	}
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return errors.New("must be an absolute https URL")
	case u.Scheme != "https":
		return errors.New("must be an https URL")
	case u.User != nil:
		return errors.New("must not carry a user name or password")
	case u.Fragment != "":
		return errors.New("must not carry a fragment")
	case !hs.Allows(u.Hostname()):
		return fmt.Errorf("host %q is not a push service this server calls (PUSH_HOSTS)", u.Hostname())
	}
	return nil
}

// CheckKeys decodes and checks a subscription's keys: p256dh a P-256 point
// (65 bytes, uncompressed), auth 16 bytes. field names the bad one.
func CheckKeys(p256dh, auth string) (pub, secret []byte, field string, err error) {
	pub, err = DecodeKey(p256dh)
	if err != nil || len(pub) != PublicKeySize {
		return nil, nil, "keys.p256dh", fmt.Errorf("must be a %d-byte uncompressed P-256 point, base64url", PublicKeySize)
	}
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return nil, nil, "keys.p256dh", errors.New("is not a point of the P-256 curve")
	}
	secret, err = DecodeKey(auth)
	if err != nil || len(secret) != AuthSize {
		return nil, nil, "keys.auth", fmt.Errorf("must be %d bytes, base64url", AuthSize)
	}
	return pub, secret, "", nil
}
