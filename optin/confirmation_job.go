package optin

import (
	"context"
	"errors"
	"fmt"
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
}

// Kind implements river.JobArgs.
func (SendConfirmationArgs) Kind() string { return "optin.send_confirmation" }

// InsertOpts implements river.JobArgsWithInsertOpts. Asking twice within a
// minute sends one confirmation.
func (SendConfirmationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueOptIn, MaxAttempts: 12,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: time.Minute}}
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
	if errors.Is(err, subscribers.ErrNotFound) || status != subscribers.StatusPending {
		return nil // confirmed, left or purged meanwhile: nothing to send
	}
	if err != nil {
		return err
	}
	dev, err := subscribers.GetDevice(ctx, s.pool, a.DeviceID)
	if errors.Is(err, subscribers.ErrNotFound) {
		return river.JobCancel(errors.New("the device that asked is gone"))
	}
	if err != nil {
		return err
	}
	if !dev.Active || dev.SubscriberID != a.SubscriberID {
		return river.JobCancel(errors.New("the device that asked is no longer this subscriber's"))
	}
	list, err := subscribers.GetListByID(ctx, s.pool, a.ListID)
	if err != nil {
		return err
	}
	sender, err := s.senders.For(ctx, dev.AppID)
	if err != nil {
		return err
	}
	token, err := s.newConfirmToken(ctx, s.pool, a.SubscriberID, a.ListID)
	if err != nil {
		return err
	}
	msg := s.confirmationMessage(list, a.SubscriberID, token)
	out := sender.Send(ctx, msg, []delivery.Device{dev.ToDelivery()})[0]
	if w.Observe != nil {
		w.Observe(out)
	}
	s.logger.Info("confirmation sent", "subscriber_id", a.SubscriberID, "list_id", a.ListID, "device_id", dev.ID,
		"platform", dev.Platform, "outcome", out.Class, "reason", out.Reason)
	switch out.Class {
	case delivery.ClassDelivered:
		return nil
	case delivery.ClassDeviceGone:
		_, err := subscribers.DeactivateGone(ctx, s.pool, []subscribers.Gone{{DeviceID: dev.ID, UpdatedAt: dev.UpdatedAt, Reason: out.Reason}})
		if err != nil {
			return err
		}
		return river.JobCancel(fmt.Errorf("device gone: %s", out.Reason))
	case delivery.ClassThrottled:
		return river.JobSnooze(max(out.RetryAfter, 10*time.Second))
	case delivery.ClassRejected:
		return river.JobCancel(fmt.Errorf("provider rejected the confirmation: %s", out.Reason))
	default: // retryable, or credentials an admin has to fix: River backs off
		return fmt.Errorf("optin: confirmation %s: %s", out.Class, out.Reason)
	}
}

func (s *Service) confirmationMessage(list *subscribers.List, subscriberID int64, token string) *delivery.Message {
	confirm := s.ConfirmURL(token)
	unsubscribe := s.UnsubscribeURL(subscriberID, list.ID)
	return &delivery.Message{
		Title:    "Please confirm: " + list.Name,
		Body:     fmt.Sprintf("Tap to confirm that you want messages from %q. If you did not ask, ignore this.", list.Name),
		URL:      confirm,
		Category: "HERALD_OPTIN",
		Actions:  []delivery.Action{{ID: "confirm", Label: "Confirm", URL: confirm}},
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
