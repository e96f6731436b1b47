package optin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/subscribers"
)

// SendConfirmationArgs sends a confirmation to the device that asked.
type SendConfirmationArgs struct {
	SubscriberID int64 `json:"subscriber_id"`
	ListID       int64 `json:"list_id"`
	DeviceID     int64 `json:"device_id"`
	// RequestedAt names the pending request the confirmation is for, so that
	// a new request (after leaving, say) is a new job and never taken for a
	// duplicate of the last one.
	RequestedAt time.Time `json:"requested_at"`
}

// Kind implements river.JobArgs.
func (SendConfirmationArgs) Kind() string { return "optin.send_confirmation" }

// InsertOpts implements river.JobArgsWithInsertOpts. One request has one
// confirmation job; whether a repeated request is a new one is decided by
// ConfirmationInterval when it is made, not here.
func (SendConfirmationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueOptIn, MaxAttempts: 12, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// DeliveryObserver is told every delivery outcome, for metrics.
type DeliveryObserver func(delivery.Outcome)

// ConfirmationWorker sends confirmations through the subscriber's device.
type ConfirmationWorker struct {
	river.WorkerDefaults[SendConfirmationArgs]
	Service *Service
	Observe DeliveryObserver
}

// Work implements river.Worker.
func (w *ConfirmationWorker) Work(ctx context.Context, job *river.Job[SendConfirmationArgs]) error {
	s, a := w.Service, job.Args
	status, err := subscribers.MembershipStatusOf(ctx, s.pool, a.ListID, a.SubscriberID)
	if errors.Is(err, subscribers.ErrNotFound) {
		return nil // purged meanwhile: nothing to confirm
	}
	if err != nil {
		return fmt.Errorf("optin: confirmation: %w", err)
	}
	if status != subscribers.StatusPending {
		return nil // confirmed or left meanwhile: nothing to send
	}
	dev, err := subscribers.GetDevice(ctx, s.pool, a.DeviceID)
	if errors.Is(err, subscribers.ErrNotFound) {
		return river.JobCancel(errors.New("the device that asked is gone"))
	}
	if err != nil {
		return fmt.Errorf("optin: confirmation: %w", err)
	}
	if !dev.Active || dev.SubscriberID != a.SubscriberID {
		return river.JobCancel(errors.New("the device that asked is no longer this subscriber's"))
	}
	list, err := subscribers.GetListByID(ctx, s.pool, a.ListID)
	if err != nil {
		return fmt.Errorf("optin: confirmation: %w", err)
	}
	sender, err := s.senders.For(ctx, dev.AppID)
	if err != nil {
		return fmt.Errorf("optin: confirmation: %w", err)
	}
	var locale string
	if err := s.pool.QueryRow(ctx, `SELECT locale FROM subscribers WHERE id = $1`, a.SubscriberID).Scan(&locale); err != nil {
		return fmt.Errorf("optin: confirmation: subscriber's locale: %w", err)
	}
	token, err := s.newConfirmToken(ctx, s.pool, a.SubscriberID, a.ListID)
	if err != nil {
		return err
	}
	msg := s.confirmationMessage(list, a.SubscriberID, token, locale)
	out := sender.Send(ctx, msg, []delivery.Device{dev.ToDelivery()})[0]
	if w.Observe != nil {
		w.Observe(out)
	}
	return w.settle(ctx, a, dev, out)
}

// settle logs a send's outcome and turns it into the job's result.
func (w *ConfirmationWorker) settle(ctx context.Context, a SendConfirmationArgs, dev *subscribers.Device, out delivery.Outcome) error {
	s := w.Service
	log := s.logger.With("subscriber_id", a.SubscriberID, "list_id", a.ListID, "device_id", dev.ID,
		"platform", dev.Platform, "outcome", out.Class, "reason", out.Reason)
	switch out.Class {
	case delivery.ClassDelivered:
		log.Info("confirmation sent")
		return nil
	case delivery.ClassNotSent:
		// The job's context ended before the request was written: the
		// provider cannot have it, so River runs the job again.
		log.Warn("confirmation not sent; retrying")
		return fmt.Errorf("optin: confirmation not sent: %s", out.Reason)
	case delivery.ClassUnknown:
		// The provider may have it. Sending again is safe because the
		// confirmation carries a collapse key (optin-<list slug>): a second
		// copy replaces the first on the device rather than showing twice,
		// and either copy's link confirms.
		log.Warn("confirmation outcome unknown; retrying with the same collapse key")
		return fmt.Errorf("optin: confirmation outcome unknown: %s", out.Reason)
	case delivery.ClassDeviceGone:
		log.Info("confirmation found the device gone")
		_, err := subscribers.DeactivateGone(ctx, s.pool, []subscribers.Gone{{DeviceID: dev.ID, UpdatedAt: dev.UpdatedAt, Reason: out.Reason}})
		if err != nil {
			return fmt.Errorf("optin: confirmation: %w", err)
		}
		return river.JobCancel(fmt.Errorf("device gone: %s", out.Reason))
	case delivery.ClassThrottled:
		log.Info("confirmation throttled; snoozing")
		return river.JobSnooze(max(out.RetryAfter, 10*time.Second))
	case delivery.ClassRejected:
		log.Warn("provider rejected the confirmation")
		return river.JobCancel(fmt.Errorf("provider rejected the confirmation: %s", out.Reason))
	default: // retryable, or credentials an admin has to fix: River backs off
		log.Warn("confirmation failed; retrying")
		return fmt.Errorf("optin: confirmation %s: %s", out.Class, out.Reason)
	}
}

// confirmationTexts are the confirmation push's words by language: a
// message Herald writes itself speaks the subscriber's language (English
// unless the locale is German).
var confirmationTexts = map[string]struct{ title, body, action string }{
	"en": {"Please confirm: %s", "Tap to confirm that you want messages from “%s”. If you did not ask, ignore this.", "Confirm"},
	"de": {"Bitte bestätigen: %s", "Tippen Sie hier, um zu bestätigen, dass Sie Nachrichten von „%s“ erhalten möchten. Wenn Sie das nicht angefordert haben, ignorieren Sie diese Nachricht.", "Bestätigen"},
}

func (s *Service) confirmationMessage(list *subscribers.List, subscriberID int64, token, locale string) *delivery.Message {
	confirm := s.ConfirmURL(token)
	unsubscribe := s.UnsubscribeURL(subscriberID, list.ID)
	lang, _, _ := strings.Cut(strings.ToLower(locale), "-")
	t, ok := confirmationTexts[lang]
	if !ok {
		t = confirmationTexts["en"]
	}
	return &delivery.Message{
		Title:    fmt.Sprintf(t.title, list.Name),
		Body:     fmt.Sprintf(t.body, list.Name),
		URL:      confirm,
		Category: "HERALD_OPTIN",
		Actions:  []delivery.Action{{ID: "confirm", Label: t.action, URL: confirm}},
		Data: map[string]string{
			"herald_type": "optin_confirm", "list": list.Slug, "confirm_url": confirm,
			"unsubscribe_url": unsubscribe, "preferences_url": s.PreferencesURL(subscriberID),
		},
		TTL:         s.cfg.ConfirmTokenTTL,
		CollapseKey: "optin-" + list.Slug,
		// A person is waiting for it, unlike marketing.
		Priority: delivery.PriorityHigh,
	}
}
