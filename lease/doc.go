// Package lease gives each Herald worker process a stable River client id and
// hands back the jobs a crashed process left running, so that a restarted
// Herald resumes in seconds instead of waiting for River's rescuer.
//
// # Identity and liveness
//
// Acquire takes an identity: the configured id (HERALD_WORKER_ID), or the
// lowest free slot of the sanitised hostname ("web-1", "web-1-2", …
// "web-1-32"). The identity is held through a session-level advisory lock,
//
//	pg_try_advisory_lock(LockClassID, hashtext(current_schema() || '/' || id))
//
// on a connection of its own, outside the pool. A process that dies, even by
// SIGKILL, loses its connection and with it the lock, so "the lock is free"
// means "no process is running with this id". The lease also keeps a row in
// herald_workers (hostname, pid, version, started_at, heartbeat_at) and
// writes heartbeat_at every PingInterval on the lock connection, which is
// also how it notices that the connection is gone. It then reconnects with
// backoff and re-takes the lock; if another process has taken the id in the
// meantime (its lock is held, or its herald_workers row is no longer the one
// this lease wrote, because another process held the id and let it go), or
// the lock cannot be re-taken within LostAfter, it reports the identity lost
// through Config.OnLost, once, and stops, leaving the lock and the row to the
// id's other holder.
//
// # Handing jobs back
//
// River records the client id of every attempt in river_job.attempted_by.
// HandBack, called after Acquire and before the River client starts, finds
// the jobs still 'running' whose last attempt was made by this identity
// before the lease was taken: their process is gone, because the lock was
// free. They are treated as River's JobRescuer treats a stuck job (an
// AttemptError is appended, river:rescue_count is incremented, a job whose
// cancellation was requested is cancelled, a job at max_attempts is
// discarded), except that a job to retry is made 'available' with
// scheduled_at = now() so that it runs at once. HandBackDead does the same, for
// a periodic reconciler, for every identity in herald_workers whose lock is
// not held and whose heartbeat is older than staleAfter. Jobs attempted by ids
// that are not in herald_workers are left to River's rescuer.
//
// # The race this accepts
//
// The lock proves that no live process holds an identity, not that no live
// process still runs its jobs. One case slips through: a process whose lock
// connection alone drops (a proxy cut it, an operator terminated the backend)
// keeps running its River client on its pool while it reconnects. If another
// process takes the same id in that window (a configured HERALD_WORKER_ID
// started twice, or a second process on the same host taking the lowest free
// slot), its HandBack hands the first process's running jobs back and they may
// run twice. The window is bounded: the first process notices the dead
// connection within PingInterval (plus at most one 10s statement timeout when
// the network, not the server, dropped it), finds at its first re-take attempt
// that the lock is held or that its row was replaced, calls OnLost, and its
// caller stops its River client with StopAndCancel. Until then the two
// processes may run the same job, so jobs must tolerate a second run, as they
// must already when River's own rescuer retries a job that was only slow.
//
// HandBackDead narrows its own window further: it needs both a free lock and
// a heartbeat older than staleAfter, and it only touches jobs attempted more
// than staleAfter ago, so a process that is merely reconnecting has re-taken
// its lock, or given up through OnLost, long before (choose staleAfter well
// above LostAfter + PingInterval + the time a hard stop takes). The same
// attempted_at guard keeps it off jobs that a new holder of the id fetched
// while the reconciler's statement was running.
//
// Two different ids whose hashes collide share a lock key. Acquire then skips
// to the next slot (or reports a configured id as in use), and HandBackDead
// sees the other's lock as held; both err on the safe side. A sanitised
// hostname can also equal another host's slot name ("web" slot 2 is "web-2");
// the lock keeps the two apart and whoever holds the id hands its orphans
// back.
package lease
