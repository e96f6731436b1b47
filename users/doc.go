// Package users owns the people who use Herald in the browser: their
// accounts (argon2id passwords, roles, active or disabled), the links that
// let them set a password (invitations, resets, the first admin's sign-in
// link), server-side sessions, the sign-in limits and lockouts, the
// optional TOTP second factor with its recovery codes, and teams.
//
// Every state-changing call takes an audit.Actor and records itself with
// audit.Record in its own transaction.
package users
