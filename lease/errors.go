package lease

import "errors"

// ErrIDInUse is returned by Acquire when the configured id is held by a live
// process. The returned error wraps it and names the id.
var ErrIDInUse = errors.New("lease: worker id in use by a live process")

// ErrNoFreeSlot is returned by Acquire when every slot of the hostname, from
// the bare hostname to hostname-32, is held by a live process.
var ErrNoFreeSlot = errors.New("lease: no free worker id slot for this host")

// ErrLost is passed to Config.OnLost when the lease lost its identity for
// good: another process took the id while the lock connection was down, or
// the lock could not be re-taken within Config.LostAfter. The process must
// stop running jobs under the id at once.
var ErrLost = errors.New("lease: worker id lost")
