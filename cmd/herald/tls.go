package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often the certificate files are looked at for a
// renewal (a stat each; reloaded only when one changed).
const certCheckInterval = time.Minute

// certFiles serves the certificate of TLS_CERT_FILE and TLS_KEY_FILE and
// reloads it when the files change, so a renewed certificate is used
// without a restart.
type certFiles struct {
	certPath, keyPath string
	log               *slog.Logger

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	stamp   string // the files' sizes and modification times when loaded
	checked time.Time
}

// newTLSConfig loads the key pair and returns the TLS configuration of
// Herald's listener (HTTP/2 is offered by the server's protocols).
func newTLSConfig(certPath, keyPath string, log *slog.Logger) (*tls.Config, error) {
	c := &certFiles{certPath: certPath, keyPath: keyPath, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}, nil
}

func (c *certFiles) filesStamp() string {
	var s string
	for _, p := range []string{c.certPath, c.keyPath} {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%d@%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return s
}

// load reads the key pair; the caller holds mu or owns c.
func (c *certFiles) load() error {
	stamp := c.filesStamp()
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("TLS_CERT_FILE=%s, TLS_KEY_FILE=%s: %w (both PEM; the certificate file may hold the chain)", c.certPath, c.keyPath, err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return nil
}

func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) >= certCheckInterval {
		c.checked = time.Now()
		if c.filesStamp() != c.stamp {
			if err := c.load(); err != nil {
				c.log.Warn("TLS certificate files changed but do not load; serving the previous certificate", "err", err)
			} else {
				c.log.Info("TLS certificate reloaded", "file", c.certPath)
			}
		}
	}
	return c.cert, nil
}
