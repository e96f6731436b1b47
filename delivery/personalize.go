package delivery

import (
	"bytes"
	"encoding/json"
	"strings"

	"firebase.google.com/go/v4/messaging"
)

// personalize fills {{name}} placeholders in a rendered JSON payload with
// JSON-escaped values. It returns body itself when there is nothing to fill.
func personalize(body []byte, vars map[string]string) []byte {
	if len(vars) == 0 || !bytes.Contains(body, []byte("{{")) {
		return body
	}
	out := body
	for k, v := range vars {
		esc, _ := json.Marshal(v)
		out = bytes.ReplaceAll(out, []byte("{{"+k+"}}"), esc[1:len(esc)-1])
	}
	return out
}

// personalizeFCM fills placeholders in the parts of an FCM message that
// carry text, copying only what changes: usually a data value or two.
func personalizeFCM(tmpl *messaging.Message, vars map[string]string) *messaging.Message {
	if len(vars) == 0 {
		return tmpl
	}
	fill := func(v string) string {
		if !strings.Contains(v, "{{") {
			return v
		}
		for k, val := range vars {
			v = strings.ReplaceAll(v, "{{"+k+"}}", val)
		}
		return v
	}
	m := *tmpl
	m.Data = make(map[string]string, len(tmpl.Data))
	for k, v := range tmpl.Data {
		m.Data[k] = fill(v)
	}
	if n := tmpl.Notification; n != nil && (strings.Contains(n.Title, "{{") || strings.Contains(n.Body, "{{")) {
		m.Notification = &messaging.Notification{Title: fill(n.Title), Body: fill(n.Body), ImageURL: n.ImageURL}
	}
	if w := tmpl.Webpush; w != nil && w.FCMOptions != nil && strings.Contains(w.FCMOptions.Link, "{{") {
		wc := *w
		wc.FCMOptions = &messaging.WebpushFCMOptions{Link: fill(w.FCMOptions.Link)}
		m.Webpush = &wc
	}
	return &m
}
