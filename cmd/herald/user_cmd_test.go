package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFirstAdminSignsIn: what `make run` does on an empty database. `herald
// user create --if-none` prints a one-time link, and nothing the second
// time; the link sets a password and signs in; the session works on the
// API; the operator's change is in the audit log.
func TestFirstAdminSignsIn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := heraldBinary(t)
	dbURL := freshDatabaseURL(t)
	apiAddr := freePort(t)
	env := []string{"HERALD_DATABASE_URL=" + dbURL, "HERALD_SECRET=" + strings.Repeat("s", 40), "HERALD_LISTEN=" + apiAddr}
	run := func(stdin string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	if _, stderr, err := run("", "migrate"); err != nil {
		t.Fatalf("migrate: %v %s", err, stderr)
	}
	create := []string{"user", "create", "--email", "first@example.com", "--name", "First Admin", "--role", "admin", "--if-none"}
	link, stderr, err := run("", create...)
	link = strings.TrimSpace(link)
	if err != nil || !strings.HasPrefix(link, "http://"+apiAddr+"/access/") || !strings.Contains(stderr, "works once") {
		t.Fatalf("user create: %q %q %v", link, stderr, err)
	}
	if again, _, err := run("", create...); err != nil || again != "" {
		t.Fatalf("user create --if-none a second time: %q %v", again, err)
	}
	// Hostile input is refused with the field's name, and nothing is made.
	if _, stderr, err := run("", "user", "create", "--email", "not-an-address", "--name", "X", "--role", "admin"); err == nil ||
		!strings.Contains(stderr, "email") {
		t.Fatalf("bad email: %v %s", err, stderr)
	}
	if _, stderr, err := run("short\n", "user", "create", "--email", "m@example.com", "--name", "M", "--role", "marketer", "--password-stdin"); err == nil ||
		!strings.Contains(stderr, "password") {
		t.Fatalf("short password: %v %s", err, stderr)
	}
	if out, stderr, err := run("a long enough password\n", "user", "create", "--email", "m@example.com", "--name", "M", "--role", "marketer", "--password-stdin"); err != nil ||
		!strings.Contains(out, "created marketer m@example.com") {
		t.Fatalf("user with a password: %v %s %s", err, out, stderr)
	}
	if out, _, err := run("", "user", "list"); err != nil || !strings.Contains(out, "first@example.com") || !strings.Contains(out, "m@example.com") {
		t.Fatalf("user list: %v %s", err, out)
	}

	api := start(t, bin, env, "serve", "--api-only")
	waitHTTP(t, "http://"+apiAddr+"/readyz", api)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "first@example.com") {
		t.Fatalf("the link's page: %d %s", resp.StatusCode, page)
	}
	const password = "first admin's long password"
	resp, err = client.PostForm(link, url.Values{"password": {password}, "password2": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "herald_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.HttpOnly {
		t.Fatalf("set password: %d %v", resp.StatusCode, resp.Cookies())
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+apiAddr+"/api/v1/audit-log?actor_type=operator", nil)
	req.AddCookie(session)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Items []struct {
			Action     string `json:"action"`
			ActorLabel string `json:"actor_label"`
		} `json:"items"`
	}
	json.NewDecoder(resp.Body).Decode(&log)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(log.Items) != 2 || log.Items[0].Action != "user.create" {
		t.Fatalf("audit log as the first admin: %d %+v", resp.StatusCode, log)
	}
	// The link is spent.
	resp, err = client.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("a used link: %d", resp.StatusCode)
	}
}
