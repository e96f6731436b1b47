package delivery

import "time"

// Class is the kind of result of one send. Every send ends in exactly one.
type Class string

const (
	// ClassDelivered means the provider accepted the message.
	ClassDelivered Class = "delivered"
	// ClassRetryable means a 5xx, a network error or a timeout; try again later.
	ClassRetryable Class = "retryable"
	// ClassThrottled means the provider asked us to slow down (429); see RetryAfter.
	ClassThrottled Class = "throttled"
	// ClassDeviceGone means the token or subscription no longer exists.
	ClassDeviceGone Class = "device_gone"
	// ClassRejected means this message can never be delivered as it is
	// (payload too large, bad topic); retrying will not help.
	ClassRejected Class = "rejected"
	// ClassConfigError means the app's credentials are wrong; the sender stops
	// using that platform until it is rebuilt with new credentials.
	ClassConfigError Class = "config_error"
	// ClassUnknown means the request may have reached the provider: it was
	// written whole and then no answer came (cancelled, timed out, the
	// connection cut). Sending again may show the message twice, so a caller
	// only resends with the same collapse key.
	ClassUnknown Class = "unknown"
	// ClassNotSent means the request never left: the caller's context ended
	// before it was written. The provider cannot have it.
	ClassNotSent Class = "not_sent"
)

// Outcome is the result of sending one message to one device.
type Outcome struct {
	DeviceID int64
	Platform Platform
	Class    Class
	// ProviderID is the provider's message id when delivered (apns-id, FCM
	// message name, Web Push Location).
	ProviderID string
	// Reason is the provider's reason string or the error text; never a secret.
	Reason     string
	StatusCode int
	RetryAfter time.Duration
}
