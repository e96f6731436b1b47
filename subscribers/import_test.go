package subscribers_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/subscribers"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func suffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func createList(t *testing.T, db database.DB, slug string) *subscribers.List {
	t.Helper()
	name := "List " + slug
	l, err := subscribers.CreateList(context.Background(), db, subscribers.ListParams{Slug: &slug, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func runImport(t *testing.T, csv string) *subscribers.Import {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	var imp *subscribers.Import
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		imp, err = subscribers.CreateImport(ctx, tx, "t.csv", strings.NewReader(csv), 1<<20)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := subscribers.RunImport(ctx, pool, imp.ID)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestImportMergesGoodRowsAndReportsBadOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := suffix()
	news, deals := createList(t, pool, "news-"+s), createList(t, pool, "deals-"+s)

	// Someone who left "news" before must stay unsubscribed.
	left, err := subscribers.Create(ctx, pool, subscribers.SubscriberParams{ExternalID: ptr("left-" + s)})
	if err != nil {
		t.Fatal(err)
	}
	subscribers.SetConfirmed(ctx, pool, news.ID, left.ID)
	subscribers.Unsubscribe(ctx, pool, news.ID, left.ID)

	csv := strings.Join([]string{
		"external_id,email,locale,timezone,attributes,lists,consent_source",
		fmt.Sprintf(`a-%s,a@example.com,de-DE,Europe/Berlin,"{""plan"":""pro""}",news-%s;deals-%s,checkout 2024`, s, s, s), // 2 good
		fmt.Sprintf(`b-%s,,en,,,news-%s,shop form`, s, s),                                                                  // 3 good
		fmt.Sprintf(`c-%s,c@example.com,en,Mars/Base,,,`, s),                                                               // 4 bad zone
		fmt.Sprintf(`d-%s,d@example.com,en`, s),                                                                            // 5 too few fields
		fmt.Sprintf(`e-%s,"broken "quote,en,,,,`, s),                                                                       // 6 bare quote
		fmt.Sprintf(`f-%s,f@example.com,en,,,nope-%s,form`, s, s),                                                          // 7 unknown list
		fmt.Sprintf(`g-%s,not-an-email,en,,,,`, s),                                                                         // 8 bad email
		fmt.Sprintf(`h-%s,h@example.com,en,,,news-%s,`, s, s),                                                              // 9 lists without source
		fmt.Sprintf(`left-%s,,,,,news-%s,old form`, s, s),                                                                  // 10 good, but stays unsubscribed
		fmt.Sprintf(`,only-email-%s@example.com,fr,,,deals-%s,fair`, s, s),                                                 // 11 good, email only
		fmt.Sprintf(`a-%s,a2@example.com,,,,,`, s),                                                                         // 12 good: same person, newer line wins
		``,
		fmt.Sprintf(`i-%s,i@example.com,en,,"{""a"":",,`, s), // 14 bad attributes
	}, "\n") + "\n"
	imp := runImport(t, csv)
	if imp.Status != "finished" || imp.RowsImported != 5 || imp.RowsFailed != 7 {
		t.Fatalf("import %+v", imp)
	}
	var event string
	if err := pool.QueryRow(ctx, `SELECT payload::text FROM outbox WHERE topic = 'import.finish' AND object_id = $1`,
		strconv.FormatInt(imp.ID, 10)).Scan(&event); err != nil || !strings.Contains(event, `"rows_imported": 5`) {
		t.Errorf("import.finish event %q: %v", event, err)
	}
	wantLines := map[int]string{4: "timezone", 5: "", 6: "", 7: "lists", 8: "email", 9: "consent_source", 14: "attributes"}
	for _, e := range imp.RowErrors {
		field, ok := wantLines[e.Line]
		if !ok || e.Field != field || e.Reason == "" {
			t.Errorf("unexpected row error %+v", e)
		}
		delete(wantLines, e.Line)
	}
	if len(wantLines) != 0 {
		t.Errorf("no row error for lines %v (got %+v)", wantLines, imp.RowErrors)
	}

	var email, tz, plan string
	pool.QueryRow(ctx, `SELECT email, timezone, attributes->>'plan' FROM subscribers WHERE external_id = $1`, "a-"+s).Scan(&email, &tz, &plan)
	if email != "a2@example.com" || tz != "" && tz != "Europe/Berlin" {
		t.Errorf("a: email %q tz %q (the later line wins)", email, tz)
	}
	var confirmed int
	pool.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE list_id IN ($1, $2) AND status = 'confirmed'`, news.ID, deals.ID).Scan(&confirmed)
	// b: news; email-only: deals. a's later line names no lists, so the
	// earlier line's lists are not applied (the newest row wins whole).
	if confirmed != 2 {
		t.Errorf("%d confirmed memberships, want 2", confirmed)
	}
	if st, _ := subscribers.MembershipStatusOf(ctx, pool, news.ID, left.ID); st != subscribers.StatusUnsubscribed {
		t.Errorf("an import re-subscribed someone who left: %s", st)
	}
	var detail string
	pool.QueryRow(ctx, `SELECT c.detail FROM consent_records c JOIN subscribers s ON s.id = c.subscriber_id
		WHERE s.external_id = $1 AND c.source = 'import'`, "b-"+s).Scan(&detail)
	if detail != "shop form" {
		t.Errorf("consent detail %q", detail)
	}
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM import_chunks WHERE import_id = $1`, imp.ID).Scan(&n)
	if n != 0 {
		t.Errorf("%d chunks left after import", n)
	}

	// Running the same file again changes no membership and adds no consent.
	var before int
	pool.QueryRow(ctx, `SELECT count(*) FROM consent_records`).Scan(&before)
	runImport(t, csv)
	var after int
	pool.QueryRow(ctx, `SELECT count(*) FROM consent_records`).Scan(&after)
	if after != before {
		t.Errorf("re-import wrote %d consent records", after-before)
	}
}

func TestCreateImportRejectsBadHeaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, csv := range []string{"", "password\nx\n", "external_id,external_id\n1,2\n", "\"external_id\n", "external_id,lists\n1,a\n"} {
		tx := dbtest.Tx(t)
		if _, err := subscribers.CreateImport(ctx, tx, "x.csv", strings.NewReader(csv), 1<<20); err == nil {
			t.Errorf("%q: accepted", csv)
		}
	}
	tx := dbtest.Tx(t)
	big := "external_id\n" + strings.Repeat("1234567890\n", 200)
	if _, err := subscribers.CreateImport(ctx, tx, "x.csv", strings.NewReader(big), 100); err != subscribers.ErrImportTooLarge {
		t.Errorf("oversized upload: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("LongFilenameIsCutBetweenCharacters", func(t *testing.T) {
		t.Parallel()
		tx := dbtest.Tx(t)
		// 255 characters pass the API's check, but are more than 255 bytes.
		name := strings.Repeat("ü", 200) + ".csv"
		imp, err := subscribers.CreateImport(ctx, tx, name, strings.NewReader("email\nada@example.com\n"), 1<<20)
		if err != nil {
			t.Fatalf("import with a %d-byte filename: %v", len(name), err)
		}
		if want := strings.Repeat("ü", 127); imp.Filename != want {
			t.Fatalf("stored filename %q (%d bytes), want %d bytes", imp.Filename, len(imp.Filename), len(want))
		}
	})
}
