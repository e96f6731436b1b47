package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"
)

// SetRequestTimeout replaces s's per-request timeout, so that tests can make
// it fire.
func SetRequestTimeout(s *Sender, d time.Duration) {
	s.requestTimeout = d
	if s.apns != nil {
		s.apns.timeout = d
	}
	if s.fcm != nil {
		s.fcm.timeout = d
	}
	if s.webpush != nil {
		s.webpush.timeout = d
	}
}

// UseHTTP1ForWebPush makes s send Web Push over HTTP/1.1 (as to a push
// service without HTTP/2), trusting roots.
func UseHTTP1ForWebPush(s *Sender, roots *x509.CertPool) {
	s.webpush.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		// A non-nil empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
}
