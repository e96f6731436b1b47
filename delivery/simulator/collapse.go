package simulator

import "encoding/json"

// CollapseKey is the key with which the provider would replace an earlier
// message to the same device instead of showing a second one: APNs's
// apns-collapse-id header, FCM's android.collapse_key, Web Push's Topic
// header. Empty when the message has none. For FCM, whose token may be an
// Android phone's, an iPhone's or a browser's, it is the Android key only
// when the iOS (apns-collapse-id) and web (Topic header, notification tag)
// keys agree with it, and empty otherwise.
func (r Received) CollapseKey() string {
	switch r.Platform {
	case "apns":
		return r.Header.Get("apns-collapse-id")
	case "webpush":
		return r.Header.Get("Topic")
	case "fcm":
		var m struct {
			Message struct {
				Android struct {
					CollapseKey string `json:"collapse_key"`
				} `json:"android"`
				APNS struct {
					Headers map[string]string `json:"headers"`
				} `json:"apns"`
				Webpush struct {
					Headers      map[string]string `json:"headers"`
					Notification struct {
						Tag string `json:"tag"`
					} `json:"notification"`
				} `json:"webpush"`
			} `json:"message"`
		}
		if json.Unmarshal(r.Payload, &m) != nil {
			return ""
		}
		key := m.Message.Android.CollapseKey
		if m.Message.APNS.Headers["apns-collapse-id"] != key || m.Message.Webpush.Notification.Tag != key ||
			m.Message.Webpush.Headers["Topic"] == "" {
			return ""
		}
		return key
	}
	return ""
}
