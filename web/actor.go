package web

import (
	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/audit"
)

// actorOf is who made a request, for every change it asks a domain service
// to make: the API key or signed-in user that authenticate found. Routes
// without a caller (the public API, the pages) name the subscriber
// themselves with audit.Subscriber.
func actorOf(c *fiber.Ctx) audit.Actor {
	if key := apiKeyOf(c); key != nil {
		return audit.APIKey(key.ID, string(key.Role), key.Name, clientIP(c))
	}
	if u := sessionOf(c); u != nil {
		return audit.User(u.user.ID, string(u.user.Role), u.user.Email, clientIP(c))
	}
	return audit.Actor{}
}
