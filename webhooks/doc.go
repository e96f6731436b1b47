// Package webhooks sends Herald's events to the company's systems (CRM,
// ERP): admins register endpoints; a dispatcher in each worker process
// reads the outbox in commit order and, in one transaction per page, writes
// one delivery per event and endpoint with the River job that posts it; the job signs the body with
// HMAC-SHA256 over a timestamp, retries with exponential backoff, keeps a
// log per endpoint and disables an endpoint after a day of failures.
//
// A receiver verifies a delivery with Verify (or the same steps in any
// language): take Herald-Webhook-Id, Herald-Webhook-Timestamp and the raw
// body, compute hex(HMAC-SHA256(secret, id + "." + timestamp + "." + body)),
// and compare it in constant time with each v1= value of Herald-Signature;
// refuse timestamps older than a few minutes, and drop ids seen before.
package webhooks
