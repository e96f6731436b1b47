// Package live carries committed changes to live views (agents' inboxes,
// subscribers' chat widgets) across every Herald process.
//
// Each process runs one Hub. The Hub LISTENs on its own connection (outside
// the pool, pinged, re-established after a failure) for the outbox's
// notifications, reads new events from the outbox in commit order
// (audit.EventsAfter), and fans them out to the streams of its process.
// Notifications carry no data and are only wake-ups: the Hub also reads
// the outbox every PollInterval, so a lost notification delays an event,
// never loses it. A stream that resumes after a reconnect reads what it
// missed from the outbox, from its Last-Event-ID, before it goes live.
package live
