// Package access names the roles that API keys and users hold; web/ maps
// each route to the roles that may call it.
package access

// Role is what a user or an API key may do.
type Role string

// Roles, from most to least powerful.
const (
	RoleAdmin    Role = "admin"    // everything, including users, keys, apps, credentials, webhooks and erasure
	RoleMarketer Role = "marketer" // lists, subscribers, imports, campaigns
	RoleAgent    Role = "agent"    // conversations; reads subscribers
)

// Roles are every role, most powerful first.
var Roles = []Role{RoleAdmin, RoleMarketer, RoleAgent}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMarketer || r == RoleAgent }
