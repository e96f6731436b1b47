// Package delivery gets rendered messages to devices through Apple Push
// Notification service (sideshow/apns2), Firebase Cloud Messaging
// (firebase.google.com/go/v4) and Web Push (RFC 8030/8291/8292), and classifies
// every result into one Outcome.
//
// It imports no domain package: callers hand it a Message and Devices and get
// back one Outcome per device, which they record and act on (for example by
// deactivating devices whose Outcome class is ClassDeviceGone).
package delivery
