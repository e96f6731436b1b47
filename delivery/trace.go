package delivery

import (
	"context"
	"errors"
	"net/http/httptrace"
	"net/url"
	"os"
	"sync/atomic"

	"golang.org/x/net/http2"
)

// sendTrace follows the HTTP attempts of one provider request through
// net/http/httptrace, so that a send ending in a transport error can tell a
// request the provider may have (ClassUnknown) from one that never reached it
// whole (ClassNotSent, ClassRetryable).
//
// It holds no goroutine and costs six small allocations per request: itself,
// three hook closures and two context values (httptrace's and the one
// fcmGuard finds it by). The hooks may run on the transport's own goroutines,
// concurrently with each other and after the request returned (httptrace says
// so), hence one atomic word of state.
//
// The hooks it relies on fire the same way in golang.org/x/net/http2 (apns2),
// net/http's bundled HTTP/2 and net/http's HTTP/1.1 (Web Push and FCM):
//   - WroteHeaders fires once per attempt, after its headers were written
//     (HTTP/2: flushed, even when the write failed; HTTP/1.1: buffered). It
//     opens a new attempt here.
//   - WroteRequest fires after the whole request, body included, was flushed
//     (Err nil) or when writing it failed (Err set). HTTP/1.1 reports it before
//     RoundTrip returns (mapRoundTripError waits for the write loop); HTTP/2
//     writes on a goroutine of its own and may report it after RoundTrip
//     returned on a cancelled or expired context.
//   - GotFirstResponseByte fires when the first response frame or byte of an
//     attempt arrives, before RoundTrip returns the response.
type sendTrace struct {
	httptrace.ClientTrace
	state atomic.Uint32

	// The fields below are fcmGuard's (see there): lastErr is the network
	// error of the last attempt that failed; held says the guard answered in
	// place of the network, and heldErr is then the network error of the
	// attempt that may have reached the provider. The guard runs on the
	// goroutine that sends (http.Client calls RoundTrip on it, as the SDK's
	// attempts follow one another) and fcmSender reads them on the same
	// goroutine after the send returned, so they need no synchronisation.
	lastErr error
	held    bool
	heldErr error
}

// sendTraceKey is the context key under which withSendTrace stores the
// trace, for fcmGuard: httptrace's own key holds the *ClientTrace, from
// which the trace cannot be had back safely.
type sendTraceKey struct{}

const (
	// Bits of the current (last) attempt.
	traceHeaders  uint32 = 1 << iota // began writing: its headers went out
	traceWrote                       // written whole
	traceWriteErr                    // writing it failed part way
	traceAnswered                    // a response byte arrived

	// Bits of the attempts before it.
	traceEarlierUnanswered // one was written whole and got no response byte
	traceEarlierSent       // one was written whole or answered

	traceAttempt = traceHeaders | traceWrote | traceWriteErr | traceAnswered
)

// withSendTrace returns ctx carrying a new trace, and the trace.
func withSendTrace(ctx context.Context) (context.Context, *sendTrace) {
	t := &sendTrace{}
	t.WroteHeaders = t.wroteHeaders
	t.WroteRequest = func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			t.state.Or(traceWrote)
		} else {
			t.state.Or(traceWriteErr)
		}
	}
	t.GotFirstResponseByte = func() { t.state.Or(traceAnswered) }
	ctx = httptrace.WithClientTrace(ctx, &t.ClientTrace)
	return context.WithValue(ctx, sendTraceKey{}, t), t
}

// sendTraceFrom returns the trace ctx carries, or nil.
func sendTraceFrom(ctx context.Context) *sendTrace {
	t, _ := ctx.Value(sendTraceKey{}).(*sendTrace)
	return t
}

// wroteHeaders opens an attempt, folding the previous one, if any, into the
// earlier bits. A late WroteRequest of the previous attempt hardly ever lands
// on the new one: HTTP/2 reports late when the context ended, after which
// nothing retries, or when the response came before the body was written;
// then it errs towards ClassUnknown.
func (t *sendTrace) wroteHeaders() {
	for {
		old := t.state.Load()
		next := old&^traceAttempt | traceHeaders
		if old&traceHeaders != 0 {
			if old&traceWrote != 0 && old&traceAnswered == 0 {
				next |= traceEarlierUnanswered
			}
			if old&(traceWrote|traceAnswered) != 0 {
				next |= traceEarlierSent
			}
		}
		if t.state.CompareAndSwap(old, next) {
			return
		}
	}
}

// transportClass classes a send that ended in err with no HTTP status to
// classify, and gives the Reason to go with it.
//
// reqCtx is the context the request ran under (the caller's, with the
// sender's per-request timeout); caller is the caller's own. earlier says
// whether attempts before the last one count: they do for the FCM SDK, which
// resends after network errors whatever was written (fcmGuard answers in
// place of the resend then, but this stays the rule its decision follows),
// and not for apns2 or Web Push, where only the transport retries, and only
// attempts the server did not process (REFUSED_STREAM, a stream above
// GOAWAY's last id) or that wrote nothing.
//
// The rules:
//   - ClassUnknown when an attempt that counts was written whole and got no
//     response byte, or when the last one had sent its headers and was still
//     writing when reqCtx ended (HTTP/2 may report the write after RoundTrip
//     returned, so it may have completed).
//   - ClassNotSent when the caller's context is done and no attempt was
//     written whole or answered: the provider cannot hold a whole request.
//   - ClassRetryable otherwise: refused connections, DNS and TLS failures,
//     the per-request timeout before anything was written, a stream the
//     server refused (see refusedStream).
func (t *sendTrace) transportClass(caller, reqCtx context.Context, err error, earlier bool) (Class, string) {
	st := t.state.Load()
	last := lastAttempt(st, err)
	stillWriting := last == traceHeaders && reqCtx.Err() != nil
	if writtenUnanswered(st, err, earlier) || stillWriting {
		return ClassUnknown, unknownReason(caller, reqCtx, err)
	}
	sent := last&(traceWrote|traceAnswered) != 0 || earlier && st&traceEarlierSent != 0
	if caller.Err() != nil && !sent {
		return ClassNotSent, "not sent: " + transportCause(caller, reqCtx, err)
	}
	return ClassRetryable, transportCause(caller, reqCtx, err)
}

// unanswered reports whether an attempt that counts (see transportClass for
// earlier) was written whole and got no response byte, where err is how the
// last attempt ended: the provider may have the request.
func (t *sendTrace) unanswered(err error, earlier bool) bool {
	return writtenUnanswered(t.state.Load(), err, earlier)
}

// writtenUnanswered is unanswered for the trace state st.
func writtenUnanswered(st uint32, err error, earlier bool) bool {
	last := lastAttempt(st, err)
	return last&traceWrote != 0 && last&traceAnswered == 0 || earlier && st&traceEarlierUnanswered != 0
}

// lastAttempt is the last attempt's bits of st, none when it ended in err
// with a stream the server refused unprocessed (see refusedStream).
func lastAttempt(st uint32, err error) uint32 {
	if refusedStream(err) {
		return 0
	}
	return st & traceAttempt
}

// unknownReason is the Reason of a ClassUnknown outcome whose last attempt
// ended in err.
func unknownReason(caller, reqCtx context.Context, err error) string {
	return "no answer after the request was sent: " + transportCause(caller, reqCtx, err)
}

// refusedStream reports whether err is the server resetting an HTTP/2 stream
// with one of the two codes RFC 9113 (section 5.1.2) gives for refusing a
// stream over its concurrency limit: REFUSED_STREAM, which also promises the
// stream was not processed (section 8.7), and PROTOCOL_ERROR, which a server
// sends for a malformed stream or one over the limit, before any processing.
// Go's own server sends PROTOCOL_ERROR when a client opens a stream the
// moment an earlier one ended, before the server counted it closed. Other
// codes (INTERNAL_ERROR, CANCEL...) may follow processing and stay unknown.
// net/http's bundled HTTP/2 error converts to x/net's StreamError.
func refusedStream(err error) bool {
	var se http2.StreamError
	if !errors.As(err, &se) || se.Cause == nil || se.Cause.Error() != "received from peer" {
		return false
	}
	return se.Code == http2.ErrCodeRefusedStream || se.Code == http2.ErrCodeProtocol
}

// transportCause is a short reason for a request that ended without an
// answer: "canceled", "timeout" or the network error without the request URL
// (a Web Push endpoint is a capability; APNs URLs hold the device token).
func transportCause(caller, reqCtx context.Context, err error) string {
	switch {
	case errors.Is(caller.Err(), context.Canceled):
		return "canceled"
	case errors.Is(reqCtx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return networkReason(err)
}

// networkReason is err's text without the URL that net/http puts in front.
func networkReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}
