package delivery

import "time"

// Class is the kind of result of one send. Every send ends in exactly one.
//
// Six classes come from the provider's answer (or its absence where nothing
// reached it); two say what is known when no answer came. What a caller may do
// next follows from the class: ClassRetryable and ClassThrottled may be sent
// again as they are, ClassNotSent may be sent as if for the first time,
// ClassUnknown must not be resent blindly, and the rest must not be resent.
type Class string

const (
	// ClassDelivered means the provider accepted the message (APNs 200, FCM
	// 200, Web Push 2xx); ProviderID holds its id.
	ClassDelivered Class = "delivered"
	// ClassRetryable means the provider does not have the message and a later
	// attempt may succeed: it answered 5xx (or APNs ExpiredProviderToken), or
	// no request it may have taken was made: the send failed before a request
	// was written whole (connection refused, DNS or TLS failure, the sender's
	// per-request timeout before writing) or the server refused the HTTP/2
	// stream (REFUSED_STREAM, PROTOCOL_ERROR).
	ClassRetryable Class = "retryable"
	// ClassThrottled means the provider answered 429 (FCM QUOTA_EXCEEDED):
	// slow down and retry after RetryAfter.
	ClassThrottled Class = "throttled"
	// ClassDeviceGone means the token or subscription no longer exists (APNs
	// 410 or Unregistered/BadDeviceToken from both environments, FCM
	// UNREGISTERED or an invalid token, Web Push 404/410, a malformed
	// subscription); stop sending to the device.
	ClassDeviceGone Class = "device_gone"
	// ClassRejected means this message can never be delivered as it is
	// (payload too large, bad topic); retrying will not help.
	ClassRejected Class = "rejected"
	// ClassConfigError means the app's credentials are wrong; the sender stops
	// using that platform until it is rebuilt with new credentials.
	ClassConfigError Class = "config_error"
	// ClassUnknown means the request may have reached the provider: it was
	// written whole and then no answer came (the caller's context was
	// cancelled or its deadline passed, the sender's per-request timeout
	// fired, the connection was cut), or its context ended while it was still
	// being written. The provider may have accepted it, so sending again may
	// show the message twice: a caller must not resend it blindly (only, if
	// at all, with the same collapse key). SendWith never resends it.
	ClassUnknown Class = "unknown"
	// ClassNotSent means the request never left: the caller's context ended
	// before it was written whole (before the device's turn, while waiting on
	// a rate limiter or an in-flight slot, or while connecting or writing).
	// The provider cannot have it; it may be sent later as if never tried.
	// SendWith never resends it (its context has ended).
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
	// Reason is the provider's reason string or the error text, without
	// request URLs (which hold device tokens); never a secret. ClassUnknown
	// reasons start "no answer after the request was sent: ", ClassNotSent
	// reasons "not sent: ", each followed by the cause: "canceled",
	// "timeout", a network error or a rate limiter's refusal.
	Reason     string
	StatusCode int
	RetryAfter time.Duration
}
