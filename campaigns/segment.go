package campaigns

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/herald-im/herald/invalid"
)

// Segment narrows an audience. A node is exactly one of: And, Or, Not, or a
// condition on a subscriber Field or a JSON attribute (Attr, dotted for
// nested keys). It compiles to parameterised SQL; no user text becomes SQL.
//
//	{"and": [{"field": "locale", "op": "in", "value": ["de-DE", "de-AT"]},
//	         {"not": {"attr": "plan", "op": "eq", "value": "free"}},
//	         {"attr": "orders", "op": "gte", "value": 3}]}
type Segment struct {
	And   []Segment       `json:"and,omitempty"`
	Or    []Segment       `json:"or,omitempty"`
	Not   *Segment        `json:"not,omitempty"`
	Field string          `json:"field,omitempty"`
	Attr  string          `json:"attr,omitempty"`
	Op    string          `json:"op,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

const (
	maxSegmentDepth = 8
	maxSegmentNodes = 100
	maxInValues     = 1000
)

var attrRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,4}$`)

// fields are the subscriber columns a segment may test, with their kind.
var fields = map[string]string{
	"locale": "text", "timezone": "text", "email": "text", "external_id": "text", "created_at": "time",
}

type compiler struct {
	args  []any
	first int
	nodes int
}

func (c *compiler) arg(v any) string {
	c.args = append(c.args, v)
	return fmt.Sprintf("$%d", c.first+len(c.args)-1)
}

// Compile returns a boolean SQL expression over subscribers aliased "s",
// with placeholders numbered from firstArg, and its arguments.
func (g *Segment) Compile(firstArg int) (string, []any, error) {
	c := &compiler{first: firstArg}
	sql, err := c.node(g, "audience.segment", 0)
	if err != nil {
		return "", nil, err
	}
	return sql, c.args, nil
}

func (c *compiler) node(g *Segment, path string, depth int) (string, error) {
	c.nodes++
	if depth > maxSegmentDepth {
		return "", invalid.Fieldf(path, "is nested more than %d levels", maxSegmentDepth)
	}
	if c.nodes > maxSegmentNodes {
		return "", invalid.Fieldf("audience.segment", "has more than %d conditions", maxSegmentNodes)
	}
	kinds := 0
	for _, set := range []bool{g.And != nil, g.Or != nil, g.Not != nil, g.Field != "", g.Attr != ""} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return "", invalid.Field(path, "must be exactly one of and, or, not, field or attr")
	}
	switch {
	case g.And != nil || g.Or != nil:
		list, join := g.And, " AND "
		if g.Or != nil {
			list, join = g.Or, " OR "
		}
		if len(list) == 0 {
			return "", invalid.Field(path, "and/or needs at least one condition")
		}
		parts := make([]string, len(list))
		for i := range list {
			p, err := c.node(&list[i], fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return "", err
			}
			parts[i] = p
		}
		return "(" + strings.Join(parts, join) + ")", nil
	case g.Not != nil:
		p, err := c.node(g.Not, path+".not", depth+1)
		if err != nil {
			return "", err
		}
		return "(NOT " + p + ")", nil
	case g.Field != "":
		return c.field(g, path)
	}
	return c.attr(g, path)
}

func (c *compiler) field(g *Segment, path string) (string, error) {
	kind, ok := fields[g.Field]
	if !ok {
		return "", invalid.Fieldf(path+".field", "must be one of locale, timezone, email, external_id, created_at")
	}
	col := "s." + g.Field
	if g.Op == "exists" {
		return fmt.Sprintf("coalesce(%s::text <> '', false)", col), nil
	}
	if kind == "time" {
		var t time.Time
		if err := json.Unmarshal(g.Value, &t); err != nil {
			return "", invalid.Field(path+".value", "must be an RFC 3339 time")
		}
		op, err := comparison(g.Op, path)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("coalesce(%s %s %s, false)", col, op, c.arg(t)), nil
	}
	switch g.Op {
	case "eq", "neq":
		var s string
		if err := json.Unmarshal(g.Value, &s); err != nil {
			return "", invalid.Field(path+".value", "must be a string")
		}
		expr := fmt.Sprintf("coalesce(%s = %s, false)", col, c.arg(s))
		if g.Op == "neq" {
			expr = "(NOT " + expr + ")"
		}
		return expr, nil
	case "in":
		var list []string
		if err := json.Unmarshal(g.Value, &list); err != nil || len(list) == 0 || len(list) > maxInValues {
			return "", invalid.Fieldf(path+".value", "must be a list of 1 to %d strings", maxInValues)
		}
		return fmt.Sprintf("coalesce(%s = ANY(%s::text[]), false)", col, c.arg(list)), nil
	}
	return "", invalid.Field(path+".op", "for this field must be eq, neq, in or exists")
}

func comparison(op, path string) (string, error) {
	switch op {
	case "lt":
		return "<", nil
	case "lte":
		return "<=", nil
	case "gt":
		return ">", nil
	case "gte":
		return ">=", nil
	case "eq":
		return "=", nil
	}
	return "", invalid.Field(path+".op", "must be eq, lt, lte, gt or gte")
}

func (c *compiler) attr(g *Segment, path string) (string, error) {
	if !attrRE.MatchString(g.Attr) {
		return "", invalid.Field(path+".attr", "must be a key of letters, digits, _ or -, dotted for nested keys")
	}
	p := c.arg(strings.Split(g.Attr, "."))
	val := "s.attributes #> " + p + "::text[]"
	switch g.Op {
	case "exists":
		return fmt.Sprintf("(%s IS NOT NULL)", val), nil
	case "eq", "neq":
		v, err := scalar(g.Value, path)
		if err != nil {
			return "", err
		}
		expr := fmt.Sprintf("coalesce(%s = %s::jsonb, false)", val, c.arg(string(v)))
		if g.Op == "neq" {
			expr = "(NOT " + expr + ")"
		}
		return expr, nil
	case "in":
		var list []json.RawMessage
		if err := json.Unmarshal(g.Value, &list); err != nil || len(list) == 0 || len(list) > maxInValues {
			return "", invalid.Fieldf(path+".value", "must be a list of 1 to %d values", maxInValues)
		}
		vals := make([]string, len(list))
		for i, raw := range list {
			v, err := scalar(raw, path)
			if err != nil {
				return "", err
			}
			vals[i] = string(v)
		}
		return fmt.Sprintf("coalesce(%s = ANY(%s::text[]::jsonb[]), false)", val, c.arg(vals)), nil
	case "lt", "lte", "gt", "gte":
		op, err := comparison(g.Op, path)
		if err != nil {
			return "", err
		}
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(g.Value))
		dec.UseNumber()
		var any any
		if err := dec.Decode(&any); err != nil {
			return "", invalid.Field(path+".value", "must be a number or a string")
		}
		switch v := any.(type) {
		case json.Number:
			n = v
			return fmt.Sprintf("coalesce(CASE WHEN jsonb_typeof(%s) = 'number' THEN (%s)::text::numeric END %s %s::numeric, false)",
				val, val, op, c.arg(n.String())), nil
		case string:
			return fmt.Sprintf("coalesce(CASE WHEN jsonb_typeof(%s) = 'string' THEN %s #>> '{}' END %s %s::text, false)",
				val, val, op, c.arg(v)), nil
		}
		return "", invalid.Field(path+".value", "must be a number or a string")
	}
	return "", invalid.Field(path+".op", "must be eq, neq, in, lt, lte, gt, gte or exists")
}

// scalar accepts a JSON string, number or boolean and returns it canonical.
func scalar(raw json.RawMessage, path string) ([]byte, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalid.Field(path+".value", "must be a string, number or boolean")
	}
	switch v.(type) {
	case string, float64, bool:
		b, err := json.Marshal(v)
		if err != nil { // a float64 decoded from JSON is finite; kept for the contract
			return nil, invalid.Field(path+".value", "must be a string, number or boolean")
		}
		return b, nil
	}
	return nil, invalid.Field(path+".value", "must be a string, number or boolean")
}
