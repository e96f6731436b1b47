package delivery

import "time"

// Platform names a push provider.
type Platform string

// The platforms Herald delivers to.
const (
	PlatformAPNs    Platform = "apns"
	PlatformFCM     Platform = "fcm"
	PlatformWebPush Platform = "webpush"
)

// Valid reports whether p is a known platform.
func (p Platform) Valid() bool {
	return p == PlatformAPNs || p == PlatformFCM || p == PlatformWebPush
}

// Priority tells providers how urgently to deliver.
type Priority int

const (
	// PriorityNormal is for marketing and confirmations: providers may batch
	// them to save battery (APNs priority 5, FCM normal, Web Push Urgency normal).
	PriorityNormal Priority = iota
	// PriorityHigh is for conversation replies (APNs 10, FCM high, Urgency high).
	PriorityHigh
)

// Action is a button shown with a notification.
type Action struct {
	ID    string `json:"action"`
	Label string `json:"title"`
	URL   string `json:"url,omitempty"`
}

// Message is what a subscriber should see, independent of platform. Text
// fields may hold placeholders such as {{unsubscribe_url}}: the payload is
// rendered once per platform and each placeholder is replaced per device from
// Device.Vars.
type Message struct {
	Title    string
	Body     string
	ImageURL string
	// URL is opened when the notification itself is tapped.
	URL     string
	Actions []Action
	// Category is the APNs category registered by the app for Actions.
	Category string
	Data     map[string]string
	// TTL is how long providers keep an undeliverable message; zero means 4 weeks.
	TTL         time.Duration
	CollapseKey string
	Priority    Priority
}

// Device is one push address.
type Device struct {
	ID       int64
	Platform Platform
	// Token is the APNs device token, the FCM registration token or the Web
	// Push endpoint URL.
	Token       string
	APNsTopic   string
	APNsSandbox bool
	// P256dh and Auth are the Web Push subscription keys, base64url.
	P256dh string
	Auth   string
	// Vars fill the message's {{name}} placeholders for this device.
	Vars map[string]string
}

func (m *Message) ttl() time.Duration {
	if m.TTL <= 0 {
		return 28 * 24 * time.Hour
	}
	return m.TTL
}
