package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"slices"
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

// seedDemo puts the demo employees and returns the demo page's users.
func seedDemo(ctx context.Context, st store.Store, secret []byte) (*handlers.Demo, error) {
	demo := &handlers.Demo{}
	for _, e := range demoEmployees {
		if _, _, err := st.PutEmployee(ctx, e); err != nil {
			return nil, fmt.Errorf("seed demo employee %s: %w", e.Username, err)
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

// printDevBanner prints ready-to-paste commands with minted tokens.
func printDevBanner(w io.Writer, addr, secret string, demo *handlers.Demo) {
	_, port, _ := net.SplitHostPort(addr)
	base := "http://localhost:" + port
	ana, _ := demo.Users[0].Token()
	ben, _ := demo.Users[1].Token()
	fmt.Fprintf(w, `
Herald is running in development mode on %[1]s
  demo page:   %[1]s/   (pick an employee, publish, watch the stream)
  API docs:    %[1]s/docs

Demo employees: 1 ana (admin: may publish), 2 ben and 3 cara (role support). Tokens below last %[2]s.
To mint more: export JWT_SECRET='%[3]s'; herald token --user ben

# 1. Open Ben's stream (leave it running):
curl -N -H 'Authorization: Bearer %[5]s' %[1]s/events

# 2. In another terminal, publish to Ben as Ana:
curl -X POST %[1]s/notifications -H 'Authorization: Bearer %[4]s' -H 'Content-Type: application/json' -d '{"to":{"employees":[2]},"type":"demo.hello","title":"Hello Ben","data":{"from":"ana"}}'

# 3. Ben's inbox:
curl -H 'Authorization: Bearer %[5]s' %[1]s/notifications

`, base, devTokenTTL, secret, ana, ben)
}
