package web

import (
	"slices"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/access"
)

// PolicyKind is what sort of caller a route admits.
type PolicyKind string

// Kinds of route policy.
const (
	// PolicyPublic routes take anyone: the public API, the subscriber pages,
	// sign-in, static files, health. Each that costs anything is rate
	// limited by its own middleware.
	PolicyPublic PolicyKind = "public"
	// PolicyStaff routes take an API key or a signed-in user's session
	// whose role is one of Policy.Roles; a session must send the CSRF token
	// on every request that changes something.
	PolicyStaff PolicyKind = "staff"
	// PolicyAccount routes are the pages of a signed-in person's own
	// account, any role, by session only; without one they redirect to the
	// sign-in page.
	PolicyAccount PolicyKind = "account"
	// PolicySigningIn routes are the steps between password and full
	// session: the second factor, or the TOTP set-up an admin must do.
	PolicySigningIn PolicyKind = "signing_in"
	// PolicyMetrics is /metrics: the metrics token, or loopback callers.
	PolicyMetrics PolicyKind = "metrics"
)

// Policy says who may call a route. Every route is registered with one
// (router.add); TestRoutePolicies fails for a route without.
type Policy struct {
	Kind  PolicyKind
	Roles []access.Role
}

// String is the policy as the route matrix prints it.
func (p Policy) String() string {
	if p.Kind != PolicyStaff {
		return string(p.Kind)
	}
	names := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		names[i] = string(r)
	}
	return "staff:" + strings.Join(names, ",")
}

// Allows reports whether a caller with role passes a staff policy.
func (p Policy) Allows(role access.Role) bool { return slices.Contains(p.Roles, role) }

var (
	public      = Policy{Kind: PolicyPublic}
	accountPage = Policy{Kind: PolicyAccount}
	signingIn   = Policy{Kind: PolicySigningIn}
	metricsOnly = Policy{Kind: PolicyMetrics}

	// Who does what: marketers run lists, subscribers, imports and
	// campaigns; agents answer conversations and read subscribers; only
	// admins manage users, keys, apps, credentials, webhooks and erasure.
	anyStaff        = staff(access.RoleAdmin, access.RoleMarketer, access.RoleAgent)
	adminOrMarketer = staff(access.RoleAdmin, access.RoleMarketer)
	adminOrAgent    = staff(access.RoleAdmin, access.RoleAgent)
	adminOnly       = staff(access.RoleAdmin)
)

func staff(roles ...access.Role) Policy { return Policy{Kind: PolicyStaff, Roles: roles} }

// router registers routes with their policy and puts the policy's gate in
// front of the route's own handlers.
type router struct {
	s        *Server
	app      *fiber.App
	policies map[string]Policy
}

// add registers method path with policy p.
func (r *router) add(method, path string, p Policy, handlers ...fiber.Handler) {
	if p.Kind == "" || (p.Kind == PolicyStaff && len(p.Roles) == 0) {
		panic("web: route " + method + " " + path + " without a policy")
	}
	key := method + " " + path
	if _, dup := r.policies[key]; dup {
		panic("web: route " + key + " registered twice")
	}
	r.policies[key] = p
	if method == fiber.MethodGet {
		r.policies[fiber.MethodHead+" "+path] = p
	}
	var gate []fiber.Handler
	switch p.Kind {
	case PolicyStaff:
		gate = []fiber.Handler{r.s.authenticate, r.s.allow(p.Roles...)}
	case PolicyAccount:
		gate = []fiber.Handler{r.s.pageHeaders, r.s.requireSession(stageFull)}
	case PolicySigningIn:
		gate = []fiber.Handler{r.s.pageHeaders, r.s.requireSession(stageSecondFactor, stageEnrol, stageFull)}
	case PolicyMetrics:
		gate = []fiber.Handler{r.s.metricsAccess}
	}
	all := append(gate, handlers...)
	if method == fiber.MethodGet {
		r.app.Get(path, all...) // and HEAD
		return
	}
	r.app.Add(method, path, all...)
}

var (
	policiesMu sync.Mutex
	policiesOf = map[*fiber.App]map[string]Policy{}
)

// RoutePolicy returns the policy route (method and path as fiber lists
// them) was registered with on app, and false for a route registered
// without one.
func RoutePolicy(app *fiber.App, method, path string) (Policy, bool) {
	policiesMu.Lock()
	defer policiesMu.Unlock()
	p, ok := policiesOf[app][method+" "+path]
	return p, ok
}
