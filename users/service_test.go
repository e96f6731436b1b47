package users_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp/totp"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/users"
)

type testBundle struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	svc   *users.Service
	actor audit.Actor
}

// fast keeps argon2 cheap in tests; one subtest measures the real cost.
var fast = users.Params{Memory: 1024, Time: 1, Threads: 1}

const password = "correct horse battery staple"

var addr = netip.MustParseAddr("192.0.2.1")

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	svc := users.NewService(pool, users.Config{Secret: []byte(strings.Repeat("x", 32)), PublicURL: "https://herald.test",
		Password: fast}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &testBundle{ctx: context.Background(), pool: pool, svc: svc, actor: audit.Operator("test", "tester")}
}

func uniqueEmail() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "u-" + hex.EncodeToString(b) + "@example.com"
}

func (b *testBundle) user(t *testing.T, role access.Role) users.User {
	t.Helper()
	u, err := b.svc.Create(b.ctx, b.actor, users.NewUser{Email: uniqueEmail(), Name: "Test", Role: role, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (b *testBundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func tokenOf(link string) string { return link[strings.LastIndex(link, "/")+1:] }

func TestService(t *testing.T) {
	t.Parallel()

	t.Run("HostileInputIsRefusedAndNothingWritten", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, c := range []struct {
			nu    users.NewUser
			field string
		}{
			{users.NewUser{Email: "no-at-sign", Name: "X", Role: "agent"}, "email"},
			{users.NewUser{Email: "a@b@example.com", Name: "X", Role: "agent"}, "email"},
			{users.NewUser{Email: "nul\x00@example.com", Name: "X", Role: "agent"}, "email"},
			{users.NewUser{Email: "bad\xff@example.com", Name: "X", Role: "agent"}, "email"},
			{users.NewUser{Email: strings.Repeat("a", 250) + "@example.com", Name: "X", Role: "agent"}, "email"},
			{users.NewUser{Email: uniqueEmail(), Name: strings.Repeat("n", 10_000), Role: "agent"}, "name"},
			{users.NewUser{Email: uniqueEmail(), Name: "N\x00ul", Role: "agent"}, "name"},
			{users.NewUser{Email: uniqueEmail(), Name: "", Role: "agent"}, "name"},
			{users.NewUser{Email: uniqueEmail(), Name: "X", Role: "root"}, "role"},
			{users.NewUser{Email: uniqueEmail(), Name: "X", Role: "agent", Password: "short"}, "password"},
			{users.NewUser{Email: uniqueEmail(), Name: "X", Role: "agent", Password: strings.Repeat("p", 1<<20)}, "password"},
			{users.NewUser{Email: uniqueEmail(), Name: "X", Role: "agent", Password: "twelve chars\x00!"}, "password"},
		} {
			const same = `SELECT count(*) FROM users WHERE lower(email) = lower($1)`
			printable := strings.ToValidUTF8(strings.ReplaceAll(strings.TrimSpace(c.nu.Email), "\x00", ""), "")
			before := b.count(t, same, printable)
			_, err := b.svc.Create(b.ctx, b.actor, c.nu)
			ie, ok := invalid.As(err)
			if !ok || ie.Field != c.field {
				t.Errorf("%q/%q: %v, want a problem with %s", invalid.Truncate(c.nu.Email, 20), invalid.Truncate(c.nu.Name, 20), err, c.field)
			}
			if after := b.count(t, same, printable); after != before {
				t.Errorf("a refused user was written")
			}
		}
	})

	t.Run("EmailsAreUniqueInAnyCase", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.user(t, access.RoleAgent)
		// Other subtests write to the same log at the same time: count only
		// what this one's own operator wrote.
		actor := audit.Operator("test", "twin-"+u.Email)
		const mine = `SELECT count(*) FROM audit_log WHERE actor_label = $1`
		audits := b.count(t, mine, actor.Label)
		_, err := b.svc.Create(b.ctx, actor, users.NewUser{Email: strings.ToUpper(u.Email), Name: "Twin", Role: "agent"})
		if !errors.Is(err, users.ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		if b.count(t, mine, actor.Label) != audits {
			t.Fatal("a refused user was logged")
		}
		var stored string
		b.pool.QueryRow(b.ctx, `SELECT password_hash FROM users WHERE id = $1`, u.ID).Scan(&stored)
		if !strings.HasPrefix(stored, "$argon2id$v=19$m=1024,t=1,p=1$") {
			t.Fatalf("stored hash %q", stored)
		}
	})

	t.Run("InvitationIsSingleUseEvenAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		email := uniqueEmail()
		link, inv, err := b.svc.Invite(b.ctx, b.actor, users.Invitation{Email: email, Name: "Ina", Role: access.RoleAgent})
		if err != nil || inv.Kind != users.LinkInvitation {
			t.Fatal(err)
		}
		token := tokenOf(link)
		if _, err := b.svc.UseLink(b.ctx, token, "short", "", addr); err == nil {
			t.Fatal("a short password was taken")
		}
		if _, err := b.svc.LookupLink(b.ctx, token); err != nil {
			t.Fatalf("a refused password burnt the link: %v", err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { _, errs[i] = b.svc.UseLink(b.ctx, token, password, "", addr) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, users.ErrLinkUsed), errors.Is(err, users.ErrConflict):
			default:
				t.Errorf("concurrent use: %v", err)
			}
		}
		if ok != 1 || b.count(t, `SELECT count(*) FROM users WHERE lower(email) = lower($1)`, email) != 1 {
			t.Fatalf("%d uses succeeded", ok)
		}
		if _, err := b.svc.LookupLink(b.ctx, token); !errors.Is(err, users.ErrLinkUsed) {
			t.Fatalf("after use: %v", err)
		}
		if _, err := b.svc.LookupLink(b.ctx, strings.Repeat("A", 43)); !errors.Is(err, users.ErrLinkInvalid) {
			t.Fatalf("forged: %v", err)
		}
		if _, err := b.svc.LookupLink(b.ctx, "short"); !errors.Is(err, users.ErrLinkInvalid) {
			t.Fatalf("malformed: %v", err)
		}
	})

	t.Run("ExpiredAndReplacedLinks", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		email := uniqueEmail()
		first, _, err := b.svc.Invite(b.ctx, b.actor, users.Invitation{Email: email, Role: access.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		second, _, err := b.svc.Invite(b.ctx, b.actor, users.Invitation{Email: email, Role: access.RoleAgent})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.LookupLink(b.ctx, tokenOf(first)); !errors.Is(err, users.ErrLinkExpired) {
			t.Fatalf("a replaced invitation: %v", err)
		}
		b.pool.Exec(b.ctx, `UPDATE access_links SET expires_at = now() - interval '1 second' WHERE lower(email) = lower($1)`, email)
		if _, err := b.svc.UseLink(b.ctx, tokenOf(second), password, "Late", addr); !errors.Is(err, users.ErrLinkExpired) {
			t.Fatalf("expired: %v", err)
		}
		if b.count(t, `SELECT count(*) FROM users WHERE lower(email) = lower($1)`, email) != 0 {
			t.Fatal("an expired link made a user")
		}
	})

	t.Run("ResetAccessEndsEverything", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.user(t, access.RoleAgent)
		if _, err := b.svc.NewSession(b.ctx, u, addr, "test"); err != nil {
			t.Fatal(err)
		}
		link, err := b.svc.ResetAccess(b.ctx, b.actor, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b.count(t, `SELECT count(*) FROM user_sessions WHERE user_id = $1`, u.ID) != 0 {
			t.Fatal("sessions survived the reset")
		}
		if _, err := b.svc.SignIn(b.ctx, u.Email, password, addr, ""); !errors.Is(err, users.ErrBadCredentials) {
			t.Fatalf("the old password after a reset: %v", err)
		}
		// A session opened meanwhile (say, the link was only a reset of a
		// forgotten password) ends when the new password is set.
		if _, err := b.svc.NewSession(b.ctx, u, addr, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.UseLink(b.ctx, tokenOf(link), "a brand new password", "", addr); err != nil {
			t.Fatal(err)
		}
		if b.count(t, `SELECT count(*) FROM user_sessions WHERE user_id = $1`, u.ID) != 0 {
			t.Fatal("a session survived the new password")
		}
		if _, err := b.svc.SignIn(b.ctx, u.Email, "a brand new password", addr, ""); err != nil {
			t.Fatalf("the new password: %v", err)
		}
	})

	t.Run("TheLastAdminStays", func(t *testing.T) {
		// Not parallel: it needs to be the only place admins change.
		b := setup(t)
		// Make every other admin disabled for this test's count.
		b.pool.Exec(b.ctx, `UPDATE users SET state = 'disabled' WHERE role = 'admin'`)
		a1, a2 := b.user(t, access.RoleAdmin), b.user(t, access.RoleAdmin)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, u := range []users.User{a1, a2} {
			wg.Go(func() { errs[i] = b.svc.Disable(b.ctx, b.actor, u.ID) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !(errors.Is(errs[0], users.ErrLastAdmin) || errors.Is(errs[1], users.ErrLastAdmin)) {
			t.Fatalf("both or neither of the last two admins disabled: %v", errs)
		}
		left := a1
		if errs[0] == nil {
			left = a2
		}
		agent := access.RoleAgent
		if _, err := b.svc.Update(b.ctx, b.actor, left.ID, users.Patch{Role: &agent}); !errors.Is(err, users.ErrLastAdmin) {
			t.Fatalf("demoting the last admin: %v", err)
		}
	})

	t.Run("TeamsAndMembers", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		name := "Support " + uniqueEmail()
		team, err := b.svc.CreateTeam(b.ctx, b.actor, name, "first line")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.CreateTeam(b.ctx, b.actor, strings.ToUpper(name), ""); !errors.Is(err, users.ErrConflict) {
			t.Fatalf("duplicate team: %v", err)
		}
		agent, marketer := b.user(t, access.RoleAgent), b.user(t, access.RoleMarketer)
		for range 2 { // idempotent
			if err := b.svc.AddTeamMember(b.ctx, b.actor, team.ID, agent.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := invalid.As(b.svc.AddTeamMember(b.ctx, b.actor, team.ID, marketer.ID)); !ok {
			t.Fatal("a marketer joined a team")
		}
		if err := b.svc.AddTeamMember(b.ctx, b.actor, 999999999, agent.ID); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("unknown team: %v", err)
		}
		got, err := b.svc.GetTeam(b.ctx, team.ID)
		if err != nil || got.MemberCount != 1 || len(got.Members) != 1 || got.Members[0].UserID != agent.ID {
			t.Fatalf("team: %+v %v", got, err)
		}
		teams, err := b.svc.TeamsOf(b.ctx, agent.ID)
		if err != nil || len(teams) != 1 {
			t.Fatalf("teams of the agent: %v %v", teams, err)
		}
		if err := b.svc.RemoveTeamMember(b.ctx, b.actor, team.ID, agent.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.DeleteTeam(b.ctx, b.actor, team.ID); err != nil {
			t.Fatal(err)
		}
		// One entry per change that changed something.
		if n := b.count(t, `SELECT count(*) FROM audit_log WHERE object_type = 'team' AND object_id = $1`, itoa(team.ID)); n != 4 {
			t.Fatalf("%d audit entries for the team, want create, add, remove, delete", n)
		}
	})

	t.Run("SessionsExpire", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.user(t, access.RoleAgent)
		a, err := b.svc.SignIn(b.ctx, u.Email, password, addr, "ua")
		if err != nil || a.Stage != users.StageFull {
			t.Fatal(err)
		}
		c, err := b.svc.SignIn(b.ctx, strings.ToUpper(u.Email), password, addr, "ua")
		if err != nil || c.SessionID == a.SessionID {
			t.Fatalf("a second sign-in reused the id: %v", err)
		}
		if _, got, err := b.svc.Authenticate(b.ctx, a.SessionID); err != nil || got.ID != u.ID {
			t.Fatalf("authenticate: %v", err)
		}
		b.pool.Exec(b.ctx, `UPDATE user_sessions SET last_seen_at = now() - interval '13 hours' WHERE id_hash = sha256($1::text::bytea)`, a.SessionID)
		if _, _, err := b.svc.Authenticate(b.ctx, a.SessionID); !errors.Is(err, users.ErrNoSession) {
			t.Fatalf("idle session: %v", err)
		}
		b.pool.Exec(b.ctx, `UPDATE user_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = sha256($1::text::bytea)`, c.SessionID)
		if _, _, err := b.svc.Authenticate(b.ctx, c.SessionID); !errors.Is(err, users.ErrNoSession) {
			t.Fatalf("expired session: %v", err)
		}
		d, _ := b.svc.SignIn(b.ctx, u.Email, password, addr, "ua")
		if err := b.svc.Disable(b.ctx, b.actor, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.svc.Authenticate(b.ctx, d.SessionID); !errors.Is(err, users.ErrNoSession) {
			t.Fatalf("a disabled user's session: %v", err)
		}
		for _, raw := range []string{"", "x", strings.Repeat("A", 43) + "\x00", strings.Repeat("\xff", 43)} {
			if _, _, err := b.svc.Authenticate(b.ctx, raw); !errors.Is(err, users.ErrNoSession) {
				t.Fatalf("%q: %v", raw, err)
			}
		}
	})

	t.Run("LockoutsReadTheSameForEveryone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.user(t, access.RoleAgent)
		ghost := uniqueEmail()
		from := netip.MustParseAddr("192.0.2.77")
		for i := range 5 {
			for _, email := range []string{u.Email, ghost} {
				_, err := b.svc.SignIn(b.ctx, email, "wrong", from, "")
				if !errors.Is(err, users.ErrBadCredentials) {
					t.Fatalf("attempt %d for %s: %v", i, email, err)
				}
			}
		}
		for _, email := range []string{u.Email, ghost} {
			var locked *users.LockedOutError
			if _, err := b.svc.SignIn(b.ctx, email, password, netip.MustParseAddr("192.0.2.78"), ""); !errors.As(err, &locked) || locked.RetryAfter <= 0 {
				t.Fatalf("%s after 5 failures: %v", email, err)
			}
		}
		// The address: 20 failures across accounts lock it for everyone.
		other := b.user(t, access.RoleAgent)
		bad := netip.MustParseAddr("2001:db8:1:2::7")
		for i := range 20 {
			b.svc.SignIn(b.ctx, uniqueEmail(), "wrong", bad.Next(), "")
			_ = i
		}
		var locked *users.LockedOutError
		if _, err := b.svc.SignIn(b.ctx, other.Email, password, netip.MustParseAddr("2001:db8:1:2::99"), ""); !errors.As(err, &locked) {
			t.Fatalf("the same /64 after 20 failures: %v", err)
		}
		if _, err := b.svc.SignIn(b.ctx, other.Email, password, netip.MustParseAddr("192.0.2.79"), ""); err != nil {
			t.Fatalf("another address: %v", err)
		}
	})

	t.Run("TimingDoesNotTellWhetherAnAccountExists", func(t *testing.T) {
		t.Parallel()
		// The real cost, as in production.
		pool := dbtest.Pool(t)
		svc := users.NewService(pool, users.Config{Secret: []byte(strings.Repeat("y", 32)), MaxFailuresAccount: 1000,
			MaxFailuresAddress: 1000}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ctx := context.Background()
		u, err := svc.Create(ctx, audit.Operator("test", "t"), users.NewUser{Email: uniqueEmail(), Name: "T", Role: "agent", Password: password})
		if err != nil {
			t.Fatal(err)
		}
		// Interleaved, so both see the same load from whatever else runs.
		var known, unknown []time.Duration
		ghost := uniqueEmail()
		for range 11 {
			for _, x := range []struct {
				email string
				into  *[]time.Duration
			}{{u.Email, &known}, {ghost, &unknown}} {
				start := time.Now()
				svc.SignIn(ctx, x.email, "not the password", netip.MustParseAddr("192.0.2.200"), "")
				*x.into = append(*x.into, time.Since(start))
			}
		}
		median := func(d []time.Duration) time.Duration {
			sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
			return d[len(d)/2]
		}
		knownMedian, unknownMedian := median(known), median(unknown)
		ratio := float64(unknownMedian) / float64(knownMedian)
		t.Logf("median sign-in: existing account %v, unknown account %v", knownMedian, unknownMedian)
		if ratio < 0.6 || ratio > 1.6 {
			t.Fatalf("unknown/existing = %.2f", ratio)
		}
	})

	t.Run("TOTPAndRecoveryCodes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.user(t, access.RoleAdmin)
		setup, err := b.svc.BeginTOTP(b.ctx, u.ID)
		if err != nil || len(setup.QRPNG) == 0 || !strings.HasPrefix(setup.URL, "otpauth://totp/") {
			t.Fatal(err)
		}
		if _, err := b.svc.ConfirmTOTP(b.ctx, b.actor, u.ID, "000000"); !errors.Is(err, users.ErrBadCode) {
			t.Fatalf("wrong code: %v", err)
		}
		code, _ := totp.GenerateCode(setup.Secret, time.Now())
		codes, err := b.svc.ConfirmTOTP(b.ctx, b.actor, u.ID, code)
		if err != nil || len(codes) != 10 {
			t.Fatalf("confirm: %v %v", codes, err)
		}
		res, err := b.svc.SignIn(b.ctx, u.Email, password, addr, "")
		if err != nil || res.Stage != users.StageSecondFactor {
			t.Fatalf("sign in: %+v %v", res, err)
		}
		// The code that enrolled is spent.
		if _, err := b.svc.VerifySecondFactor(b.ctx, res.SessionID, code, addr); !errors.Is(err, users.ErrBadCode) {
			t.Fatalf("replayed code: %v", err)
		}
		full, err := b.svc.VerifySecondFactor(b.ctx, res.SessionID, strings.ToUpper(codes[3]), addr)
		if err != nil || full == res.SessionID {
			t.Fatalf("recovery code: %v", err)
		}
		if left, _ := b.svc.RecoveryCodesLeft(b.ctx, u.ID); left != 9 {
			t.Fatalf("%d codes left", left)
		}
		res, _ = b.svc.SignIn(b.ctx, u.Email, password, addr, "")
		if _, err := b.svc.VerifySecondFactor(b.ctx, res.SessionID, codes[3], addr); !errors.Is(err, users.ErrBadCode) {
			t.Fatalf("a recovery code twice: %v", err)
		}
		next, _ := totp.GenerateCode(setup.Secret, time.Now().Add(30*time.Second))
		if _, err := b.svc.VerifySecondFactor(b.ctx, res.SessionID, next, addr); err != nil {
			t.Fatalf("next TOTP code: %v", err)
		}
		// Required for admins: it cannot be turned off, and an admin
		// without it must set it up first.
		if err := b.svc.SetRequireAdminTOTP(b.ctx, b.actor, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.svc.SetRequireAdminTOTP(b.ctx, b.actor, false) })
		if err := b.svc.DisableTOTP(b.ctx, b.actor, u.ID, password); !errors.Is(err, users.ErrTOTPRequired) {
			t.Fatalf("disable while required: %v", err)
		}
		other := b.user(t, access.RoleAdmin)
		res, err = b.svc.SignIn(b.ctx, other.Email, password, addr, "")
		if err != nil || res.Stage != users.StageEnrol {
			t.Fatalf("admin without TOTP while required: %+v %v", res, err)
		}
		// The secrets are sealed at rest.
		var sealed []byte
		b.pool.QueryRow(b.ctx, `SELECT totp_secret FROM users WHERE id = $1`, u.ID).Scan(&sealed)
		if strings.Contains(string(sealed), setup.Secret) {
			t.Fatal("TOTP secret stored in the clear")
		}
	})

	t.Run("CSRFTokensBelongToTheirSession", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.user(t, access.RoleAgent)
		s1, _ := b.svc.NewSession(b.ctx, u, addr, "")
		s2, _ := b.svc.NewSession(b.ctx, u, addr, "")
		t1 := b.svc.CSRFToken(s1.SessionID)
		if !b.svc.CheckCSRF(s1.SessionID, t1) || b.svc.CheckCSRF(s2.SessionID, t1) || b.svc.CheckCSRF(s1.SessionID, "") || b.svc.CheckCSRF("", "") {
			t.Fatal("CSRF token check")
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
