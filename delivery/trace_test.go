package delivery

import (
	"context"
	"net/http/httptrace"
	"testing"
)

// BenchmarkSendTrace is the per-request cost of following a request: the
// trace, its context and the hooks one HTTP/2 attempt fires.
func BenchmarkSendTrace(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		reqCtx, tr := withSendTrace(ctx)
		ct := httptrace.ContextClientTrace(reqCtx)
		ct.WroteHeaders()
		ct.WroteRequest(httptrace.WroteRequestInfo{})
		ct.GotFirstResponseByte()
		_ = tr
	}
}
