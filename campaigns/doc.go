// Package campaigns sends broadcasts to confirmed subscribers: a campaign's
// content, audience (lists narrowed by a segment) and schedule; its lifecycle;
// and its fan-out as River jobs that deliver exactly once per device.
//
// A start job per wave pages through the audience by device id and inserts
// batch jobs in the same transaction that advances its cursor. A batch job
// claims its devices (one delivery row each) before sending, sends through
// delivery.Sender, and records every outcome in one statement. A claim left
// by a crashed attempt is reported as 'unknown', never sent a second time.
package campaigns
