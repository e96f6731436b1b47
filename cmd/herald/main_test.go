package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database/dbtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// heraldBinary builds the command once per test run.
func heraldBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "herald-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "herald")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// freshDatabaseURL makes a database for this test and drops it afterwards.
func freshDatabaseURL(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "herald_cmd_" + hex.EncodeToString(b)
	base := dbtest.URL()
	// Herald's processes open at most 20 connections each here (48 by
	// default): the package's tests run several at once beside other
	// packages, within the server's max_connections.
	url := base[:strings.LastIndex(base, "/")] + "/" + name + "?sslmode=disable&pool_max_conns=20"
	t.Cleanup(func() {
		cfg, _ := pgx.ParseConfig(url)
		delete(cfg.RuntimeParams, "pool_max_conns")
		cfg.Database = "postgres"
		if conn, err := pgx.ConnectConfig(context.Background(), cfg); err == nil {
			conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(context.Background())
		}
	})
	return url
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type process struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// syncBuffer is the output of a process, read by the test while the
// process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), out: &syncBuffer{}}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

func waitHTTP(t *testing.T, url string, p *process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200; output:\n%s", url, p.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHeraldProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := heraldBinary(t)
	dbURL := freshDatabaseURL(t)
	apiAddr, simAddr := freePort(t), freePort(t)
	env := []string{"HERALD_DATABASE_URL=" + dbURL, "HERALD_SECRET=" + strings.Repeat("k", 40), "HERALD_LISTEN=" + apiAddr}

	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(out), "herald ") {
		t.Fatalf("version: %q %v", out, err)
	}
	// A bad setting stops the process with the variable's name.
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "HERALD_DATABASE_URL="+dbURL, "HERALD_SECRET=short")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "HERALD_SECRET") {
		t.Fatalf("serve with a short secret: %v %s", err, out)
	}
	for range 2 { // migrate creates the database, and is idempotent
		cmd := exec.Command(bin, "migrate")
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
	}

	workers := start(t, bin, append(env, "HERALD_SIMULATOR=true", "HERALD_SIMULATOR_LISTEN="+simAddr), "serve", "--workers-only", "--seed-demo")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(workers.out.String(), "River client started") {
		if time.Now().After(deadline) {
			t.Fatalf("workers did not start:\n%s", workers.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	api := start(t, bin, env, "serve", "--api-only")
	waitHTTP(t, "http://"+apiAddr+"/readyz", api)

	token := "sim:process-test-device-000001"
	resp, err := http.Post("http://"+apiAddr+"/public/v1/subscribe", "application/json",
		strings.NewReader(`{"list":"news","device":{"platform":"fcm","token":"`+token+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("subscribe through the API process: %d %s", resp.StatusCode, body)
	}
	// The worker process sends the confirmation through its simulator.
	sim := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline = time.Now().Add(30 * time.Second)
	for {
		resp, err := sim.Get(fmt.Sprintf("https://%s/sim/received?platform=fcm&token=%s", simAddr, token))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "optin_confirm") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no confirmation delivered; workers:\n%s", workers.out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// SIGTERM: both stop gracefully and exit 0.
	for _, p := range []*process{api, workers} {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil || !strings.Contains(p.out.String(), "shutting down") {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out)
			}
		case <-time.After(40 * time.Second):
			t.Fatalf("did not stop after SIGTERM:\n%s", p.out)
		}
	}
	if strings.Contains(api.out.String()+workers.out.String(), strings.Repeat("k", 40)) {
		t.Fatal("the secret appeared in the logs")
	}
}
