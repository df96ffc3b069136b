package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
)

// The bench's employees have IDs base+1 … base+E, usernames bench<ID>,
// emails bench<ID>@bench.example and, with --roles K, one of the roles
// bench-r0 … bench-r<K-1> (round robin). Every process derives them from
// the same numbers, so nothing but the numbers travels between processes.
// The base keeps them apart from a real directory's IDs.

// employees describes the bench's directory.
type employees struct {
	Count int   `json:"count"`
	Base  int64 `json:"base"`
	Roles int   `json:"roles"`
}

// id returns the ID of the i-th employee (0-based).
func (e employees) id(i int) int64 { return e.Base + 1 + int64(i) }

// forStream returns the ID of the employee stream k belongs to: streams
// are dealt round robin, so with more streams than employees each employee
// holds several (tabs).
func (e employees) forStream(k int) int64 { return e.id(k % e.Count) }

// role returns the role of employee id ("" when roles are off).
func (e employees) role(id int64) string {
	if e.Roles <= 0 {
		return ""
	}
	return roleName(int((id - e.Base - 1) % int64(e.Roles)))
}

func roleName(k int) string { return "bench-r" + strconv.Itoa(k) }

func username(id int64) string { return "bench" + strconv.FormatInt(id, 10) }

func email(id int64) string { return username(id) + "@bench.example" }

// writeCSV writes the directory in `herald employees import` format.
func (e employees) writeCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "id,email,username,name,roles")
	for i := range e.Count {
		id := e.id(i)
		roles := "bench"
		if r := e.role(id); r != "" {
			roles += ";" + r
		}
		fmt.Fprintf(bw, "%d,%s,%s,Bench %d,%s\n", id, email(id), username(id), id, roles)
	}
	return bw.Flush()
}

// importCSV seeds a database directly with `herald employees import`,
// before the server starts: much faster than HTTP for big directories.
func importCSV(ctx context.Context, heraldBin, databaseURL, dir string, e employees) error {
	path := dir + "/employees.csv"
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write employees csv: %w", err)
	}
	if err := e.writeCSV(f); err != nil {
		f.Close()
		return fmt.Errorf("write employees csv: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write employees csv: %w", err)
	}
	out, err := commandOutput(ctx, heraldBin, []string{"DATABASE_URL=" + databaseURL}, "employees", "import", path)
	if err != nil {
		return fmt.Errorf("herald employees import: %w: %s", err, out)
	}
	return nil
}

// seedHTTP puts every employee through PUT /employees/{id} with a service
// token, concurrently, for a server the tool did not start.
func seedHTTP(ctx context.Context, client *http.Client, base, token string, e employees, concurrency int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i := range e.Count {
		id := e.id(i)
		g.Go(func() error {
			roles := `["bench"]`
			if r := e.role(id); r != "" {
				roles = `["bench","` + r + `"]`
			}
			body := fmt.Sprintf(`{"email":%q,"username":%q,"name":"Bench %d","roles":%s}`, email(id), username(id), id, roles)
			status, answer, err := doJSON(ctx, client, http.MethodPut, fmt.Sprintf("%s/employees/%d", base, id), token, []byte(body))
			if err != nil {
				return fmt.Errorf("seed employee %d: %w", id, err)
			}
			if status != http.StatusOK && status != http.StatusCreated {
				return fmt.Errorf("seed employee %d: %d %s", id, status, answer)
			}
			return nil
		})
	}
	return g.Wait()
}

// doJSON sends one request with a JSON body and a bearer token and returns
// the status and (the start of) the answer.
func doJSON(ctx context.Context, client *http.Client, method, url, token string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, answer, err
}
