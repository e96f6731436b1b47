package campaigns_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/database/dbtest"
	"github.com/herald-im/herald/invalid"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestSegmentsSelectExactlyTheRightPeople runs compiled segments against
// real rows: types, nesting, missing attributes and negations.
func TestSegmentsSelectExactlyTheRightPeople(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	people := []struct {
		name, locale, tz, attrs string
		email                   *string
	}{
		{"ada", "de-DE", "Europe/Berlin", `{"plan":"pro","orders":5,"vip":true,"address":{"city":"Berlin"}}`, ptr("ada@example.com")},
		{"bob", "en-US", "America/New_York", `{"plan":"free","orders":0}`, nil},
		{"cem", "de-AT", "Europe/Vienna", `{"plan":"pro","orders":"12","vip":false}`, nil},
		{"dee", "fr-FR", "", `{}`, ptr("dee@example.com")},
		{"eve", "en-GB", "Europe/London", `{"orders":2.5,"tags":["a"]}`, nil},
	}
	ids := map[int64]string{}
	for _, p := range people {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO subscribers (external_id, locale, timezone, attributes, email)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, p.name, p.locale, p.tz, p.attrs, p.email).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = p.name
	}
	tests := []struct {
		segment string
		want    []string
	}{
		{`{"field":"locale","op":"eq","value":"de-DE"}`, []string{"ada"}},
		{`{"field":"locale","op":"in","value":["de-DE","de-AT"]}`, []string{"ada", "cem"}},
		{`{"field":"email","op":"exists"}`, []string{"ada", "dee"}},
		{`{"not":{"field":"email","op":"exists"}}`, []string{"bob", "cem", "eve"}},
		{`{"field":"timezone","op":"neq","value":"Europe/Berlin"}`, []string{"bob", "cem", "dee", "eve"}},
		{`{"attr":"plan","op":"eq","value":"pro"}`, []string{"ada", "cem"}},
		{`{"not":{"attr":"plan","op":"eq","value":"free"}}`, []string{"ada", "cem", "dee", "eve"}},
		{`{"attr":"plan","op":"neq","value":"pro"}`, []string{"bob", "dee", "eve"}},
		{`{"attr":"orders","op":"gte","value":2}`, []string{"ada", "eve"}}, // "12" is a string, not a number
		{`{"attr":"orders","op":"lt","value":1}`, []string{"bob"}},
		{`{"attr":"orders","op":"eq","value":"12"}`, []string{"cem"}},
		{`{"attr":"vip","op":"eq","value":true}`, []string{"ada"}},
		{`{"attr":"vip","op":"exists"}`, []string{"ada", "cem"}},
		{`{"attr":"address.city","op":"eq","value":"Berlin"}`, []string{"ada"}},
		{`{"attr":"plan","op":"in","value":["pro","enterprise",3]}`, []string{"ada", "cem"}},
		{`{"and":[{"attr":"plan","op":"eq","value":"pro"},{"not":{"attr":"vip","op":"eq","value":true}}]}`, []string{"cem"}},
		{`{"or":[{"field":"locale","op":"eq","value":"fr-FR"},{"attr":"orders","op":"gt","value":4}]}`, []string{"ada", "dee"}},
		{`{"field":"created_at","op":"gt","value":"2000-01-01T00:00:00Z"}`, []string{"ada", "bob", "cem", "dee", "eve"}},
		{`{"not":{"or":[{"attr":"plan","op":"exists"},{"attr":"orders","op":"exists"}]}}`, []string{"dee"}},
	}
	for _, tt := range tests {
		var seg campaigns.Segment
		if err := json.Unmarshal([]byte(tt.segment), &seg); err != nil {
			t.Fatal(err)
		}
		where, args, err := seg.Compile(1)
		if err != nil {
			t.Errorf("%s: %v", tt.segment, err)
			continue
		}
		rows, err := tx.Query(ctx, "SELECT s.id FROM subscribers s WHERE "+where, args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.segment, err, where)
		}
		got, _ := pgx.CollectRows(rows, pgx.RowTo[int64])
		var names []string
		for _, id := range got {
			if n, ok := ids[id]; ok {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.segment, names, tt.want)
		}
	}
}

func TestSegmentRejectsHostileInput(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		`{}`: "audience.segment",
		`{"field":"locale","attr":"x","op":"eq","value":"a"}`:     "audience.segment",
		`{"field":"password","op":"eq","value":"a"}`:              "audience.segment.field",
		`{"attr":"x'; DROP TABLE subscribers; --","op":"exists"}`: "audience.segment.attr",
		`{"attr":"plan","op":"like","value":"%"}`:                 "audience.segment.op",
		`{"attr":"plan","op":"eq","value":{"a":1}}`:               "audience.segment.value",
		`{"attr":"plan","op":"in","value":[]}`:                    "audience.segment.value",
		`{"field":"created_at","op":"gt","value":"yesterday"}`:    "audience.segment.value",
		`{"and":[]}`: "audience.segment",
		`{"not":{"not":{"not":{"not":{"not":{"not":{"not":{"not":{"not":{"field":"locale","op":"exists"}}}}}}}}}}`: "",
	}
	for in, field := range bad {
		var seg campaigns.Segment
		json.Unmarshal([]byte(in), &seg)
		_, _, err := seg.Compile(1)
		ie, ok := invalid.As(err)
		if !ok || (field != "" && ie.Field != field) {
			t.Errorf("%s: %v, want a problem with %q", in, err, field)
		}
	}
}

func ptr[T any](v T) *T { return &v }
