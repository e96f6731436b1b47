package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/optin"
)

// TestLiveEventsAcrossProcesses runs two `herald serve` processes on one
// database: a message sent through one reaches an event stream held by
// the other, and a stream that reconnects to the first process with the
// last id it saw receives what it missed, each event once.
func TestLiveEventsAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := heraldBinary(t)
	dbURL := freshDatabaseURL(t)
	addrA, addrB := freePort(t), freePort(t)
	env := []string{"HERALD_DATABASE_URL=" + dbURL, "HERALD_SECRET=" + strings.Repeat("l", 40), "HERALD_RATE_LIMIT_IP=100000"}
	cmd := exec.Command(bin, "migrate")
	cmd.Env = append(cmd.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "apikey", "create", "--name", "live test", "--role", "admin")
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("apikey: %v", err)
	}
	key := strings.TrimSpace(string(out))
	a := start(t, bin, append(env, "HERALD_LISTEN="+addrA), "serve", "--api-only")
	b := start(t, bin, append(env, "HERALD_LISTEN="+addrB), "serve", "--api-only")
	waitHTTP(t, "http://"+addrA+"/readyz", a)
	waitHTTP(t, "http://"+addrB+"/readyz", b)

	call := func(addr, method, path, auth string, body any) map[string]any {
		t.Helper()
		var r io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			r = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, r)
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 || json.Unmarshal(raw, &m) != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		return m
	}
	app := call(addrA, http.MethodGet, "/api/v1/apps/default", key, nil)
	call(addrA, http.MethodPost, "/api/v1/subscribers", key, map[string]any{"external_id": "live-1"})
	session := call(addrA, http.MethodPost, "/public/v1/conversation/session", "", map[string]any{"app": "default",
		"external_id": "live-1", "identity_hmac": optin.IdentityHMAC(app["identity_secret"].(string), "live-1")})
	token := session["token"].(string)
	say := func(text string) {
		call(addrA, http.MethodPost, "/public/v1/conversation/messages", token, map[string]any{"body": text})
	}

	type event struct{ id, body string }
	stream := func(addr, lastID string) (<-chan event, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %v %v", resp, err)
		}
		ch := make(chan event, 100)
		go func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			var id, name string
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "id: "):
					id = line[4:]
				case strings.HasPrefix(line, "event: "):
					name = line[7:]
				case strings.HasPrefix(line, "data: ") && name == "conversation.message":
					var e struct {
						Data struct {
							Message struct{ Body string } `json:"message"`
						} `json:"data"`
					}
					json.Unmarshal([]byte(line[6:]), &e)
					ch <- event{id: id, body: e.Data.Message.Body}
				}
			}
		}()
		t.Cleanup(cancel)
		return ch, cancel
	}
	next := func(ch <-chan event) event {
		t.Helper()
		select {
		case e := <-ch:
			return e
		case <-time.After(15 * time.Second):
			t.Fatal("no event within 15 s")
			return event{}
		}
	}

	onB, closeB := stream(addrB, "")
	say("one")
	first := next(onB)
	if first.body != "one" {
		t.Fatalf("process B's stream got %+v", first)
	}
	closeB()
	say("two")
	say("three")
	onA, _ := stream(addrA, first.id)
	var got []string
	for range 2 {
		got = append(got, next(onA).body)
	}
	say("four")
	got = append(got, next(onA).body)
	if fmt.Sprint(got) != "[two three four]" {
		t.Fatalf("resumed on process A with %v, want [two three four]", got)
	}
	select {
	case e := <-onA:
		t.Fatalf("an event twice: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
}
