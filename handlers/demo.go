package handlers

import (
	_ "embed"
	"html/template"
	"net/http"
)

// Demo configures the demo page served at / with --dev.
type Demo struct {
	// Users are the demo employees; Token mints a fresh token for one.
	Users []DemoUser
}

// DemoUser is one selectable identity of the demo page.
type DemoUser struct {
	ID        int64
	Login     string
	Name      string
	Roles     []string
	Publisher bool
	Token     func() (string, error)
}

//go:embed demo/index.html
var demoHTML string

var demoTemplate = template.Must(template.New("demo").Parse(demoHTML))

type demoView struct {
	ID        int64    `json:"id"`
	Login     string   `json:"login"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	Publisher bool     `json:"publisher"`
	Token     string   `json:"token"`
}

// demoPage serves the dev-only demo page. It carries freshly minted tokens
// for the demo employees: it exists only with --dev.
func (h *Handler) demoPage(w http.ResponseWriter, r *http.Request) {
	users := make([]demoView, 0, len(h.demo.Users))
	for _, u := range h.demo.Users {
		tok, err := u.Token()
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		users = append(users, demoView{ID: u.ID, Login: u.Login, Name: u.Name, Roles: u.Roles, Publisher: u.Publisher, Token: tok})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = demoTemplate.Execute(w, map[string]any{"Users": users})
}
