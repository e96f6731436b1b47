// Package conversations is the two-way half of Herald: what subscribers send
// back (messages, tapped buttons, quick replies to campaigns) lands in their
// conversation with the company, where support agents pick it up and
// answer; answers and the company's transactional messages are pushed to
// the subscriber's devices through delivery on their own River queue.
//
// Every change is one transaction that writes the change, its outbox event
// (audit.Record) and, for anything pushed, the River job that pushes it.
// Readers learn about changes from the outbox: live views through
// LISTEN/NOTIFY (see package live), webhooks through their dispatcher.
package conversations
