package optin_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/subscribers"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var testSecret = []byte("optin-test-secret-optin-test-secret-!!")

var testConfig = optin.Config{PublicURL: "http://herald.test", Secret: testSecret, ConfirmTokenTTL: time.Hour,
	UnsubscribeTokenTTL: time.Hour, SubscriberTokenTTL: time.Hour, PendingPurgeAfter: 7 * 24 * time.Hour}

type testBundle struct {
	svc  *optin.Service
	smtp *smtpServer
	sim  *simulator.Server
	app  *apps.App
	list *subscribers.List
}

func setupService(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, err := simulator.Start(simulator.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	store := apps.NewStore(testSecret)
	// Random, not the clock: parallel tests start in the same microsecond.
	raw := make([]byte, 8)
	rand.Read(raw)
	suffix := hex.EncodeToString(raw)
	slug := "app-" + suffix
	app, err := store.Create(ctx, pool, slug, "App", "mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := store.Secrets(ctx, pool, app.ID)
	sec.Credentials.FCM = &delivery.FCMCredentials{ProjectID: sim.FCMProject, Endpoint: sim.URL, AccessToken: sim.FCMAccessToken}
	store.SetSecrets(ctx, pool, app.ID, sec)
	smtp := startSMTP(t)
	mailer := &optin.SMTPMailer{Addr: smtp.addr, From: "herald@example.com"}
	svc := optin.NewService(pool, dbtest.Inserter(pool), store, apps.NewSenders(pool, store, delivery.Options{RootCAs: sim.CertPool()}, logger), mailer,
		testConfig, logger)
	listSlug, name := "l-"+suffix, "Weekly"
	list, err := subscribers.CreateList(ctx, pool, subscribers.ListParams{Slug: &listSlug, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{svc: svc, smtp: smtp, sim: sim, app: app, list: list}
}

func TestSubscribeWithEmailSendsPushAndEmailConfirmations(t *testing.T) {
	t.Parallel()
	b := setupService(t)
	ctx := context.Background()
	pool := dbtest.Pool(t)
	res, err := b.svc.Subscribe(ctx, audit.Public(netip.Addr{}), optin.SubscribeRequest{
		Identity: optin.Identity{App: b.app.Slug}, List: b.list.Slug, Email: "grace@example.com",
		Device: optin.DeviceRequest{Platform: "fcm", Token: b.sim.NewFCMToken()},
	}, optin.Client{IP: netip.MustParseAddr("2001:db8::7"), UserAgent: "app/1"})
	if err != nil {
		t.Fatal(err)
	}
	// Both jobs were inserted in the subscribe transaction.
	var kinds []string
	rows, _ := pool.Query(ctx, `SELECT kind FROM river_job WHERE (args->>'subscriber_id')::bigint = $1 ORDER BY kind`, res.SubscriberID)
	kinds, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	if strings.Join(kinds, ",") != "optin.send_confirmation,optin.send_confirmation_email" {
		t.Fatalf("jobs %v", kinds)
	}
	w := &optin.ConfirmationEmailWorker{Service: b.svc}
	job := &river.Job[optin.SendConfirmationEmailArgs]{JobRow: &rivertype.JobRow{},
		Args: optin.SendConfirmationEmailArgs{SubscriberID: res.SubscriberID, ListID: b.list.ID}}
	if err := w.Work(ctx, job); err != nil {
		t.Fatal(err)
	}
	mail := b.smtp.last()
	if mail.to != "<grace@example.com>" || !strings.Contains(mail.data, "List-Unsubscribe-Post: List-Unsubscribe=One-Click") {
		t.Fatalf("mail %+v", mail)
	}
	link := regexp.MustCompile(`http://herald\.test/confirm/(\S+)`).FindStringSubmatch(mail.data)
	if link == nil {
		t.Fatalf("no confirmation link in %s", mail.data)
	}
	if _, err := b.svc.Confirm(ctx, audit.Public(netip.Addr{}), link[1], optin.Client{}); err != nil {
		t.Fatalf("confirm from email: %v", err)
	}
	if st, _ := subscribers.MembershipStatusOf(ctx, pool, b.list.ID, res.SubscriberID); st != subscribers.StatusConfirmed {
		t.Fatalf("status %s", st)
	}
	// Both changes left their events, by the subscriber they proved to be,
	// and nothing in the staff's audit log.
	id := strconv.FormatInt(res.SubscriberID, 10)
	var events []string
	rows, _ = pool.Query(ctx, `SELECT topic || ' ' || actor FROM outbox WHERE object_type = 'subscriber' AND object_id = $1 ORDER BY id`, id)
	events, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	if want := "subscriber.subscribe subscriber:" + id + ",membership.confirm subscriber:" + id; strings.Join(events, ",") != want {
		t.Fatalf("events %v, want %s", events, want)
	}
	var audited int
	pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE object_type = 'subscriber' AND object_id = $1`, id).Scan(&audited)
	if audited != 0 {
		t.Fatalf("%d audit entries for a subscriber's own changes", audited)
	}
	// Once confirmed, a late email job sends nothing.
	before := b.smtp.count()
	if err := w.Work(ctx, job); err != nil || b.smtp.count() != before {
		t.Fatalf("late job: %v, sent %d", err, b.smtp.count()-before)
	}
}

func TestPurgeRemovesStalePendingMemberships(t *testing.T) {
	t.Parallel()
	b := setupService(t)
	ctx := context.Background()
	pool := dbtest.Pool(t)
	res, err := b.svc.Subscribe(ctx, audit.Public(netip.Addr{}), optin.SubscribeRequest{
		Identity: optin.Identity{App: b.app.Slug}, List: b.list.Slug,
		Device: optin.DeviceRequest{Platform: "fcm", Token: b.sim.NewFCMToken()},
	}, optin.Client{})
	if err != nil {
		t.Fatal(err)
	}
	pool.Exec(ctx, `UPDATE memberships SET pending_at = now() - interval '8 days' WHERE subscriber_id = $1`, res.SubscriberID)
	if err := (&optin.PurgeWorker{Service: b.svc}).Work(ctx, &river.Job[optin.PurgeArgs]{JobRow: &rivertype.JobRow{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := subscribers.MembershipStatusOf(ctx, pool, b.list.ID, res.SubscriberID); err != subscribers.ErrNotFound {
		t.Fatalf("stale pending membership survived: %v", err)
	}
	recs, _ := subscribers.ConsentRecords(ctx, pool, res.SubscriberID)
	if len(recs) != 1 || recs[0].Action != subscribers.ActionOptInRequest {
		t.Fatalf("the request's consent record must stay: %+v", recs)
	}
}

// smtpServer speaks enough SMTP (RFC 5321) for net/smtp to deliver to it.
type smtpServer struct {
	addr string
	// hangUpOnQuit closes the connection at QUIT without the 221 reply, as
	// servers and middleboxes in a hurry do.
	hangUpOnQuit bool
	mu           sync.Mutex
	msgs         []smtpMessage
}

type smtpMessage struct{ from, to, data string }

func (s *smtpServer) last() smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == 0 {
		return smtpMessage{}
	}
	return s.msgs[len(s.msgs)-1]
}

func (s *smtpServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func startSMTP(t *testing.T) *smtpServer { return startSMTPServer(t, &smtpServer{}) }

func startSMTPServer(t *testing.T, s *smtpServer) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *smtpServer) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	say := func(line string) { conn.Write([]byte(line + "\r\n")) }
	say("220 test ESMTP")
	var m smtpMessage
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-test")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			m.from = strings.TrimSpace(line[10:])
			say("250 OK")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			m.to = strings.TrimSpace(line[8:])
			say("250 OK")
		case cmd == "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			m.data = b.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			if !s.hangUpOnQuit {
				say("221 bye")
			}
			return
		default:
			say("502 not implemented")
		}
	}
}
