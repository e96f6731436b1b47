package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/brand"
	"github.com/herald-im/herald/conversations"
)

// Request bodies, and how much of one Herald reads.
//
// The server runs with fasthttp's StreamRequestBody, because the CSV import
// (POST /api/v1/imports) streams uploads of up to HERALD_MAX_IMPORT_BYTES
// into PostgreSQL and must not hold them in memory; fasthttp (v1.51) can
// stream for the whole server only, not for one route. With streaming on,
// fasthttp reads at most the first 8 KiB of a body before the handler runs
// and hands it the rest as RequestCtx.RequestBodyStream. Its
// MaxRequestBodySize (fiber's BodyLimit) is then compared with a declared
// Content-Length only, and a chunked body, which declares none, has no
// limit at all: Request.Body(), and so fiber's Ctx.Body(), copies whatever
// the stream yields into memory (valyala/fasthttp#1765): one chunked 400 MB
// request to /public/v1/subscribe took the process from 105 MB to 1.5 GB.
// Ctx.Body() also inflates a gzip, deflate or brotli body whole, whatever
// it inflates to. And a handler that returns without reading the stream leaves the rest of
// the body on the connection, where fasthttp parses it as the next request
// (valyala/fasthttp#2368): a body could smuggle a request past the
// handler that refused it.
//
// So Herald reads bodies itself, in readBody, before any handler and any
// middleware but panics, metrics and HSTS: every route has a limit (bodyRule), and the body is read
// through a reader that stops one byte past it. A body within the limit is
// put back into the request in memory, where Ctx.Body() and the form
// parser find it; the byte past the limit ends the request with a 413 and
// Connection: close, without reading the rest, so a hostile body costs at
// most its route's limit. The import route alone keeps the stream
// (bodyStream), which subscribers.CreateImport stops reading past
// HERALD_MAX_IMPORT_BYTES. Any request whose body was not read to its end
// leaves with Connection: close (abandonBody), and Listen closes such a
// connection gently, so that the client still reads its 413 (lingerConn).
// Compressed bodies are refused (415): no client of Herald needs to send
// one. BodyLimit stays at the import limit: fasthttp then pre-reads a body
// of declared length exactly, where a smaller one would make it pre-read
// with a reader that may run past the body (valyala/fasthttp#1816).

const (
	// formBodyBytes bounds the pages' form posts: one button, and at most
	// a list slug (or List-Unsubscribe=One-Click).
	formBodyBytes = 4 << 10
	// noBodyBytes bounds a body sent where none is expected (GET, DELETE,
	// unknown paths); it is read and ignored.
	noBodyBytes = 1 << 10
)

const streamKey = "herald_body_stream"

// bodyRule is the most a request to method and path may send, and whether
// its handler reads the body as a stream. It matches paths the way fiber's
// router does (case-insensitive, trailing slashes ignored). A route that
// streams must be named here: every other body is read into memory within
// its limit before any handler runs.
func (s *Server) bodyRule(method, path string) (limit int, streamed bool) {
	p := strings.ToLower(path)
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	switch {
	case method == fiber.MethodPost && p == "/api/v1/imports":
		return s.Config.MaxImportBytes, true
	case method == fiber.MethodPost && p == "/public/v1/conversation/attachments":
		return conversations.MaxAttachmentBytes, false
	case method == fiber.MethodPut && (strings.HasPrefix(p, "/api/v1/apps/") || strings.HasPrefix(p, "/api/v1/lists/")) &&
		strings.HasSuffix(p, "/logo"):
		return brand.MaxLogoBytes, false
	case (method == fiber.MethodPost || method == fiber.MethodPut || method == fiber.MethodPatch) &&
		strings.HasPrefix(p, riverUIPrefix+"/"):
		// The River UI's JSON API: job ids to cancel or retry, a queue's settings.
		return s.Config.MaxBodyBytes, false
	case (method == fiber.MethodPost || method == fiber.MethodPut || method == fiber.MethodPatch) &&
		(strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/public/")):
		return s.Config.MaxBodyBytes, false
	case method == fiber.MethodPost:
		return formBodyBytes, false
	}
	return noBodyBytes, false
}

// readBody applies the route's body limit while the body is read (see the
// comment at the top of this file).
func (s *Server) readBody(c *fiber.Ctx) error {
	limit, streamed := s.bodyRule(c.Method(), c.Path())
	req := c.Request()
	cl := req.Header.ContentLength() // -1: chunked; -2 or 0: no body
	if cl == 0 || cl == -2 {
		return c.Next()
	}
	if enc := strings.TrimSpace(string(req.Header.Peek(fiber.HeaderContentEncoding))); enc != "" && !strings.EqualFold(enc, "identity") {
		abandonBody(c)
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "Content-Encoding is not supported; send the body uncompressed")
	}
	tooLarge := func() error {
		abandonBody(c)
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("this request's body is limited to %d bytes", limit))
	}
	if cl > limit {
		return tooLarge()
	}
	stream := c.Context().RequestBodyStream()
	if stream == nil { // already in memory (fiber's app.Test, or no streaming)
		if len(req.Body()) > limit {
			return tooLarge()
		}
		return c.Next()
	}
	if streamed {
		body := &endReader{r: stream}
		c.Locals(streamKey, body)
		err := c.Next()
		if !body.eof {
			// The handler stopped early (refused the request, or the body
			// was too large): what is left must not be read as a request.
			abandonBody(c)
		}
		return err
	}
	var buf bytes.Buffer
	if cl > 0 {
		buf.Grow(cl)
	}
	n, err := buf.ReadFrom(io.LimitReader(stream, int64(limit)+1))
	if err != nil {
		abandonBody(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fiber.NewError(fiber.StatusRequestTimeout, "the request body did not arrive in time")
		}
		return fiber.NewError(fiber.StatusBadRequest, "the request body could not be read: "+err.Error())
	}
	if n > int64(limit) {
		return tooLarge()
	}
	// The stream is at its end (and a chunked body's trailer read), so the
	// connection can carry the next request. SetBody drops the stream.
	req.SetBody(buf.Bytes())
	return c.Next()
}

// bodyStream is the request body of a streamed route (see bodyRule).
func bodyStream(c *fiber.Ctx) io.Reader {
	if r, ok := c.Locals(streamKey).(*endReader); ok {
		return r
	}
	return bytes.NewReader(c.Body())
}

// endReader notes when a request body stream reached its end, and reads no
// further: fasthttp's chunked stream, read again after its end, would parse
// the next request as a chunk size.
type endReader struct {
	r   io.Reader
	eof bool
}

func (r *endReader) Read(p []byte) (int, error) {
	if r.eof {
		return 0, io.EOF
	}
	n, err := r.r.Read(p)
	if errors.Is(err, io.EOF) {
		r.eof = true
	}
	return n, err
}

// abandonBody closes the connection after this answer, because what is left
// of the request body will not be read, and asks the listener to close it
// gently (see lingerConn). Connections not accepted through Listen, such as
// app.Test's, are closed as they are.
func abandonBody(c *fiber.Ctx) {
	c.Context().SetConnectionClose()
	if lc, ok := c.Context().Conn().(*lingerConn); ok {
		lc.linger.Store(true)
	}
}

// Listen serves app on addr. It closes connections whose request body was
// left unread gently: it sends its answer (a 413), shuts its side for
// writing and waits half a second before closing. Closed at once, the
// kernel would answer the body still arriving with a reset, and the client,
// still writing, could lose the 413 it was sent before reading it. Nothing
// is read during the wait.
func Listen(app *fiber.App, addr string) error {
	ln, err := net.Listen(app.Config().Network, addr) // as app.Listen would
	if err != nil {
		return err
	}
	return Serve(app, ln)
}

// Serve is Listen on a listener of the caller's.
func Serve(app *fiber.App, ln net.Listener) error {
	return app.Listener(lingerListener{ln})
}

// lingerWait is how long a connection closed with unread input stays
// half-open, as net/http's server does (its rstAvoidanceDelay).
const lingerWait = 500 * time.Millisecond

type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c}, nil
}

// lingerConn is an accepted connection that, once abandonBody marked it,
// closes by shutting its side for writing first and closing lingerWait
// later.
type lingerConn struct {
	net.Conn
	linger atomic.Bool
	closed atomic.Bool
}

func (c *lingerConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok || !c.linger.Load() {
		return c.Conn.Close()
	}
	if err := tc.CloseWrite(); err != nil {
		return c.Conn.Close()
	}
	// The close's error has no one to go to: the answer was sent, and
	// fasthttp has moved on.
	time.AfterFunc(lingerWait, func() { _ = c.Conn.Close() })
	return nil
}
