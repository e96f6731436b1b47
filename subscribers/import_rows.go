package subscribers

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/herald-im/herald/invalid"
)

// rowParser turns CSV records into staging rows, setting bad rows aside with
// their line number and reason.
type rowParser struct {
	lists    map[string]int64
	progress func(rowsRead int64)
	reported time.Time // when progress was last written
	// Validated zones and locales: a file repeats a few values a million
	// times, and loading a zone costs far more than a map lookup.
	zones   map[string]error
	locales map[string]localeResult

	r      *csv.Reader
	col    map[string]int
	width  int
	read   int64
	failed int64
	errors []RowError
}

func (p *rowParser) start(src io.Reader) error {
	p.r = csv.NewReader(src)
	p.r.ReuseRecord = true
	p.r.FieldsPerRecord = -1 // checked per row, so a short row is reported, not fatal
	header, err := p.r.Read()
	if err != nil {
		return fmt.Errorf("subscribers: import header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\xef\xbb\xbf")
	}
	if p.col, err = headerIndex(header); err != nil {
		return err
	}
	p.width = len(header)
	return nil
}

func (p *rowParser) fail(line int, err error) {
	p.failed++
	if len(p.errors) >= maxRowErrors {
		return
	}
	re := RowError{Line: line, Reason: err.Error()}
	if ie, ok := invalid.As(err); ok {
		re.Field, re.Reason = ie.Field, ie.Reason
	}
	p.errors = append(p.errors, re)
}

// next returns the next valid row for COPY; nil, nil at the end (pgx's
// CopyFromFunc takes any error, io.EOF included, as a reason to abort).
func (p *rowParser) next() ([]any, error) {
	for {
		rec, err := p.r.Read()
		if errors.Is(err, io.EOF) {
			p.progress(p.read)
			return nil, nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			p.read++
			p.fail(pe.StartLine, fmt.Errorf("broken CSV: %v", pe.Err))
			continue
		}
		if err != nil {
			return nil, err
		}
		p.read++
		// Progress is for a person watching a bar: a few times a second
		// is live, and costs an update per quarter second at most.
		if p.read%5_000 == 0 && time.Since(p.reported) >= 250*time.Millisecond {
			p.reported = time.Now()
			p.progress(p.read)
		}
		line, _ := p.r.FieldPos(0)
		if len(rec) == 1 && rec[0] == "" {
			p.read--
			continue // blank line
		}
		if len(rec) != p.width {
			p.fail(line, fmt.Errorf("has %d fields, the header has %d", len(rec), p.width))
			continue
		}
		row, err := p.row(line, rec)
		if err != nil {
			p.fail(line, err)
			continue
		}
		return row, nil
	}
}

func (p *rowParser) field(rec []string, name string) string {
	if i, ok := p.col[name]; ok {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

func (p *rowParser) row(line int, rec []string) ([]any, error) {
	var extID, email *string
	if v := p.field(rec, "external_id"); v != "" {
		if err := ValidateExternalID("external_id", v); err != nil {
			return nil, err
		}
		extID = &v
	}
	if v := p.field(rec, "email"); v != "" {
		if err := ValidateEmail("email", v); err != nil {
			return nil, err
		}
		email = &v
	}
	if extID == nil && email == nil {
		return nil, invalid.Field("external_id", "a row needs an external_id or an email")
	}
	locale, err := p.locale(p.field(rec, "locale"))
	if err != nil {
		return nil, err
	}
	tz := p.field(rec, "timezone")
	if err := p.zone(tz); err != nil {
		return nil, err
	}
	var attrs any
	if v := p.field(rec, "attributes"); v != "" {
		a, err := ValidateAttributes("attributes", json.RawMessage(v))
		if err != nil {
			return nil, err
		}
		attrs = string(a)
	}
	var lists []int64
	if v := p.field(rec, "lists"); v != "" {
		for _, slug := range strings.Split(v, ";") {
			slug = strings.TrimSpace(slug)
			if slug == "" {
				continue
			}
			id, ok := p.lists[slug]
			if !ok {
				return nil, invalid.Fieldf("lists", "no list %q", slug)
			}
			if !slices.Contains(lists, id) {
				lists = append(lists, id)
			}
		}
	}
	source := p.field(rec, "consent_source")
	if len(lists) > 0 && source == "" {
		return nil, invalid.Field("consent_source", "is required for list memberships: say where consent was given")
	}
	if err := ValidateText("consent_source", source, 200, false); err != nil {
		return nil, err
	}
	return []any{line, extID, email, locale, tz, attrs, lists, source}, nil
}

type localeResult struct {
	canonical string
	err       error
}

const maxCached = 10_000

func (p *rowParser) zone(tz string) error {
	if err, ok := p.zones[tz]; ok {
		return err
	}
	err := ValidateTimezone("timezone", tz)
	if p.zones == nil {
		p.zones = map[string]error{}
	}
	if len(p.zones) < maxCached {
		p.zones[tz] = err
	}
	return err
}

func (p *rowParser) locale(l string) (string, error) {
	if r, ok := p.locales[l]; ok {
		return r.canonical, r.err
	}
	c, err := ValidateLocale("locale", l)
	if p.locales == nil {
		p.locales = map[string]localeResult{}
	}
	if len(p.locales) < maxCached {
		p.locales[l] = localeResult{c, err}
	}
	return c, err
}
