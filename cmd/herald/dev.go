package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/store"
)

// devTokenTTL is the lifetime of tokens minted for --dev.
const devTokenTTL = 12 * time.Hour

// demoEmployees are seeded by --dev.
var demoEmployees = []store.Employee{
	{ID: 1, Email: "ana@corp.example", Username: "ana", Name: "Ana Admin", Roles: []string{"admin"}},
	{ID: 2, Email: "ben@corp.example", Username: "ben", Name: "Ben User", Roles: []string{"support"}},
	{ID: 3, Email: "cara@corp.example", Username: "cara", Name: "Cara User", Roles: []string{"support"}},
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// devSecretPath is where --dev keeps its generated secret: beside the SQLite
// file, so tokens survive restarts. PostgreSQL has no file to sit beside.
func devSecretPath(dsn string) (string, bool) {
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		return "", false
	}
	return strings.TrimPrefix(path, "//") + ".jwt-secret", true
}

// prepareDev gives --dev its secret, unless JWT_SECRET is set: the one kept
// beside the database, made on the first start. It warns when the demo page,
// which hands out an admin token, is reachable beyond this machine.
func prepareDev(cfg *config, addr net.Addr, log *slog.Logger) error {
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		log.Warn("--dev listens beyond this machine: anyone who reaches it gets the demo page's admin token and may publish; leave HTTP_ADDR unset to listen on 127.0.0.1 only", "addr", addr.String())
	}
	if cfg.JWTSecret != "" {
		return nil
	}
	path, ok := devSecretPath(cfg.DatabaseURL)
	if !ok {
		cfg.JWTSecret = randomSecret()
		log.Warn("--dev on PostgreSQL: the generated secret lasts until this process ends, and so do its tokens; set JWT_SECRET to keep them")
		return nil
	}
	secret, created, err := loadOrCreateSecret(path)
	if err != nil {
		return fmt.Errorf("--dev: %w", err)
	}
	cfg.JWTSecret = secret
	if created {
		log.Info("--dev: generated a secret for tokens; kept for the next starts", "file", path)
	} else {
		log.Info("--dev: tokens are signed with the secret kept beside the database", "file", path)
	}
	return nil
}

// loadOrCreateSecret reads the secret at path, or makes one there that only
// this user may read (0600).
func loadOrCreateSecret(path string) (secret string, created bool, err error) {
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			return checkSecretFile(path, b)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", false, fmt.Errorf("read the secret file: %w", err)
		}
		secret = randomSecret()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // made meanwhile by another start: read it
		}
		if err != nil {
			return "", false, fmt.Errorf("create the secret file (does its directory exist, and may this user write there?): %w", err)
		}
		_, err = f.WriteString(secret + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return "", false, fmt.Errorf("write the secret file %s: %w", path, err)
		}
		return secret, true, nil
	}
	return "", false, fmt.Errorf("the secret file %s keeps changing", path)
}

func checkSecretFile(path string, b []byte) (string, bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", false, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", false, fmt.Errorf("the secret file %s may be read by others (mode %04o): chmod 600 %s, or delete it for a new secret", path, fi.Mode().Perm(), path)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < auth.MinSecretBytes {
		return "", false, fmt.Errorf("the secret file %s holds fewer than %d bytes: delete it for a new secret", path, auth.MinSecretBytes)
	}
	return secret, false, nil
}

// seedDemo puts the demo employees and returns the demo page's users.
func seedDemo(ctx context.Context, st store.Store, secret []byte) (*handlers.Demo, error) {
	demo := &handlers.Demo{}
	for _, e := range demoEmployees {
		if _, _, err := st.PutEmployee(ctx, e); err != nil {
			return nil, fmt.Errorf("--dev: seed demo employee %s: %w", e.Username, err)
		}
		login := e.Username
		demo.Users = append(demo.Users, handlers.DemoUser{
			ID: e.ID, Login: login, Name: e.Name, Roles: e.Roles, Publisher: slices.Contains(e.Roles, "admin"),
			Token: func() (string, error) {
				return auth.MintHS256(secret, auth.TokenSpec{User: login, TTL: devTokenTTL}, time.Now())
			},
		})
	}
	return demo, nil
}

// cliCommand is how the banner tells the user to run this binary: go run
// when it was built by go run (the binary is gone when it stops), else the
// binary as it can be typed here.
func cliCommand() string {
	exe, err := os.Executable()
	if err != nil || strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/herald"
	}
	if onPath, err := exec.LookPath("herald"); err == nil && sameFile(onPath, exe) {
		return "herald"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
			return "./" + rel
		}
	}
	return exe
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// printDevBanner prints ready-to-paste commands with minted tokens.
func printDevBanner(w io.Writer, cfg config, addr net.Addr, https bool, demo *handlers.Demo) {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	base := scheme + "://" + net.JoinHostPort(host, port)
	where := "this machine only (127.0.0.1); set HTTP_ADDR=:" + port + " to listen on every interface"
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		where = addr.String() + ": beyond this machine (the demo page hands out an admin token)"
	}
	survive := " (until this process ends: set JWT_SECRET to keep them)"
	if _, kept := devSecretPath(cfg.DatabaseURL); kept || cfg.explicit["JWT_SECRET"] {
		survive = " and survive restarts"
	}
	ana, _ := demo.Users[0].Token()
	ben, _ := demo.Users[1].Token()
	fmt.Fprintf(w, `
Herald is running in development mode on %[1]s
  listening:   %[6]s
  demo page:   %[1]s/   (pick an employee, publish, watch the stream)
  API docs:    %[1]s/docs

Demo employees: 1 ana (admin: may publish), 2 ben and 3 cara (role support). Tokens below last %[2]s%[8]s.

# 1. Open Ben's stream (leave it running):
curl -N -H 'Authorization: Bearer %[5]s' %[1]s/events

# 2. In another terminal, publish to Ben as Ana:
curl -X POST %[1]s/notifications -H 'Authorization: Bearer %[4]s' -H 'Content-Type: application/json' -d '{"to":{"employees":[2]},"type":"demo.hello","title":"Hello Ben","data":{"from":"ana"}}'

# 3. Ben's inbox:
curl -H 'Authorization: Bearer %[5]s' %[1]s/notifications

# The same with Herald's command line:
JWT_SECRET='%[3]s' HERALD_URL=%[1]s %[7]s send --employee 2 --title 'Hello again'
JWT_SECRET='%[3]s' %[7]s token --user cara

`, base, fmt.Sprintf("%.0f hours", devTokenTTL.Hours()), cfg.JWTSecret, ana, ben, where, cliCommand(), survive)
}
