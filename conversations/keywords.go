package conversations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// ConsentKeeper changes list memberships with their consent records, for
// the STOP and START keywords. optin.Service is one; it lives outside this
// package because optin erases conversations.
type ConsentKeeper interface {
	// KeywordUnsubscribe leaves the lists in tx, recording consent, and
	// returns those actually left.
	KeywordUnsubscribe(ctx context.Context, tx pgx.Tx, actor audit.Actor, subscriberID int64, listIDs []int64) ([]int64, error)
	// KeywordResubscribe rejoins lists the subscriber had left, in tx,
	// recording consent, and returns those rejoined.
	KeywordResubscribe(ctx context.Context, tx pgx.Tx, actor audit.Actor, subscriberID int64, listIDs []int64) ([]int64, error)
}

// Keywords are a list's keyword rules. Empty fields take the defaults.
type Keywords struct {
	Stop      []string `json:"stop,omitempty"`
	Start     []string `json:"start,omitempty"`
	Help      []string `json:"help,omitempty"`
	StopText  string   `json:"stop_text,omitempty"`
	StartText string   `json:"start_text,omitempty"`
	HelpText  string   `json:"help_text,omitempty"`
}

// DefaultKeywords are the rules of a list that sets none.
var DefaultKeywords = Keywords{
	Stop:      []string{"stop", "abmelden", "unsubscribe", "stopp"},
	Start:     []string{"start", "anmelden"},
	Help:      []string{"help", "hilfe"},
	StopText:  "You have been unsubscribed and will get no more messages from this list. Send START to subscribe again.",
	StartText: "Welcome back: you are subscribed again. Send STOP to unsubscribe.",
	HelpText:  "Send STOP to unsubscribe or START to subscribe again. Write to us any time: a person will answer.",
}

func (k Keywords) withDefaults() Keywords {
	d := DefaultKeywords
	if len(k.Stop) > 0 {
		d.Stop = k.Stop
	}
	if len(k.Start) > 0 {
		d.Start = k.Start
	}
	if len(k.Help) > 0 {
		d.Help = k.Help
	}
	if k.StopText != "" {
		d.StopText = k.StopText
	}
	if k.StartText != "" {
		d.StartText = k.StartText
	}
	if k.HelpText != "" {
		d.HelpText = k.HelpText
	}
	return d
}

// Validate checks keyword rules an admin or marketer set.
func (k *Keywords) Validate() error {
	for field, words := range map[string][]string{"stop": k.Stop, "start": k.Start, "help": k.Help} {
		if len(words) > 10 {
			return invalid.Field(field, "at most 10 keywords")
		}
		for i, w := range words {
			n := normalizeKeyword(w)
			if n == "" || len(n) > 30 || strings.ContainsRune(w, 0) {
				return invalid.Fieldf(fmt.Sprintf("%s[%d]", field, i), "a keyword is one word of 1 to 30 letters")
			}
			words[i] = n
		}
	}
	for field, text := range map[string]string{"stop_text": k.StopText, "start_text": k.StartText, "help_text": k.HelpText} {
		if _, err := validBody(field, text, true); err != nil {
			return err
		}
	}
	return nil
}

// normalizeKeyword folds case and accents and drops punctuation around a
// word: "Stop!", "STOP" and "stöp" all read "stop".
func normalizeKeyword(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	folded, _, err := transform.String(t, s)
	if err != nil {
		folded = s
	}
	folded = strings.TrimFunc(strings.ToLower(folded), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if strings.ContainsFunc(folded, unicode.IsSpace) {
		return "" // keywords are single words; a sentence is a message
	}
	return folded
}

// keywordMatch is a keyword a subscriber sent and what it does.
type keywordMatch struct {
	kind  string // stop, start, help
	lists []int64
	text  string
}

// keyword reports whether body is a keyword for any of the subscriber's
// lists (or a default one), and which lists it acts on.
func (s *Service) keyword(ctx context.Context, tx pgx.Tx, subscriberID int64, body string, attachment bool) (*keywordMatch, error) {
	if attachment || len(body) > 40 {
		return nil, nil
	}
	word := normalizeKeyword(body)
	if word == "" {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT l.id, l.keywords, m.status FROM memberships m JOIN lists l ON l.id = m.list_id
		WHERE m.subscriber_id = $1 ORDER BY l.id`, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("conversations: keyword lists: %w", err)
	}
	defer rows.Close()
	var match *keywordMatch
	for rows.Next() {
		var id int64
		var raw []byte
		var status string
		if err := rows.Scan(&id, &raw, &status); err != nil {
			return nil, fmt.Errorf("conversations: unable to fetch keyword list: %w", err)
		}
		var k Keywords
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("conversations: keywords of list %d: %w", id, err)
		}
		k = k.withDefaults()
		for _, c := range []struct {
			kind, text string
			words      []string
			applies    bool
		}{
			{"stop", k.StopText, k.Stop, status != "unsubscribed"},
			{"start", k.StartText, k.Start, status == "unsubscribed"},
			{"help", k.HelpText, k.Help, true},
		} {
			if !slices.Contains(c.words, word) {
				continue
			}
			if match == nil {
				match = &keywordMatch{kind: c.kind, text: c.text}
			}
			if match.kind == c.kind && c.applies {
				match.lists = append(match.lists, id)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversations: keyword lists: %w", err)
	}
	if match == nil {
		d := DefaultKeywords
		switch {
		case slices.Contains(d.Stop, word):
			match = &keywordMatch{kind: "stop", text: d.StopText}
		case slices.Contains(d.Start, word):
			match = &keywordMatch{kind: "start", text: d.StartText}
		case slices.Contains(d.Help, word):
			match = &keywordMatch{kind: "help", text: d.HelpText}
		}
	}
	return match, nil
}

// answerKeyword acts on a keyword (through the ConsentKeeper, with consent
// records) and answers it with a system message pushed to the subscriber.
func (s *Service) answerKeyword(ctx context.Context, tx pgx.Tx, actor audit.Actor, conv *Conversation, m *Message, kw *keywordMatch) error {
	actor = subscriberActor(actor, conv.SubscriberID)
	var changed []int64
	var err error
	if s.consent != nil && len(kw.lists) > 0 {
		switch kw.kind {
		case "stop":
			changed, err = s.consent.KeywordUnsubscribe(ctx, tx, actor, conv.SubscriberID, kw.lists)
		case "start":
			changed, err = s.consent.KeywordResubscribe(ctx, tx, actor, conv.SubscriberID, kw.lists)
		}
		if err != nil {
			return err
		}
	}
	answer, _, err := s.post(ctx, tx, outbound{conv: conv, author: AuthorSystem, authorName: "", body: kw.text,
		origin: OriginKeyword, replyTo: &m.ID})
	if err != nil {
		return err
	}
	s.metrics.keywords.WithLabelValues(kw.kind).Inc()
	return recordEvent(ctx, tx, audit.System("keyword "+kw.kind), "conversation.keyword", conv, map[string]any{
		"message": answer, "author": AuthorSystem, "private": false, "keyword": kw.kind, "list_ids": changed})
}

// ListKeywords returns a list's keyword rules as set (without defaults).
func (s *Service) ListKeywords(ctx context.Context, listID int64) (*Keywords, error) {
	var raw []byte
	if err := s.pool.QueryRow(ctx, `SELECT keywords FROM lists WHERE id = $1`, listID).Scan(&raw); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("conversations: list keywords: %w", err)
	}
	var k Keywords
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("conversations: list keywords: %w", err)
	}
	return &k, nil
}

// SetListKeywords replaces a list's keyword rules.
func (s *Service) SetListKeywords(ctx context.Context, actor audit.Actor, listID int64, k Keywords) (*Keywords, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE lists SET keywords = $2, updated_at = now() WHERE id = $1`, listID, mustJSON(k))
		if err != nil {
			return fmt.Errorf("conversations: set list keywords: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "list.keywords", ObjectType: "list",
			ObjectID: fmt.Sprint(listID)})
	})
	if err != nil {
		return nil, err
	}
	return &k, nil
}
