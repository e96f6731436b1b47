package subscribers_test

import (
	"context"
	"testing"

	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// TestDeactivateGoneSparesRefreshedDevices is the race between a send that
// found a token gone and the app registering the token again meanwhile: the
// deactivation names the version it sent to and so misses the new one.
func TestDeactivateGoneSparesRefreshedDevices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	var appID int64
	if err := pool.QueryRow(ctx, `INSERT INTO apps (slug, name, vapid_public_key, secrets) VALUES ($1, 'x', 'k', '') RETURNING id`,
		"race-"+suffix()).Scan(&appID); err != nil {
		t.Fatal(err)
	}
	sub, err := subscribers.Create(ctx, pool, subscribers.SubscriberParams{})
	if err != nil {
		t.Fatal(err)
	}
	params := subscribers.DeviceParams{Platform: delivery.PlatformFCM, Token: "token-" + suffix() + "-aaaaaaaaaaaa"}
	sent, err := subscribers.RegisterDevice(ctx, pool, sub.ID, appID, params) // the version a send read
	if err != nil {
		t.Fatal(err)
	}
	refreshed, err := subscribers.RegisterDevice(ctx, pool, sub.ID, appID, params) // the app re-registers
	if err != nil {
		t.Fatal(err)
	}
	if refreshed.ID != sent.ID || !refreshed.UpdatedAt.After(sent.UpdatedAt) {
		t.Fatalf("re-registration did not update in place: %+v %+v", sent, refreshed)
	}
	n, err := subscribers.DeactivateGone(ctx, pool, []subscribers.Gone{{DeviceID: sent.ID, UpdatedAt: sent.UpdatedAt, Reason: "Unregistered"}})
	if err != nil || n != 0 {
		t.Fatalf("stale deactivation touched %d rows (%v)", n, err)
	}
	n, err = subscribers.DeactivateGone(ctx, pool, []subscribers.Gone{{DeviceID: refreshed.ID, UpdatedAt: refreshed.UpdatedAt, Reason: "Unregistered"}})
	if err != nil || n != 1 {
		t.Fatalf("current deactivation touched %d rows (%v)", n, err)
	}
	d, _ := subscribers.GetDevice(ctx, pool, sent.ID)
	if d.Active {
		t.Fatal("device still active")
	}
	// Registering again brings it back.
	back, _ := subscribers.RegisterDevice(ctx, pool, sub.ID, appID, params)
	if !back.Active {
		t.Fatal("re-registered device not active")
	}
}
