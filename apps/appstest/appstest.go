// Package appstest makes apps whose push providers are the provider
// simulator, for tests.
package appstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
)

// Simulated creates an app with slug whose APNs (topic com.example.app)
// and FCM credentials point at sim, and returns it with its secrets.
func Simulated(t testing.TB, db database.DB, store *apps.Store, sim *simulator.Server, slug string) (*apps.App, *apps.Secrets) {
	t.Helper()
	ctx := context.Background()
	app, err := store.Create(ctx, db, slug, "Test app "+slug, "mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := store.Secrets(ctx, db, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The simulator knows keys by team and key id: both derived from the
	// slug, so that each app has its own.
	sum := sha256.Sum256([]byte(slug))
	id := strings.ToUpper(hex.EncodeToString(sum[:]))
	team, key := "T"+id[:9], "K"+id[:9]
	p8, err := sim.NewAPNsKey(team, key)
	if err != nil {
		t.Fatal(err)
	}
	sec.Credentials.APNs = &delivery.APNsCredentials{KeyP8: p8, KeyID: key, TeamID: team, Topic: "com.example.app", Endpoint: sim.URL}
	sec.Credentials.FCM = &delivery.FCMCredentials{ProjectID: sim.FCMProject, Endpoint: sim.URL, AccessToken: sim.FCMAccessToken}
	if err := store.SetSecrets(ctx, db, app.ID, sec); err != nil {
		t.Fatal(err)
	}
	return app, sec
}
