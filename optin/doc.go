// Package optin runs double opt-in: a device asks to join a list, a
// confirmation travels through the subscriber's own channel (the push device
// that asked, and email when an address was given and SMTP is configured),
// the subscriber confirms with a signed, expiring, single-use link, and can
// leave any time through a signed one-click link. Every consent change writes
// a consent record in the same transaction as the change and as the River
// job that acts on it.
package optin
