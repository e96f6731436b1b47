package campaigns_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/demo"
	"github.com/herald-im/herald/subscribers"
)

// TestCampaignReachesExactlyItsAudienceOnce sends to confirmed members on all
// three platforms in several batches and checks that each audience device got
// the message once and nobody else got it.
func TestCampaignReachesExactlyItsAudienceOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var audience []member
	for i := range 30 {
		p := []delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush}[i%3]
		locale := "en-US"
		if i%2 == 0 {
			locale = "de-DE"
		}
		audience = append(audience, b.addMember(p, locale, "", ""))
	}
	// Not in the audience: pending, unsubscribed, blocked, inactive device.
	l, _ := subscribers.GetList(ctx, b.pool, b.list)
	pending := b.addMember(delivery.PlatformFCM, "en", "", "")
	b.pool.Exec(ctx, `UPDATE memberships SET status = 'pending' WHERE subscriber_id = $1`, pending.subscriberID)
	left := b.addMember(delivery.PlatformFCM, "en", "", "")
	subscribers.Unsubscribe(ctx, b.pool, l.ID, left.subscriberID)
	blocked := b.addMember(delivery.PlatformAPNs, "en", "", "")
	b.pool.Exec(ctx, `UPDATE subscribers SET state = 'blocked' WHERE id = $1`, blocked.subscriberID)
	inactive := b.addMember(delivery.PlatformWebPush, "en", "", "")
	b.pool.Exec(ctx, `UPDATE devices SET active = false WHERE id = $1`, inactive.device.ID)

	c := b.create(campaigns.Params{Content: &campaigns.Content{
		Title: "Spring sale", Body: "20% off", URL: "https://shop.example.com/sale",
		Variants: map[string]campaigns.Text{"de": {Title: "Frühlingsangebot", Body: "20 % Rabatt"}},
		Actions:  []campaigns.Action{{Label: "Stop", Type: "unsubscribe"}},
	}})
	preview := must(b.svc.Preview(ctx, c.ID))
	if preview.Devices != 30 || preview.Subscribers != 30 || len(preview.Sample) != 10 {
		t.Fatalf("preview %+v", preview)
	}
	if _, err := b.svc.ScheduleCampaign(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	st := b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
	if st.Sent != 30 || st.Delivered != 30 || st.Unknown != 0 || *st.AudienceSize != 30 || st.Batches["done"] != 6 {
		t.Fatalf("stats %+v", st)
	}
	for i, m := range audience {
		got := b.received(m)
		if len(got) != 1 {
			t.Fatalf("member %d received %d messages", i, len(got))
		}
		payload := string(got[0].Payload)
		want := "Spring sale"
		if i%2 == 0 {
			want = "Frühlingsangebot"
		}
		if !strings.Contains(payload, want) || !strings.Contains(payload, "http://herald.test/u/") {
			t.Fatalf("member %d payload %s", i, payload)
		}
	}
	for _, m := range []member{pending, left, blocked, inactive} {
		if got := b.received(m); len(got) != 0 {
			t.Fatalf("non-member received %d", len(got))
		}
	}
	// The per-device unsubscribe link in the message works.
	var p struct {
		Data map[string]string `json:"data"`
	}
	json.Unmarshal(b.received(audience[2])[0].Payload, &p)
	if !strings.HasPrefix(p.Data["unsubscribe_url"], "http://herald.test/u/") {
		t.Fatalf("web push data %v", p.Data)
	}
}

func TestScheduledCampaignFiresOnTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.addMember(delivery.PlatformAPNs, "en", "", "")
	at := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
	c := b.create(campaigns.Params{Schedule: &campaigns.Schedule{Mode: "at", At: &at}})
	if _, err := b.svc.ScheduleCampaign(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
	got := b.received(m)
	if len(got) != 1 {
		t.Fatalf("received %d", len(got))
	}
	if late := got[0].At.Sub(at); late < 0 || late > time.Second {
		t.Fatalf("delivered %v after the scheduled time", late)
	}
}

// TestLocalTimeWaves plans a 09:00-local campaign with an injected clock.
func TestLocalTimeWaves(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.addMember(delivery.PlatformFCM, "de-DE", "Europe/Berlin", "")
	b.addMember(delivery.PlatformFCM, "en-US", "America/New_York", "")
	b.addMember(delivery.PlatformFCM, "en", "", "") // unknown zone: the campaign's default
	now := time.Date(2030, 12, 1, 5, 0, 0, 0, time.UTC)
	svc := campaigns.NewService(b.pool, nil, nil, campaigns.Config{PublicURL: "http://herald.test", Secret: secret,
		Now: func() time.Time { return now }}, nil)
	svc.SetRiver(riverOf(t, b))
	c := b.create(campaigns.Params{Schedule: &campaigns.Schedule{Mode: "local", LocalDate: "2030-12-01", LocalTime: "09:00",
		DefaultTimezone: "Asia/Tokyo", QuietHours: &campaigns.QuietHours{Start: "22:00", End: "08:00"}}})
	if _, err := svc.ScheduleCampaign(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	rows, _ := b.pool.Query(ctx, `SELECT coalesce(timezone, '*'), send_at FROM campaign_waves WHERE campaign_id = $1`, c.ID)
	got := map[string]time.Time{}
	for rows.Next() {
		var tz string
		var at time.Time
		rows.Scan(&tz, &at)
		got[tz] = at.UTC()
	}
	want := map[string]time.Time{
		"Europe/Berlin":    time.Date(2030, 12, 1, 8, 0, 0, 0, time.UTC),  // 09:00 CET
		"America/New_York": time.Date(2030, 12, 1, 14, 0, 0, 0, time.UTC), // 09:00 EST
		"":                 now,                                           // 09:00 Tokyo has passed: now (14:00 there, not quiet)
	}
	for tz, at := range want {
		if !got[tz].Equal(at) {
			t.Errorf("wave %q at %v, want %v", tz, got[tz], at)
		}
	}
	var scheduled []time.Time
	rows, _ = b.pool.Query(ctx, `SELECT scheduled_at FROM river_job WHERE kind = 'campaigns.start' AND (args->>'campaign_id')::bigint = $1`, c.ID)
	for rows.Next() {
		var at time.Time
		rows.Scan(&at)
		scheduled = append(scheduled, at.UTC())
	}
	if len(scheduled) != 3 {
		t.Fatalf("%d start jobs", len(scheduled))
	}
	if _, err := b.svc.Cancel(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
}

func TestPauseResumeCancelAndThrottle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var ms []member
	for range 40 {
		ms = append(ms, b.addMember(delivery.PlatformAPNs, "en", "", ""))
	}
	count := func() int {
		n := 0
		for _, m := range ms {
			n += len(b.received(m))
		}
		return n
	}
	// 240 a minute: batches of 40/6... of 7 (the batch size) every 1.75 s.
	throttle := 240
	c := b.create(campaigns.Params{ThrottlePerMinute: &throttle})
	start := time.Now()
	must(b.svc.ScheduleCampaign(ctx, c.ID))
	for count() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	must(b.svc.Pause(ctx, c.ID))
	time.Sleep(time.Second) // a batch already sending may finish
	paused := count()
	time.Sleep(2500 * time.Millisecond)
	if n := count(); n != paused || n >= 40 {
		t.Fatalf("sent %d while paused (had %d at pause)", n, paused)
	}
	must(b.svc.Resume(ctx, c.ID))
	b.waitStatus(c.ID, campaigns.StatusFinished, 60*time.Second)
	if n := count(); n != 40 {
		t.Fatalf("sent %d, want 40 once each", n)
	}
	for _, m := range ms {
		if len(b.received(m)) != 1 {
			t.Fatal("a device received the campaign twice")
		}
	}
	// 40 messages at 240/min take at least ~8 s even without the pause.
	if elapsed := time.Since(start); elapsed < 8*time.Second {
		t.Fatalf("throttled campaign took only %v", elapsed)
	}

	// Cancel stops for good.
	c2 := b.create(campaigns.Params{ThrottlePerMinute: &throttle})
	must(b.svc.ScheduleCampaign(ctx, c2.ID))
	time.Sleep(500 * time.Millisecond)
	must(b.svc.Cancel(ctx, c2.ID))
	time.Sleep(3 * time.Second)
	st := must(b.svc.Stats(ctx, c2.ID))
	if st.Status != campaigns.StatusCancelled || st.Sent >= 40 || st.Batches["pending"] != 0 {
		t.Fatalf("after cancel: %+v", st)
	}
	if _, err := b.svc.Resume(ctx, c2.ID); err == nil {
		t.Fatal("a cancelled campaign resumed")
	}
}

func TestProviderFaultsAndRetryFailed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var ms []member
	for range 12 {
		ms = append(ms, b.addMember(delivery.PlatformFCM, "en", "", ""))
	}
	gone := b.addMember(delivery.PlatformWebPush, "en", "", "")
	b.sim.SetFault("webpush", gone.device.Token, simulator.Fault{Status: 410, Reason: "gone"})
	for _, m := range ms[:5] {
		b.sim.SetFault("fcm", m.device.Token, simulator.Fault{Status: 500, Reason: "INTERNAL", Times: 1})
	}
	c := b.create(campaigns.Params{})
	must(b.svc.ScheduleCampaign(ctx, c.ID))
	st := b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
	if st.Delivered != 7 || st.FailedByReason["retryable"] != 5 || st.DevicesDeactivated != 1 {
		t.Fatalf("stats %+v", st)
	}
	var active bool
	b.pool.QueryRow(ctx, `SELECT active FROM devices WHERE id = $1`, gone.device.ID).Scan(&active)
	if active {
		t.Fatal("gone device still active")
	}
	if n := must(b.svc.RetryFailed(ctx, c.ID)); n != 5 {
		t.Fatalf("retry queued %d, want 5", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for must(b.svc.Stats(ctx, c.ID)).Delivered != 12 {
		if time.Now().After(deadline) {
			t.Fatalf("after retry: %+v", must(b.svc.Stats(ctx, c.ID)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range ms {
		if n := len(b.received(m)); n != 1 {
			t.Fatalf("device received %d", n)
		}
	}
	if got := b.received(gone); len(got) != 0 {
		t.Fatal("gone device received")
	}
}

func TestBrokenCredentialsFailTheCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for range 20 {
		b.addMember(delivery.PlatformFCM, "en", "", "")
	}
	sec := must(b.store.Secrets(ctx, b.pool, b.app.ID))
	sec.Credentials.FCM.AccessToken = "revoked"
	if err := b.store.SetSecrets(ctx, b.pool, b.app.ID, sec); err != nil {
		t.Fatal(err)
	}
	c := b.create(campaigns.Params{})
	must(b.svc.ScheduleCampaign(ctx, c.ID))
	st := b.waitStatus(c.ID, campaigns.StatusFailed, 30*time.Second)
	got := must(b.svc.Get(ctx, c.ID))
	if got.FailureReason == nil || !strings.Contains(*got.FailureReason, "credentials") || st.Delivered != 0 {
		t.Fatalf("failed campaign %+v stats %+v", got, st)
	}
	// Not every batch burned the audience: the campaign stopped early.
	if st.Sent >= 20 {
		t.Logf("sent %d before stopping (batches in flight)", st.Sent)
	}
}

// TestCrashedAttemptIsReportedNotResent simulates a batch whose first attempt
// claimed devices and died before recording: the retry marks those unknown
// and sends only to the devices nobody had claimed.
func TestCrashedAttemptIsReportedNotResent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var ms []member
	for range 5 {
		ms = append(ms, b.addMember(delivery.PlatformAPNs, "en", "", ""))
	}
	c := b.create(campaigns.Params{})
	// Hand-made state of a crash: the batch exists and two devices were claimed.
	b.pool.Exec(ctx, `UPDATE campaigns SET status = 'running', started_at = now(), audience_bound = (SELECT max(id) FROM devices),
		next_batch = 1 WHERE id = $1`, c.ID)
	b.pool.Exec(ctx, `INSERT INTO campaign_waves (campaign_id, wave, send_at, fanned_out) VALUES ($1, 0, now(), true)`, c.ID)
	b.pool.Exec(ctx, `INSERT INTO campaign_batches (campaign_id, batch, wave, platform, after_id, upto_id) VALUES ($1, 0, 0, 'apns', $2, $3)`,
		c.ID, ms[0].device.ID-1, ms[4].device.ID)
	for _, m := range ms[:2] {
		b.pool.Exec(ctx, `INSERT INTO deliveries (campaign_id, device_id, subscriber_id, batch, platform, status)
			VALUES ($1, $2, $3, 0, 'apns', 'claimed')`, c.ID, m.device.ID, m.subscriberID)
	}
	w := &campaigns.BatchWorker{Service: b.svc}
	if err := w.Work(ctx, batchJob(c.ID, 0, 2)); err != nil {
		t.Fatal(err)
	}
	rows := b.deliveryRows(c.ID)
	if rows["unknown"] != 2 || rows["delivered"] != 3 {
		t.Fatalf("delivery rows %v", rows)
	}
	for i, m := range ms {
		want := 1
		if i < 2 {
			want = 0 // the crashed attempt's: not sent again
		}
		if n := len(b.received(m)); n != want {
			t.Fatalf("device %d received %d, want %d", i, n, want)
		}
	}
	if st := must(b.svc.Stats(ctx, c.ID)); st.Status != campaigns.StatusFinished || st.Unknown != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCrashMidBatchLeavesOneSliceUnknown crashes a batch larger than a claim
// slice while its first slice is in flight (its process loses the database,
// so nothing after the send is written): the retry reports that slice as
// unknown and sends the rest of the batch once, so what a crash costs is a
// slice, not a batch.
func TestCrashMidBatchLeavesOneSliceUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l, _ := subscribers.GetList(ctx, b.pool, b.list)
	total := 2*campaigns.ClaimSlice + 3
	if err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		return demo.Seed(ctx, tx, b.app.ID, l.ID, total, "slice-"+randomID(), b.sim, delivery.PlatformFCM)
	}); err != nil {
		t.Fatal(err)
	}
	rows, _ := b.pool.Query(ctx, `SELECT id, token FROM devices WHERE app_id = $1 ORDER BY id`, b.app.ID)
	type dev struct {
		ID    int64
		Token string
	}
	devs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[dev])
	if err != nil || len(devs) != total {
		t.Fatalf("%d devices, %v", len(devs), err)
	}
	// The first device answers late, so its slice is still in flight when the
	// attempt is cut off.
	b.sim.SetFault("fcm", devs[0].Token, simulator.Fault{Delay: 5 * time.Second, Times: 1})
	c := b.create(campaigns.Params{})
	b.pool.Exec(ctx, `UPDATE campaigns SET status = 'running', started_at = now(), audience_bound = (SELECT max(id) FROM devices),
		next_batch = 1 WHERE id = $1`, c.ID)
	b.pool.Exec(ctx, `INSERT INTO campaign_waves (campaign_id, wave, send_at, fanned_out) VALUES ($1, 0, now(), true)`, c.ID)
	b.pool.Exec(ctx, `INSERT INTO campaign_batches (campaign_id, batch, wave, platform, after_id, upto_id) VALUES ($1, 0, 0, 'fcm', $2, $3)`,
		c.ID, devs[0].ID-1, devs[total-1].ID)

	doomed, err := pgxpool.NewWithConfig(ctx, b.pool.Config())
	if err != nil {
		t.Fatal(err)
	}
	doomedSvc, _ := newServices(doomed, b.store, b.sim)
	time.AfterFunc(1500*time.Millisecond, doomed.Close)
	if err := (&campaigns.BatchWorker{Service: doomedSvc}).Work(ctx, batchJob(c.ID, 0, 1)); err == nil {
		t.Fatal("the crashed attempt reported success")
	}
	if err := (&campaigns.BatchWorker{Service: b.svc}).Work(ctx, batchJob(c.ID, 0, 2)); err != nil {
		t.Fatal(err)
	}
	got := b.deliveryRows(c.ID)
	if got["unknown"] != campaigns.ClaimSlice || got["delivered"] != total-campaigns.ClaimSlice {
		t.Fatalf("delivery rows %v, want %d unknown (one slice) and the rest delivered", got, campaigns.ClaimSlice)
	}
	for i, d := range devs {
		n := len(b.sim.Received("fcm", d.Token))
		if i >= campaigns.ClaimSlice && n != 1 || n > 1 {
			t.Fatalf("device %d received %d", i, n)
		}
	}
}

func TestClicksAndActionsAreCounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := b.addMember(delivery.PlatformWebPush, "en", "", "")
	c := b.create(campaigns.Params{Content: &campaigns.Content{Title: "Hi", URL: "https://shop.example.com/x",
		Actions: []campaigns.Action{{Label: "Yes", Type: "reply", ReplyText: "Yes please"}, {Label: "Shop", Type: "open_url", URL: "https://shop.example.com/y"}}}})
	must(b.svc.ScheduleCampaign(ctx, c.ID))
	b.waitStatus(c.ID, campaigns.StatusFinished, 20*time.Second)
	var p struct {
		URL  string            `json:"url"`
		Data map[string]string `json:"data"`
	}
	json.Unmarshal(b.received(m)[0].Payload, &p)
	token := strings.TrimPrefix(p.URL, "http://herald.test/c/")
	if target, err := b.svc.Click(ctx, token); err != nil || target != "https://shop.example.com/x" {
		t.Fatalf("click: %q %v", target, err)
	}
	if _, err := b.svc.Click(ctx, token[:len(token)-2]+"AA"); err == nil {
		t.Fatal("forged click token accepted")
	}
	// The reply button's tap lands the reply in the subscriber's conversation.
	if err := b.svc.RecordAction(ctx, p.Data["campaign"], "a0"); err == nil {
		t.Fatal("a reply without the per-person reply_token was accepted")
	}
	if err := b.svc.RecordAction(ctx, p.Data["reply_token"], "a0"); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.RecordAction(ctx, p.Data["campaign"], "a1"); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.RecordAction(ctx, p.Data["campaign"], "a7"); err == nil {
		t.Fatal("unknown action accepted")
	}
	st := must(b.svc.Stats(ctx, c.ID))
	if st.Clicks != 1 || st.ActionTaps["a0"] != 1 || st.ActionTaps["a1"] != 1 || st.Replies != 1 {
		t.Fatalf("stats %+v", st)
	}
	convs := must(conversations.OfSubscriber(ctx, b.pool, m.subscriberID))
	if len(convs) != 1 || len(convs[0].Messages) != 1 || convs[0].Messages[0].Body != "Yes please" ||
		convs[0].Messages[0].Author != "subscriber" || *convs[0].Messages[0].CampaignID != c.ID {
		t.Fatalf("conversations %+v", convs)
	}
}

func TestContentIsValidatedAtSave(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := map[string]campaigns.Content{
		"content.title":           {},
		"content.actions":         {Title: "x", Actions: make([]campaigns.Action, 4)},
		"content.actions[0].url":  {Title: "x", Actions: []campaigns.Action{{Label: "Go", Type: "open_url"}}},
		"content.actions[0].type": {Title: "x", Actions: []campaigns.Action{{Label: "Go", Type: "explode"}}},
		"content.url":             {Title: "x", URL: "javascript:alert(1)"},
		"content.variants":        {Title: "x", Variants: map[string]campaigns.Text{"not a locale!": {Title: "y"}}},
		"content.overrides":       {Title: "x", Overrides: map[string]campaigns.Text{"pager": {Title: "y"}}},
		"content.collapse_key":    {Title: "x", CollapseKey: "has spaces in it"},
		"content":                 {Title: "x", Body: strings.Repeat("é", 1990)},
		"content.variants.de":     {Title: "x", Variants: map[string]campaigns.Text{"de": {Body: strings.Repeat("ü", 1990)}}},
		"content.ttl_seconds":     {Title: "x", TTLSeconds: -1},
	}
	for field, content := range tests {
		content := content
		_, err := b.svc.Create(context.Background(), campaigns.Params{App: &b.app.Slug, Name: ptr("x"), Content: &content,
			Audience: &campaigns.Audience{Lists: []string{b.list}}})
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func TestTestSendReachesNamedPeopleOnlyAndCountsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tester := b.addMember(delivery.PlatformFCM, "de-DE", "", "")
	other := b.addMember(delivery.PlatformFCM, "en", "", "")
	c := b.create(campaigns.Params{Content: &campaigns.Content{Title: "Hello", Variants: map[string]campaigns.Text{"de": {Title: "Hallo"}}}})
	res, err := b.svc.TestSend(ctx, c.ID, []int64{tester.subscriberID})
	if err != nil || len(res) != 1 || res[0].Outcome.Class != delivery.ClassDelivered {
		t.Fatalf("test send: %+v %v", res, err)
	}
	if got := b.received(tester); len(got) != 1 || !strings.Contains(string(got[0].Payload), "[Test] Hallo") {
		t.Fatalf("tester received %v", got)
	}
	if len(b.received(other)) != 0 {
		t.Fatal("someone else received the test")
	}
	st := must(b.svc.Stats(ctx, c.ID))
	if st.Status != campaigns.StatusDraft || st.Sent != 0 {
		t.Fatalf("a test send changed the campaign: %+v", st)
	}
	if _, err := b.svc.TestSend(ctx, c.ID, nil); err == nil {
		t.Fatal("test send to nobody accepted")
	}
}

// TestOneProviderDownDoesNotHoldUpTheOthers: APNs answers slowly, yet FCM
// and Web Push batches, on their own queues, finish first.
func TestOneProviderDownDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var slow, fast []member
	for range 14 {
		m := b.addMember(delivery.PlatformAPNs, "en", "", "")
		b.sim.SetFault("apns", m.device.Token, simulator.Fault{Delay: 3 * time.Second})
		slow = append(slow, m)
		fast = append(fast, b.addMember(delivery.PlatformFCM, "en", "", ""), b.addMember(delivery.PlatformWebPush, "en", "", ""))
	}
	c := b.create(campaigns.Params{})
	must(b.svc.ScheduleCampaign(ctx, c.ID))
	deadline := time.Now().Add(2500 * time.Millisecond)
	for _, m := range fast {
		for len(b.received(m)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("FCM and Web Push waited for the slow APNs batches")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.waitStatus(c.ID, campaigns.StatusFinished, 30*time.Second)
	for _, m := range slow {
		if len(b.received(m)) != 1 {
			t.Fatal("a slow APNs device did not get the campaign once")
		}
	}
}
