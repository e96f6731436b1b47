package apps_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestSecretsAreSealedAndBoundToTheirApp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	store := apps.NewStore([]byte("secret-secret-secret-secret-secret-12"))
	a, err := store.Create(ctx, tx, "shop", "Shop", "mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Create(ctx, tx, "blog", "Blog", "mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := store.Secrets(ctx, tx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	sec.Credentials.FCM = &delivery.FCMCredentials{ProjectID: "p", ServiceAccountJSON: `{"private_key":"TOPSECRET"}`}
	if err := store.SetSecrets(ctx, tx, a.ID, sec); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	tx.QueryRow(ctx, `SELECT secrets FROM apps WHERE id = $1`, a.ID).Scan(&raw)
	if bytes.Contains(raw, []byte("TOPSECRET")) || bytes.Contains(raw, []byte(sec.IdentitySecret)) {
		t.Fatal("secrets stored in clear")
	}
	// Swapping sealed secrets between rows is detected.
	tx.Exec(ctx, `UPDATE apps SET secrets = $2 WHERE id = $1`, b.ID, raw)
	if _, err := store.Secrets(ctx, tx, b.ID); err == nil {
		t.Fatal("secrets of one app opened as another's")
	}
	// Another HERALD_SECRET cannot open them.
	if _, err := apps.NewStore([]byte("another-secret-another-secret-another")).Secrets(ctx, tx, a.ID); err == nil {
		t.Fatal("opened with another secret")
	}
	if _, err := store.Create(ctx, tx, "Bad Slug", "x", "mailto:x@y.z"); err == nil {
		t.Fatal("bad slug accepted")
	}
}
