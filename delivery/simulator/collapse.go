package simulator

import "encoding/json"

// CollapseKey is the key with which the provider would replace an earlier
// message to the same device instead of showing a second one: APNs's
// apns-collapse-id header, FCM's android.collapse_key, Web Push's Topic
// header. Empty when the message has none.
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
			} `json:"message"`
		}
		if json.Unmarshal(r.Payload, &m) != nil {
			return ""
		}
		return m.Message.Android.CollapseKey
	}
	return ""
}
