package campaigns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/subscribers"
)

// Status is where a campaign is in its life.
type Status string

// Campaign statuses.
const (
	StatusDraft     Status = "draft"
	StatusScheduled Status = "scheduled"
	StatusRunning   Status = "running"
	StatusPaused    Status = "paused"
	StatusFinished  Status = "finished"
	StatusCancelled Status = "cancelled"
	StatusFailed    Status = "failed"
)

// transitions are the allowed status changes; everything else is refused.
var transitions = map[Status][]Status{
	StatusDraft:     {StatusScheduled, StatusCancelled},
	StatusScheduled: {StatusDraft, StatusRunning, StatusPaused, StatusCancelled},
	StatusRunning:   {StatusPaused, StatusFinished, StatusCancelled, StatusFailed},
	StatusPaused:    {StatusRunning, StatusScheduled, StatusCancelled},
}

// ErrTransition is returned for a status change the lifecycle does not allow.
var ErrTransition = errors.New("campaigns: status change not allowed")

// ErrNotFound is returned when no campaign has the id.
var ErrNotFound = errors.New("campaigns: not found")

func canMove(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Campaign is one broadcast.
type Campaign struct {
	ID                int64    `json:"id"`
	App               string   `json:"app"`
	AppID             int64    `json:"-"`
	Name              string   `json:"name"`
	Status            Status   `json:"status"`
	Content           Content  `json:"content"`
	Audience          Audience `json:"audience"`
	Schedule          Schedule `json:"schedule"`
	ThrottlePerMinute *int     `json:"throttle_per_minute"`
	// ResendUnknown sends the campaign again to devices whose outcome is
	// unknown (a crash, a shutdown's grace period running out, a request cut
	// after it was written), with the same collapse key, so that a device that
	// already had it shows one notification. On by default.
	ResendUnknown bool       `json:"resend_unknown"`
	FailureReason *string    `json:"failure_reason,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	ScheduledAt   *time.Time `json:"scheduled_at"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
}

// Content is what subscribers see.
type Content struct {
	Title    string `json:"title"`
	Body     string `json:"body"`
	ImageURL string `json:"image_url,omitempty"`
	// URL opens when the notification is tapped: a web URL or an app deep link.
	URL     string   `json:"url,omitempty"`
	Actions []Action `json:"actions,omitempty"`
	// Variants by locale (BCP 47, e.g. "de" or "de-AT"); a subscriber gets
	// the most specific match, else the default content above.
	Variants map[string]Text `json:"variants,omitempty"`
	// Overrides by platform ("apns", "fcm", "webpush") apply on top.
	Overrides   map[string]Text `json:"overrides,omitempty"`
	TTLSeconds  int             `json:"ttl_seconds,omitempty"`
	CollapseKey string          `json:"collapse_key,omitempty"`
	// Priority is "normal" (default) or "high".
	Priority string `json:"priority,omitempty"`
}

// Text is the part of content a variant or override may change.
type Text struct {
	Title    string `json:"title,omitempty"`
	Body     string `json:"body,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	URL      string `json:"url,omitempty"`
}

// Action is a button under the notification.
type Action struct {
	Label string `json:"label"`
	// Type is "open_url" (URL required), "reply" (ReplyText is sent back as
	// the subscriber's answer) or "unsubscribe" (leaves the campaign's lists).
	Type      string `json:"type"`
	URL       string `json:"url,omitempty"`
	ReplyText string `json:"reply_text,omitempty"`
}

// Audience is who a campaign goes to: confirmed members of any of Lists
// (active subscribers, active devices of the campaign's app), narrowed by an
// optional segment.
type Audience struct {
	Lists   []string `json:"lists"`
	Segment *Segment `json:"segment,omitempty"`
}

// Schedule says when.
type Schedule struct {
	// Mode is "now", "at" (At, an instant) or "local" (LocalTime on LocalDate
	// in each subscriber's time zone; DefaultTimezone for unknown zones).
	Mode            string     `json:"mode"`
	At              *time.Time `json:"at,omitempty"`
	LocalDate       string     `json:"local_date,omitempty"` // 2026-12-01
	LocalTime       string     `json:"local_time,omitempty"` // 09:00
	DefaultTimezone string     `json:"default_timezone,omitempty"`
	// QuietHours, in each subscriber's zone, move a send to their end.
	QuietHours *QuietHours `json:"quiet_hours,omitempty"`
}

// QuietHours is a daily window such as 22:00-08:00 with no messages.
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Provider limits checked at save time.
const (
	maxTitle   = 200
	maxBody    = 2000
	maxActions = 3
	maxTTL     = 28 * 24 * 3600
	// The longest per-device values a rendered payload must leave room for:
	// the unsubscribe link and the reply token.
	longestUnsubscribeURL = 300 + 100
)

var (
	collapseRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	hhmmRE     = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

func validURL(field, u string) error {
	if u == "" {
		return nil
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || len(u) > 2048 || strings.ContainsAny(u, " \n\r\t") {
		return invalid.Field(field, "must be an absolute URL or an app deep link (scheme://...)")
	}
	if p.Scheme == "javascript" || p.Scheme == "data" || p.Scheme == "file" {
		return invalid.Field(field, "must not be a javascript:, data: or file: URL")
	}
	return nil
}

func (t Text) validate(prefix string) error {
	if utf8.RuneCountInString(t.Title) > maxTitle {
		return invalid.Fieldf(prefix+"title", "is longer than %d characters", maxTitle)
	}
	if utf8.RuneCountInString(t.Body) > maxBody {
		return invalid.Fieldf(prefix+"body", "is longer than %d characters", maxBody)
	}
	if err := validURL(prefix+"image_url", t.ImageURL); err != nil {
		return err
	}
	return validURL(prefix+"url", t.URL)
}

// Validate checks content, including that every variant renders within each
// provider's payload limit, so that a campaign fails at save, not at send.
func (c *Content) Validate() error {
	if strings.TrimSpace(c.Title) == "" && strings.TrimSpace(c.Body) == "" {
		return invalid.Field("content.title", "a message needs a title or a body")
	}
	if err := (Text{c.Title, c.Body, c.ImageURL, c.URL}).validate("content."); err != nil {
		return err
	}
	if len(c.Actions) > maxActions {
		return invalid.Fieldf("content.actions", "at most %d action buttons", maxActions)
	}
	for i, a := range c.Actions {
		f := fmt.Sprintf("content.actions[%d].", i)
		if strings.TrimSpace(a.Label) == "" || utf8.RuneCountInString(a.Label) > 40 {
			return invalid.Field(f+"label", "must be 1-40 characters")
		}
		switch a.Type {
		case "open_url":
			if a.URL == "" {
				return invalid.Field(f+"url", "is required for open_url")
			}
			if err := validURL(f+"url", a.URL); err != nil {
				return err
			}
		case "reply":
			if strings.TrimSpace(a.ReplyText) == "" || utf8.RuneCountInString(a.ReplyText) > 500 {
				return invalid.Field(f+"reply_text", "must be 1-500 characters")
			}
		case "unsubscribe":
		default:
			return invalid.Field(f+"type", "must be open_url, reply or unsubscribe")
		}
	}
	// Variants are kept under the canonical form of their tag (de-AT, not
	// de-at), the form subscribers' locales are stored in, so that a
	// subscriber finds the text written for them however it was typed.
	canonical := make(map[string]Text, len(c.Variants))
	for loc, v := range c.Variants {
		tag, err := subscribers.ValidateLocale("content.variants", loc)
		if err != nil || loc == "" {
			return invalid.Fieldf("content.variants", "%q is not a BCP 47 locale", loc)
		}
		if _, twice := canonical[tag]; twice {
			return invalid.Fieldf("content.variants", "%q is there twice (as %s)", loc, tag)
		}
		if err := v.validate("content.variants." + tag + "."); err != nil {
			return err
		}
		canonical[tag] = v
	}
	if c.Variants != nil {
		c.Variants = canonical
	}
	for p, v := range c.Overrides {
		if !delivery.Platform(p).Valid() {
			return invalid.Fieldf("content.overrides", "%q is not apns, fcm or webpush", p)
		}
		if err := v.validate("content.overrides." + p + "."); err != nil {
			return err
		}
	}
	if c.TTLSeconds < 0 || c.TTLSeconds > maxTTL {
		return invalid.Fieldf("content.ttl_seconds", "must be from 0 to %d (28 days)", maxTTL)
	}
	if c.CollapseKey != "" && !collapseRE.MatchString(c.CollapseKey) {
		return invalid.Field("content.collapse_key", "must be 1-64 letters, digits or _.:-")
	}
	if c.Priority != "" && c.Priority != "normal" && c.Priority != "high" {
		return invalid.Field("content.priority", "must be normal or high")
	}
	// Render every variant for every platform with the longest per-device
	// values in place, against the providers' limits.
	long := map[string]string{"unsubscribe_url": strings.Repeat("u", longestUnsubscribeURL)}
	locales := []string{""}
	for loc := range c.Variants {
		locales = append(locales, loc)
	}
	for _, loc := range locales {
		for _, p := range []delivery.Platform{delivery.PlatformAPNs, delivery.PlatformFCM, delivery.PlatformWebPush} {
			m := c.message(loc, p, "https://herald.example/c/"+strings.Repeat("t", 80))
			if m.CollapseKey == "" {
				m.CollapseKey = longestDefaultCollapseKey
			}
			if err := fitsProvider(m, p, long); err != nil {
				field := "content"
				if loc != "" {
					field = "content.variants." + loc
				}
				return invalid.Fieldf(field, "is too large for %s: %v", p, err)
			}
		}
	}
	return nil
}

func fitsProvider(m *delivery.Message, p delivery.Platform, vars map[string]string) error {
	switch p {
	case delivery.PlatformAPNs:
		b, err := delivery.RenderAPNs(m)
		if err != nil {
			return err
		}
		if n := len(b) + longestUnsubscribeURL; n > 4096 {
			return fmt.Errorf("%d bytes, APNs allows 4096", n)
		}
	case delivery.PlatformWebPush:
		b, err := delivery.RenderWebPush(m)
		if err != nil {
			return err
		}
		if n := len(b) + longestUnsubscribeURL; n > delivery.WebPushMaxPlaintext {
			return fmt.Errorf("%d bytes, Web Push allows %d", n, delivery.WebPushMaxPlaintext)
		}
	case delivery.PlatformFCM:
		b, err := json.Marshal(delivery.RenderFCM(m))
		if err != nil {
			return fmt.Errorf("render fcm: %w", err)
		}
		if n := len(b) + longestUnsubscribeURL; n > 4096 {
			return fmt.Errorf("%d bytes, FCM allows 4096", n)
		}
	}
	return nil
}

// Validate checks an audience's shape; lists are resolved when saving.
func (a *Audience) Validate() error {
	if len(a.Lists) == 0 || len(a.Lists) > 50 {
		return invalid.Field("audience.lists", "name 1 to 50 lists")
	}
	if a.Segment != nil {
		if _, _, err := a.Segment.Compile(1); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a schedule.
func (s *Schedule) Validate() error {
	switch s.Mode {
	case "", "now":
		s.Mode = "now"
	case "at":
		if s.At == nil {
			return invalid.Field("schedule.at", "is required with mode at")
		}
	case "local":
		if _, err := time.Parse("2006-01-02", s.LocalDate); err != nil {
			return invalid.Field("schedule.local_date", "must be a date such as 2026-12-01")
		}
		if !hhmmRE.MatchString(s.LocalTime) {
			return invalid.Field("schedule.local_time", "must be a time such as 09:00")
		}
	default:
		return invalid.Field("schedule.mode", "must be now, at or local")
	}
	if s.DefaultTimezone == "" {
		s.DefaultTimezone = "UTC"
	}
	if err := subscribers.ValidateTimezone("schedule.default_timezone", s.DefaultTimezone); err != nil {
		return err
	}
	if q := s.QuietHours; q != nil && (!hhmmRE.MatchString(q.Start) || !hhmmRE.MatchString(q.End) || q.Start == q.End) {
		return invalid.Field("schedule.quiet_hours", "needs start and end such as 22:00 and 08:00")
	}
	return nil
}

// longestDefaultCollapseKey is as long as collapseKey's default can be.
const longestDefaultCollapseKey = "herald-c9223372036854775807"

// collapseKey is the key with which every provider replaces an earlier copy
// of this campaign's message instead of showing a second one: APNs
// apns-collapse-id, FCM collapse_key and the Android notification tag, Web
// Push's Topic header and the tag Herald's service worker passes to
// showNotification. A resend after an unknown outcome carries the same key,
// so a device that had the message shows it once. Content may name its own
// key (to replace an earlier campaign, say); otherwise it is derived from
// the campaign.
func (c *Campaign) collapseKey() string {
	if c.Content.CollapseKey != "" {
		return c.Content.CollapseKey
	}
	return fmt.Sprintf("herald-c%d", c.ID)
}

// ttl is how long providers keep the message for an unreachable device.
func (c *Content) ttl() time.Duration {
	if c.TTLSeconds > 0 {
		return time.Duration(c.TTLSeconds) * time.Second
	}
	return 28 * 24 * time.Hour
}

// variantKey picks the variant for a locale: exact, then its language, then
// "" for the default content.
func (c *Content) variantKey(locale string) string {
	if _, ok := c.Variants[locale]; ok {
		return locale
	}
	lang, _, _ := strings.Cut(locale, "-")
	if _, ok := c.Variants[lang]; ok {
		return lang
	}
	return ""
}

// variant is the text for a locale.
func (c *Content) variant(locale string) Text {
	t := Text{c.Title, c.Body, c.ImageURL, c.URL}
	if v, ok := c.Variants[c.variantKey(locale)]; ok {
		t = overlay(t, v)
	}
	return t
}

func overlay(base, top Text) Text {
	if top.Title != "" {
		base.Title = top.Title
	}
	if top.Body != "" {
		base.Body = top.Body
	}
	if top.ImageURL != "" {
		base.ImageURL = top.ImageURL
	}
	if top.URL != "" {
		base.URL = top.URL
	}
	return base
}

// message builds the delivery message for a locale and platform. clickURL
// is the tracked redirect that stands in for the content's URL.
func (c *Content) message(locale string, p delivery.Platform, clickURL string) *delivery.Message {
	t := c.variant(locale)
	if o, ok := c.Overrides[string(p)]; ok {
		t = overlay(t, o)
	}
	m := &delivery.Message{
		Title: t.Title, Body: t.Body, ImageURL: t.ImageURL, CollapseKey: c.CollapseKey,
		TTL:  time.Duration(c.TTLSeconds) * time.Second,
		Data: map[string]string{"herald_type": "campaign", "unsubscribe_url": "{{unsubscribe_url}}"},
	}
	if t.URL != "" {
		m.URL = clickURL
		m.Data["target_url"] = t.URL
	}
	if c.Priority == "high" {
		m.Priority = delivery.PriorityHigh
	}
	for i, a := range c.Actions {
		act := delivery.Action{ID: fmt.Sprintf("a%d", i), Label: a.Label}
		switch a.Type {
		case "open_url":
			act.URL = a.URL
		case "unsubscribe":
			act.URL = "{{unsubscribe_url}}"
		case "reply":
			m.Data["reply_token"] = "{{reply_token}}"
		}
		m.Actions = append(m.Actions, act)
	}
	if len(m.Actions) > 0 {
		m.Category = "HERALD_CAMPAIGN"
	}
	return m
}
