package apikeys_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/apikeys"
	"github.com/herald-im/herald/database/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestCreateAuthenticateRevokeExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	plain, key, err := apikeys.Create(ctx, tx, "ci", apikeys.RoleMarketer, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stored []byte
	tx.QueryRow(ctx, `SELECT secret_hash FROM api_keys WHERE id = $1`, key.ID).Scan(&stored)
	if strings.Contains(string(stored), plain) || len(stored) != 32 {
		t.Fatal("key not stored as a hash")
	}
	got, err := apikeys.Authenticate(ctx, tx, plain)
	if err != nil || got.ID != key.ID || got.Role != apikeys.RoleMarketer {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	used := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := tx.Exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1`, key.ID, used); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "hk_", "hk_" + key.Prefix + "_wrong", plain + "x", strings.ToUpper(plain)} {
		if _, err := apikeys.Authenticate(ctx, tx, bad); err != apikeys.ErrInvalid {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// A right prefix with a wrong secret leaves no trace on the key.
	var after time.Time
	if err := tx.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE id = $1`, key.ID).Scan(&after); err != nil || !after.Equal(used) {
		t.Errorf("last_used_at moved from %v to %v (%v) on wrong secrets", used, after, err)
	}
	if err := apikeys.Revoke(ctx, tx, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := apikeys.Authenticate(ctx, tx, plain); err != apikeys.ErrInvalid {
		t.Errorf("revoked key: %v", err)
	}
	short, _, err := apikeys.Create(ctx, tx, "short", apikeys.RoleAgent, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := apikeys.Authenticate(ctx, tx, short); err != apikeys.ErrInvalid {
		t.Errorf("expired key: %v", err)
	}
	if _, _, err := apikeys.Create(ctx, tx, "x", "owner", 0); err == nil {
		t.Error("unknown role accepted")
	}
}
