package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/corp/herald/handlers/webpush"
)

// parser turns a row's text into its config field, or says what is wrong
// with the text. Empty text means the row is unset.
type parser struct {
	kind string // how --help names the value: addr, bool, duration, …
	raw  bool   // the text is used as given, spaces included (secrets)
	set  func(s string) error
}

// The parsers below are the table's vocabulary; each error message says
// what a good value looks like.

// checked stores the text in dst once check accepts it.
func checked(kind string, dst *string, check func(string) error) parser {
	return parser{kind: kind, set: func(s string) error {
		if err := check(s); err != nil {
			return err
		}
		*dst = s
		return nil
	}}
}

func address(dst *string) parser { return checked("addr", dst, checkAddress) }

func optionalAddress(dst *string) parser {
	return checked("addr", dst, func(s string) error {
		if s == "" {
			return nil
		}
		return checkAddress(s)
	})
}

func checkAddress(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. :3000 or 127.0.0.1:3000)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	return nil
}

func databaseURL(dst *string) parser {
	return parser{kind: "url", set: func(s string) error {
		switch {
		case strings.HasPrefix(s, "sqlite:"):
			if strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//") == "" {
				return errors.New("sqlite: needs a file path, e.g. sqlite:herald.db")
			}
		case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
			u, err := url.Parse(s)
			if err != nil {
				return fmt.Errorf("not a URL: %v", redactURLError(err))
			}
			if u.Host == "" && u.Query().Get("host") == "" {
				return errors.New("no host: postgres://USER:PASSWORD@HOST:5432/DATABASE")
			}
		default:
			return errors.New("must start with sqlite: (e.g. sqlite:herald.db) or postgres:// (e.g. postgres://herald@db:5432/herald)")
		}
		*dst = s
		return nil
	}}
}

// redactURLError keeps a URL's password out of a parse error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func origins(dst *[]string) parser {
	return parser{kind: "list", set: func(s string) error {
		var out, bad []string
		for _, o := range splitList(s) {
			u, err := url.Parse(o)
			switch {
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
				bad = append(bad, fmt.Sprintf("%q is not an origin like https://app.example.com", o))
			case strings.Contains(u.Host, "*"):
				bad = append(bad, fmt.Sprintf("%q: wildcards are not supported; list each origin", o))
			default:
				out = append(out, u.Scheme+"://"+strings.ToLower(u.Host))
			}
		}
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		*dst = out
		return nil
	}}
}

func issuerURL(dst *string) parser {
	return parser{kind: "url", set: func(s string) error {
		if err := checkHTTPURL(s); err != nil {
			return err
		}
		*dst = strings.TrimSuffix(s, "/")
		return nil
	}}
}

func httpURL(dst *string) parser { return checked("url", dst, checkHTTPURL) }

func checkHTTPURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

func list(dst *[]string) parser {
	return parser{kind: "list", set: func(s string) error { *dst = splitList(s); return nil }}
}

// secret takes the text as given and never repeats it in an error.
func secret(dst *string) parser {
	return parser{kind: "secret", raw: true, set: func(s string) error { *dst = s; return nil }}
}

func cookieName(dst *string) parser {
	return parser{kind: "name", set: func(s string) error {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool {
			return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r)
		}) {
			return fmt.Errorf("%q is not a cookie name (letters, digits, - and _)", s)
		}
		*dst = s
		return nil
	}}
}

func duration(dst *time.Duration, lo, hi time.Duration) parser {
	return parser{kind: "duration", set: func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 15s, 2m or 1h", s)
		}
		if d < lo || d > hi {
			return fmt.Errorf("%s is out of range: %s to %s", d, lo, hi)
		}
		*dst = d
		return nil
	}}
}

// retention is 0 (keep everything), a number of days ("90d") or a duration
// of an hour or more.
func retention(dst *time.Duration) parser {
	return parser{kind: "duration", set: func(s string) error {
		if s == "0" {
			*dst = 0
			return nil
		}
		bad := fmt.Errorf("%q is not 0 (keep everything), a number of days like 90d, or a duration of an hour or more like 720h", s)
		if days, ok := strings.CutSuffix(s, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil || n < 1 || n > 36500 {
				return bad
			}
			*dst = time.Duration(n) * 24 * time.Hour
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Hour {
			return bad
		}
		*dst = d
		return nil
	}}
}

// maxAge is 0 (never) or a duration of a minute or more.
func maxAge(dst *time.Duration) parser {
	return parser{kind: "duration", set: func(s string) error {
		if s == "0" {
			*dst = 0
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute {
			return fmt.Errorf("%q is not 0 (never) or a duration of a minute or more, like 1h", s)
		}
		*dst = d
		return nil
	}}
}

func logLevel(dst *slog.Level) parser {
	return parser{kind: "level", set: func(s string) error {
		var l slog.Level
		if err := l.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("%q is not debug, info, warn or error", s)
		}
		*dst = l
		return nil
	}}
}

func oneOf(dst *string, choices ...string) parser {
	return parser{kind: strings.Join(choices, "|"), set: func(s string) error {
		for _, c := range choices {
			if strings.EqualFold(s, c) {
				*dst = c
				return nil
			}
		}
		return fmt.Errorf("%q is not %s", s, strings.Join(choices, " or "))
	}}
}

// filePath names a file that must exist and be readable now, so a typo
// stops the start instead of the first TLS handshake.
func filePath(dst *string) parser {
	return parser{kind: "path", set: func(s string) error {
		if s != "" {
			f, err := os.Open(s)
			if err != nil {
				return fmt.Errorf("cannot read %s: %v", s, unwrapPathError(err))
			}
			f.Close()
		}
		*dst = s
		return nil
	}}
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// boolean accepts the usual spellings, in any case: 1, true, yes, on, t, y
// and 0, false, no, off, f, n. Anything else is an error, not false.
func boolean(dst *bool) parser {
	return parser{kind: "bool", set: func(s string) error {
		switch strings.ToLower(s) {
		case "1", "true", "yes", "on", "t", "y":
			*dst = true
		case "0", "false", "no", "off", "f", "n":
			*dst = false
		default:
			return fmt.Errorf("%q is not a boolean: use true or false (1/0, yes/no, on/off also work)", s)
		}
		return nil
	}}
}

// count is an integer in [lo, hi] (limits such as MAX_STREAMS).
func count(dst *int, lo, hi int) parser {
	return parser{kind: "int", set: func(s string) error {
		n, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is out of range: %d to %d", n, lo, hi)
		}
		*dst = n
		return nil
	}}
}

// rate is a number per second, 0 (off) or more (PUBLISH_RATE and friends).
func rate(dst *float64) parser {
	return parser{kind: "per-second", set: func(s string) error {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f != f || f > 1e9 {
			return fmt.Errorf("%q is not a rate: a number per second, 0 to turn it off", s)
		}
		*dst = f
		return nil
	}}
}

// prefixes is a comma-separated list of CIDRs; a bare address is one host.
func prefixes(dst *[]netip.Prefix) parser {
	return parser{kind: "cidrs", set: func(s string) error {
		var out []netip.Prefix
		var bad []string
		for _, p := range splitList(s) {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				a, aerr := netip.ParseAddr(p)
				if aerr != nil {
					bad = append(bad, fmt.Sprintf("%q is not a CIDR like 10.0.0.0/8 or an address", p))
					continue
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, pfx.Masked())
		}
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		*dst = out
		return nil
	}}
}

// vapidKey is the raw 32-byte P-256 private key, base64url; empty leaves
// Web Push off. Errors never repeat the key.
func vapidKey(dst **webpush.Key) parser {
	return parser{kind: "secret", raw: true, set: func(s string) error {
		if s = strings.TrimSpace(s); s == "" {
			*dst = nil
			return nil
		}
		k, err := webpush.ParseKey(s)
		if err != nil {
			return errors.New("not a VAPID private key: the raw 32-byte P-256 key, base64url (herald vapid prints a new pair)")
		}
		*dst = k
		return nil
	}}
}

// vapidSubject is a mailto: or https: URL push services may contact.
func vapidSubject(dst *string) parser {
	return checked("url", dst, func(s string) error {
		if s == "" {
			return nil
		}
		u, err := url.Parse(s)
		if err != nil || !(u.Scheme == "mailto" && u.Opaque != "" || u.Scheme == "https" && u.Host != "") {
			return fmt.Errorf("%q is not a mailto: or https: URL (e.g. mailto:ops@example.com)", s)
		}
		return nil
	})
}

// pushHosts is a comma-separated list of host names and *.domain patterns.
func pushHosts(dst *webpush.Hosts) parser {
	return parser{kind: "list", set: func(s string) error {
		var bad []string
		hosts := splitList(s)
		for _, h := range hosts {
			if err := webpush.CheckHostPattern(h); err != nil {
				bad = append(bad, err.Error())
			}
		}
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		*dst = hosts
		return nil
	}}
}
