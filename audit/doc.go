// Package audit is the one place where a change leaves its side records:
// who made it (an Actor), an append-only audit entry when a user or an API
// key made it, and an outbox event that webhooks and live updates read, all
// in the transaction of the change itself (Record). A change that is rolled
// back leaves neither.
//
// Domain services call Record once per call an actor makes, at the end of
// the transaction that makes the change.
package audit
