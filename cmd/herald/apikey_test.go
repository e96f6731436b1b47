package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAPIKeyCommands creates, lists and revokes keys with the binary, as an
// operator would.
func TestAPIKeyCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := heraldBinary(t)
	env := append(os.Environ(), "HERALD_DATABASE_URL="+freshDatabaseURL(t))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("herald %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("migrate")
	key := strings.TrimSpace(run("apikey", "create", "--name", "ci deploys", "--role", "marketer"))
	if !strings.HasPrefix(key, "hk_") {
		t.Fatalf("created %q", key)
	}
	list := run("apikey", "list")
	if !strings.Contains(list, "ci deploys") || !strings.Contains(list, "marketer") || strings.Contains(list, key) {
		t.Fatalf("list shows:\n%s", list)
	}
	if out := run("apikey", "revoke", "--id", "1"); !strings.Contains(out, "revoked key 1") {
		t.Fatalf("revoke: %s", out)
	}
	list = run("apikey", "list")
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 2 || strings.HasSuffix(strings.TrimSpace(lines[1]), " -") {
		t.Fatalf("after revoking, list shows:\n%s", list)
	}
	cmd := exec.Command(bin, "apikey", "revoke", "--id", "99")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no such key") {
		t.Fatalf("revoking an unknown key: %v %s", err, out)
	}
}
