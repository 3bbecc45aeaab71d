package api

import (
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OpenAPI builds the OpenAPI 3.1 document from the route table, so the
// document cannot drift from what is served. docs/openapi.json is this
// output, committed; a test fails when the two differ.
func (s *Server) OpenAPI() map[string]any {
	g := &schemaGen{components: map[string]any{}}
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"operationId": operationID(rt),
			"summary":     rt.Summary,
			"tags":        []string{rt.Tag},
			"x-steward-access": map[string]any{
				"kind": string(rt.Access.Kind), "permission": string(rt.Access.Permission), "session_only": rt.SessionOnly,
			},
		}
		if rt.Access.Kind == AccessPortal {
			op["security"] = []map[string][]string{{"portal": {}}}
		} else if rt.Access.authenticated() {
			op["security"] = []map[string][]string{{"bearer": {}}, {"session": {}}}
		} else {
			op["security"] = []map[string][]string{}
		}
		var params []map[string]any
		for _, p := range rt.PathParams() {
			params = append(params, map[string]any{"name": p, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": map[string]any{"type": q.Type}})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.In != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.In))}}}
		}
		responses := map[string]any{"default": map[string]any{"description": "An error",
			"content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(ErrorBody{}))}}}}
		status := rt.successStatus()
		switch {
		case rt.Produces != "":
			responses[strconv.Itoa(status)] = map[string]any{"description": "Success", "content": map[string]any{rt.Produces: map[string]any{"schema": map[string]any{"type": "string"}}}}
		case status == 204:
			responses["204"] = map[string]any{"description": "Done"}
		default:
			responses[strconv.Itoa(status)] = map[string]any{"description": "Success", "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Out))}}}
		}
		op["responses"] = responses
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Steward API", "version": "1",
			"description": "Device management that holds as little personal data as the job needs. Errors always have the shape {\"error\":{\"code\",\"message\",\"details\"}}. Request bodies are at most " + strconv.Itoa(MaxBodyBytes) + " bytes of application/json (a profile's create and update, " +
				strconv.Itoa(MaxProfileBodyBytes) + "; a bulk command, " + strconv.Itoa(MaxBulkCommandBodyBytes) + "); unknown fields are refused."},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.components,
			"securitySchemes": map[string]any{
				"bearer":  map[string]any{"type": "http", "scheme": "bearer", "description": "API token (stt_…) or CLI session (sws_…)"},
				"portal":  map[string]any{"type": "http", "scheme": "bearer", "description": "Employee portal access key (spt_…); opens /api/v1/portal/* for its own person only"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie, "description": "Browser session; state-changing requests also need the " + CSRFHeader + " header"},
			},
		},
	}
}

// OpenAPIJSON is the document as committed to docs/openapi.json.
func (s *Server) OpenAPIJSON() []byte {
	b, err := json.MarshalIndent(s.OpenAPI(), "", "  ")
	if err != nil {
		panic(err) // the document is built from plain maps; this cannot fail
	}
	return append(b, '\n')
}

func (s *Server) openAPIDocument(c *Call) (any, error) {
	c.W.Header().Set("Content-Type", "application/json")
	_, _ = c.W.Write(s.OpenAPIJSON())
	return streamed, nil
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

func operationID(rt Route) string {
	parts := nonWord.Split(strings.ToLower(rt.Method)+" "+strings.TrimPrefix(rt.Path, "/api/v1"), -1)
	var b strings.Builder
	for i, p := range parts {
		if p == "" {
			continue
		}
		if i == 0 {
			b.WriteString(p)
			continue
		}
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return b.String()
}

type schemaGen struct{ components map[string]any }

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// enumerated is a string type whose values are listed (actions.Kind): the
// document takes the list from the code that checks it.
type enumerated interface{ EnumValues() []string }

var enumeratedType = reflect.TypeOf((*enumerated)(nil)).Elem()

// schema describes t as JSON Schema (2020-12, as OpenAPI 3.1 uses); named
// structs go to components and are referenced.
func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case t.Kind() == reflect.String && t.Implements(enumeratedType):
		return map[string]any{"type": "string", "enum": reflect.Zero(t).Interface().(enumerated).EnumValues()}
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"type": "object"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Struct:
		name := schemaName(t)
		if _, ok := g.components[name]; !ok {
			g.components[name] = map[string]any{} // placeholder for recursion
			g.components[name] = g.structSchema(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = g.schema(f.Type)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
				required = append(required, name)
			}
		}
	}
	walk(t)
	sort.Strings(required)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// schemaName turns List[github.com/…/api.TenantView] into ListTenantView.
func schemaName(t reflect.Type) string {
	name := t.Name()
	if i := strings.Index(name, "["); i >= 0 {
		inner := name[i+1 : len(name)-1]
		if j := strings.LastIndex(inner, "."); j >= 0 {
			inner = inner[j+1:]
		}
		name = name[:i] + inner
	}
	return name
}
