package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-im/herald/web"
)

// openAPIPrefixes maps each document's path to the routes it describes.
var openAPIPrefixes = map[string]string{
	"/api/v1/openapi.json":    "/api/v1/",
	"/public/v1/openapi.json": "/public/v1/",
}

var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type openAPIOperation struct {
	OperationID string                     `json:"operationId"`
	Summary     string                     `json:"summary"`
	Description string                     `json:"description"`
	Policy      string                     `json:"x-herald-policy"`
	Security    *[]map[string][]string     `json:"security"`
	Parameters  []json.RawMessage          `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

type openAPIParameter struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

// openAPIDocument is what the test reads of a document: the whole tree
// (for $ref) and its operations by method and path.
type openAPIDocument struct {
	tree       any
	version    string
	schemes    map[string]bool
	operations map[string]openAPIOperation // "GET /api/v1/lists/{slug}"
	pathParams map[string][]json.RawMessage
}

func parseOpenAPI(t *testing.T, raw []byte) *openAPIDocument {
	t.Helper()
	var top struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	d := &openAPIDocument{version: top.OpenAPI, schemes: map[string]bool{}, operations: map[string]openAPIOperation{},
		pathParams: map[string][]json.RawMessage{}}
	if err := json.Unmarshal(raw, &d.tree); err != nil {
		t.Fatal(err)
	}
	for name := range top.Components.SecuritySchemes {
		d.schemes[name] = true
	}
	for path, item := range top.Paths {
		for key, v := range item {
			if key == "parameters" {
				var ps []json.RawMessage
				if err := json.Unmarshal(v, &ps); err != nil {
					t.Fatalf("%s parameters: %v", path, err)
				}
				d.pathParams[path] = ps
				continue
			}
			if !slices.Contains(openAPIMethods, key) {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(v, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			d.operations[strings.ToUpper(key)+" "+path] = op
		}
	}
	return d
}

// resolve follows a local JSON pointer ("#/components/schemas/List").
func (d *openAPIDocument) resolve(ref string) (any, bool) {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	cur := d.tree
	if p == "" {
		return cur, true
	}
	if !strings.HasPrefix(p, "/") {
		return nil, false
	}
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// refs lists every $ref in the document with where it is.
func refs(v any, at string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				out[at+"/$ref"] = s
				continue
			}
			refs(e, at+"/"+k, out)
		}
	case []any:
		for i, e := range v {
			refs(e, at+"/"+strconv.Itoa(i), out)
		}
	}
}

var fiberParam = regexp.MustCompile(`:(\w+)`)
var templateParam = regexp.MustCompile(`\{(\w+)\}`)

// TestOpenAPI checks the OpenAPI documents served at /api/v1/openapi.json
// and /public/v1/openapi.json: they are well formed, describe every route
// of their API and no other, declare every path parameter, say who may call
// each operation as the route's policy does, and are what the server sends.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	raw := web.OpenAPIDocuments()
	if len(raw) != len(openAPIPrefixes) {
		t.Fatalf("%d documents, want %d", len(raw), len(openAPIPrefixes))
	}
	docs := map[string]*openAPIDocument{}
	for path := range openAPIPrefixes {
		if raw[path] == nil {
			t.Fatalf("no document for %s", path)
		}
		docs[path] = parseOpenAPI(t, raw[path])
	}

	t.Run("WellFormed", func(t *testing.T) {
		t.Parallel()
		ids := map[string]string{}
		for path, d := range docs {
			if d.version != "3.1.0" {
				t.Errorf("%s: openapi %q, want 3.1.0", path, d.version)
			}
			if len(d.operations) == 0 {
				t.Errorf("%s: no operations", path)
			}
			for key, op := range d.operations {
				if op.OperationID == "" || op.Summary == "" || op.Description == "" {
					t.Errorf("%s %s: operationId %q, summary %q, description %q: all are required", path, key, op.OperationID, op.Summary, op.Description)
				}
				if prev, dup := ids[op.OperationID]; dup && op.OperationID != "" {
					t.Errorf("operationId %s of %s is also %s's", op.OperationID, key, prev)
				}
				ids[op.OperationID] = key
				ok2xx := false
				for status := range op.Responses {
					ok2xx = ok2xx || (len(status) == 3 && status[0] == '2')
				}
				if !ok2xx {
					t.Errorf("%s %s: no 2xx response", path, key)
				}
			}
			found := map[string]string{}
			refs(d.tree, "", found)
			if len(found) == 0 {
				t.Errorf("%s: no $ref at all", path)
			}
			for at, ref := range found {
				if _, ok := d.resolve(ref); !ok {
					t.Errorf("%s: %s: %s does not resolve", path, at, ref)
				}
			}
		}
	})

	t.Run("PathParameters", func(t *testing.T) {
		t.Parallel()
		for path, d := range docs {
			for key, op := range d.operations {
				_, tmpl, _ := strings.Cut(key, " ")
				declared := map[string]bool{}
				for _, rawParam := range append(slices.Clone(d.pathParams[tmpl]), op.Parameters...) {
					var p openAPIParameter
					if err := json.Unmarshal(rawParam, &p); err != nil {
						t.Fatalf("%s %s: %v", path, key, err)
					}
					if p.Ref != "" {
						v, ok := d.resolve(p.Ref)
						if !ok {
							t.Errorf("%s %s: parameter %s does not resolve", path, key, p.Ref)
							continue
						}
						b, _ := json.Marshal(v)
						json.Unmarshal(b, &p)
					}
					if p.In == "path" {
						declared[p.Name] = true
					}
				}
				want := map[string]bool{}
				for _, m := range templateParam.FindAllStringSubmatch(tmpl, -1) {
					want[m[1]] = true
					if !declared[m[1]] {
						t.Errorf("%s %s: path parameter %s is not declared", path, key, m[1])
					}
				}
				for name := range declared {
					if !want[name] {
						t.Errorf("%s %s: declares path parameter %s, which the path does not have", path, key, name)
					}
				}
			}
		}
	})

	t.Run("EveryRouteAndNoOther", func(t *testing.T) {
		t.Parallel()
		app := getEnv(t).app
		type route struct{ method, path, fiberPath string }
		var routes []route
		seen := map[string]bool{}
		for _, r := range app.GetRoutes(true) {
			if r.Method == http.MethodHead || r.Method == "CONNECT" || r.Method == "TRACE" {
				continue // HEAD is served with every GET
			}
			described := false
			for _, prefix := range openAPIPrefixes {
				described = described || strings.HasPrefix(r.Path, prefix)
			}
			if !described {
				continue
			}
			if strings.ContainsAny(r.Path, "*+?") {
				t.Errorf("%s %s: a wildcard or optional parameter has no OpenAPI form", r.Method, r.Path)
			}
			key := r.Method + " " + fiberParam.ReplaceAllString(r.Path, "{$1}")
			if seen[key] {
				continue
			}
			seen[key] = true
			routes = append(routes, route{r.Method, fiberParam.ReplaceAllString(r.Path, "{$1}"), r.Path})
		}
		if len(routes) < 60 {
			t.Fatalf("only %d API routes listed", len(routes))
		}
		var undocumented, unrouted []string
		for _, r := range routes {
			doc := docFor(docs, r.path)
			op, ok := doc.operations[r.method+" "+r.path]
			if !ok {
				undocumented = append(undocumented, r.method+" "+r.path)
				continue
			}
			p, ok := web.RoutePolicy(app, r.method, r.fiberPath)
			if !ok {
				t.Errorf("%s %s has no policy", r.method, r.fiberPath)
				continue
			}
			checkSecurity(t, doc, r.method, r.path, op, p)
		}
		for path, d := range docs {
			for key := range d.operations {
				method, tmpl, _ := strings.Cut(key, " ")
				if !strings.HasPrefix(tmpl, openAPIPrefixes[path]) {
					t.Errorf("%s describes %s, which belongs to another document", path, key)
				}
				if !seen[method+" "+tmpl] {
					unrouted = append(unrouted, path+": "+key)
				}
			}
		}
		sort.Strings(undocumented)
		sort.Strings(unrouted)
		if len(undocumented) > 0 {
			t.Errorf("%d routes have no operation in their OpenAPI document (web/openapi/*.json):\n\t%s",
				len(undocumented), strings.Join(undocumented, "\n\t"))
		}
		if len(unrouted) > 0 {
			t.Errorf("%d operations have no route (web/server.go):\n\t%s", len(unrouted), strings.Join(unrouted, "\n\t"))
		}
	})

	t.Run("Served", func(t *testing.T) {
		t.Parallel()
		app := getEnv(t).app
		for path, want := range raw {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("X-Forwarded-For", "198.51.100.24")
			res, err := app.Test(req, 30_000)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d %s", path, res.StatusCode, got)
				continue
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("GET %s: Content-Type %q", path, ct)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=300" {
				t.Errorf("GET %s: Cache-Control %q", path, cc)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("GET %s: %d bytes that are not the embedded document's %d", path, len(got), len(want))
			}
		}
	})
}

func docFor(docs map[string]*openAPIDocument, path string) *openAPIDocument {
	for doc, prefix := range openAPIPrefixes {
		if strings.HasPrefix(path, prefix) {
			return docs[doc]
		}
	}
	return nil
}

// Security schemes: a staff route takes an API key or a session (with the
// CSRF token when it writes), each naming the policy's roles; a public route
// takes no staff credentials, only, for the subscriber's conversation calls,
// the conversation token.
var (
	staffSchemes  = []string{"apiKey", "session", "csrfToken"}
	publicSchemes = []string{"conversationToken", "conversationTokenQuery"}
)

func checkSecurity(t *testing.T, doc *openAPIDocument, method, path string, op openAPIOperation, p web.Policy) {
	t.Helper()
	key := method + " " + path
	if op.Policy != p.String() {
		t.Errorf("%s: x-herald-policy %q, but the route's policy is %s", key, op.Policy, p)
	}
	if op.Security == nil {
		t.Errorf("%s: no security (use [] for a public route)", key)
		return
	}
	reqs := *op.Security
	for _, req := range reqs {
		for scheme := range req {
			if !doc.schemes[scheme] {
				t.Errorf("%s: security scheme %s is not declared", key, scheme)
			}
		}
	}
	switch p.Kind {
	case web.PolicyPublic:
		for _, req := range reqs {
			for scheme := range req {
				if !slices.Contains(publicSchemes, scheme) {
					t.Errorf("%s: a public route that asks for %s", key, scheme)
				}
			}
		}
		if len(reqs) > 0 && !strings.HasPrefix(path, "/public/v1/conversation/") {
			t.Errorf("%s: a public route must have security: [] (only the subscriber's conversation calls take a token)", key)
		}
	case web.PolicyStaff:
		roles := make([]string, len(p.Roles))
		for i, r := range p.Roles {
			roles[i] = string(r)
		}
		slices.Sort(roles)
		write := method != http.MethodGet && method != http.MethodHead
		var sawKey, sawSession bool
		for _, req := range reqs {
			for scheme, scopes := range req {
				if !slices.Contains(staffSchemes, scheme) {
					t.Errorf("%s: a staff route that asks for %s", key, scheme)
				}
				if scheme == "csrfToken" {
					continue
				}
				got := slices.Sorted(slices.Values(scopes))
				if !slices.Equal(got, roles) {
					t.Errorf("%s: %s for roles %v, but the policy admits %v", key, scheme, got, roles)
				}
			}
			_, hasKey := req["apiKey"]
			_, hasSession := req["session"]
			_, hasCSRF := req["csrfToken"]
			switch {
			case hasKey && len(req) == 1:
				sawKey = true
			case hasSession && len(req) == 1+b2i(write) && hasCSRF == write:
				sawSession = true
			default:
				t.Errorf("%s: security requirement %v is neither an API key nor a session%s", key, req,
					map[bool]string{true: " with its CSRF token", false: " (without a CSRF token: it only reads)"}[write])
			}
		}
		if !sawKey || !sawSession {
			t.Errorf("%s: security %v must offer an API key and a session", key, reqs)
		}
	default:
		t.Errorf("%s: an API route with policy %s has no OpenAPI security", key, p)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
