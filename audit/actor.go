package audit

import (
	"fmt"
	"net/netip"
)

// Kind is what sort of actor made a change.
type Kind string

// Kinds of actor.
const (
	KindUser       Kind = "user"       // a person signed in to Herald
	KindAPIKey     Kind = "api_key"    // a script or another system
	KindSubscriber Kind = "subscriber" // a subscriber acting on their own data
	KindSystem     Kind = "system"     // Herald itself, for a reason (Actor.Reason)
	KindOperator   Kind = "operator"   // someone at the server's command line (herald user create, ...)
)

// Actor is who made a change: every state-changing call of a domain
// service takes one.
type Actor struct {
	Kind Kind
	// ID is the user's, key's or subscriber's id; 0 for the system.
	ID int64
	// Role is the user's or key's role.
	Role string
	// Label names the actor in the audit log as it was at the time (a
	// user's email, a key's name), so entries stay readable after the user
	// or key is gone.
	Label string
	// Reason says why the system acted ("campaign scheduler").
	Reason string
	// Addr is the client address of the request, when there was one.
	Addr netip.Addr
}

// User is a person signed in with a session.
func User(id int64, role, email string, addr netip.Addr) Actor {
	return Actor{Kind: KindUser, ID: id, Role: role, Label: email, Addr: addr}
}

// APIKey is a caller authenticated by an API key.
func APIKey(id int64, role, name string, addr netip.Addr) Actor {
	return Actor{Kind: KindAPIKey, ID: id, Role: role, Label: name, Addr: addr}
}

// Subscriber is a subscriber acting on their own data (opt-in, unsubscribe,
// a reply).
func Subscriber(id int64, addr netip.Addr) Actor {
	return Actor{Kind: KindSubscriber, ID: id, Addr: addr}
}

// Public is a caller of the public API or a hosted page before the service
// knows which subscriber it is: the service proves that from the request
// (a token, an identity signature, a signed link) and records the change
// with As(id). Record refuses it as long as ID is 0.
func Public(addr netip.Addr) Actor { return Actor{Kind: KindSubscriber, Addr: addr} }

// As is the actor with its id set: the subscriber a public request proved.
func (a Actor) As(id int64) Actor {
	a.ID = id
	return a
}

// Operator is someone running command on the server's command line; label
// names them as well as Herald can tell (the OS user).
func Operator(command, label string) Actor {
	return Actor{Kind: KindOperator, Reason: command, Label: label}
}

// System is Herald acting on its own, for reason.
func System(reason string) Actor { return Actor{Kind: KindSystem, Reason: reason} }

// String is the actor as one token for logs and event records:
// "user:3", "api_key:7", "subscriber:42", "system:campaign scheduler".
func (a Actor) String() string {
	switch a.Kind {
	case KindSystem, KindOperator:
		return string(a.Kind) + ":" + a.Reason
	case "":
		return "unknown"
	default:
		return fmt.Sprintf("%s:%d", a.Kind, a.ID)
	}
}

// Audited reports whether the actor's changes go to the audit log: those
// of users, API keys and operators.
func (a Actor) Audited() bool {
	return a.Kind == KindUser || a.Kind == KindAPIKey || a.Kind == KindOperator
}

// Valid reports whether the actor names someone: a change with an empty
// actor is a programming error, refused by Record.
func (a Actor) Valid() bool {
	switch a.Kind {
	case KindUser, KindAPIKey, KindSubscriber:
		return a.ID > 0
	case KindSystem, KindOperator:
		return a.Reason != ""
	}
	return false
}
