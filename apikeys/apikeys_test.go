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
	for _, bad := range []string{"", "hk_", "hk_" + key.Prefix + "_wrong", plain + "x", strings.ToUpper(plain)} {
		if _, err := apikeys.Authenticate(ctx, tx, bad); err != apikeys.ErrInvalid {
			t.Errorf("%q: %v", bad, err)
		}
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
