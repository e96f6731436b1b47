package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DefaultWebPushHosts are the host suffixes of the browsers' push services:
// Chrome, Edge, Opera and Samsung Internet (FCM), Firefox (Mozilla),
// legacy Edge (WNS) and Safari (Apple).
var DefaultWebPushHosts = []string{
	"fcm.googleapis.com", "android.googleapis.com", "push.services.mozilla.com", "notify.windows.com", "push.apple.com",
}

// ErrEndpointRefused is returned for a Web Push endpoint the policy does not
// allow: a host that is not a push service's, or an address inside a
// private network.
var ErrEndpointRefused = errors.New("delivery: web push endpoint refused")

// EndpointPolicy decides which Web Push endpoints Herald connects to. A Web
// Push endpoint is a URL that whoever subscribes chooses, so without a
// policy a subscription could make Herald's workers connect anywhere: its
// own database, a cloud metadata service, an admin panel on the internal
// network. Two checks stand in the way: the endpoint's host must be one of
// the push services' (checked when a subscription is made and before every
// send), and the address a connection goes to, after DNS resolution, must
// not be loopback, private, link-local, unique-local, or any other address
// that is not on the public internet (checked when dialling, so a name that
// resolves to 127.0.0.1 is refused too, and a DNS answer that changes after
// the first check does not help).
type EndpointPolicy struct {
	// Hosts are the allowed host suffixes ("push.apple.com" also allows
	// "web.push.apple.com"); "*" allows any host. Empty means
	// DefaultWebPushHosts.
	Hosts []string
	// AllowPrivate lets connections go to loopback and private addresses,
	// for tests and a push service inside one's own network.
	AllowPrivate bool
	// AllowAddrs are addresses that may be dialled even when private: the
	// provider simulator of `make run`.
	AllowAddrs []netip.AddrPort
	// LookupIP resolves a host; nil means the system resolver. Tests map a
	// name to loopback with it.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// CheckURL reports whether an endpoint's host is allowed, with a reason a
// person can act on.
func (p *EndpointPolicy) CheckURL(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("%w: not a URL", ErrEndpointRefused)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if addr, err := netip.ParseAddr(host); err == nil && !p.AllowPrivate && !p.allowedAddr(addr, u.Port()) && !public(addr) {
		return fmt.Errorf("%w: %s is not a public address", ErrEndpointRefused, host)
	}
	hosts := p.Hosts
	if len(hosts) == 0 {
		hosts = DefaultWebPushHosts
	}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimPrefix(h, "."))
		if h == "*" || host == h || strings.HasSuffix(host, "."+h) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not a push service's host (allowed: %s)", ErrEndpointRefused, host, strings.Join(hosts, ", "))
}

func (p *EndpointPolicy) allowedAddr(addr netip.Addr, port string) bool {
	if port == "" {
		port = "443"
	}
	for _, a := range p.AllowAddrs {
		if a.Addr() == addr.Unmap() && fmt.Sprint(a.Port()) == port {
			return true
		}
	}
	return false
}

// DialContext resolves addr's host itself, refuses any address the policy
// does not allow, and dials the checked address, so the connection goes
// exactly where the check looked.
func (p *EndpointPolicy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lookup := p.LookupIP
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if addrs, err = lookup(ctx, host); err != nil {
			return nil, err
		}
	}
	var allowed []netip.Addr
	for _, a := range addrs {
		if p.AllowPrivate || p.allowedAddr(a, port) || public(a) {
			allowed = append(allowed, a.Unmap())
		}
	}
	if len(allowed) == 0 {
		return nil, fmt.Errorf("%w: %s resolves to no public address (%v)", ErrEndpointRefused, host, addrs)
	}
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	var firstErr error
	for _, a := range allowed {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// notPublic are the ranges that are not on the public internet beyond what
// netip's predicates cover.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 (would reach IPv4 inside)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4 (embeds any IPv4)
	netip.MustParsePrefix("2001::/32"),       // Teredo (embeds any IPv4)
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated; embeds any IPv4)
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated; private in practice)
}

// public reports whether an address is on the public internet. IPv4-mapped
// IPv6 addresses are judged as the IPv4 address they carry.
func public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	return !slices.ContainsFunc(notPublic, func(p netip.Prefix) bool { return p.Contains(a) })
}
