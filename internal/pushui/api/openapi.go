package api

import (
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/manifest"
)

// shape is what a route takes and answers, for the OpenAPI document: a
// value of the request body's type (nil for none), of its success
// answer's, and that answer's status.
type shape struct {
	request, response any
	code              int
}

// shapes gives every route of the table its types, by "METHOD PATH".
// TestOpenAPI checks that none is missing.
var shapes = map[string]shape{
	"GET /api/servers":                            {nil, client.Servers{}, http.StatusOK},
	"GET /api/servers/{server}":                   {nil, manifest.Manifest{}, http.StatusOK},
	"PUT /api/servers/{server}":                   {manifest.Manifest{}, manifest.Manifest{}, http.StatusOK},
	"GET /api/servers/{server}/history":           {nil, client.History{}, http.StatusOK},
	"GET /api/servers/{server}/status":            {nil, manifest.Status{}, http.StatusOK},
	"GET /api/groups":                             {nil, client.Groups{}, http.StatusOK},
	"GET /api/groups/{group}":                     {nil, manifest.Manifest{}, http.StatusOK},
	"PUT /api/groups/{group}":                     {manifest.Manifest{}, manifest.Manifest{}, http.StatusOK},
	"GET /api/groups/{group}/history":             {nil, client.History{}, http.StatusOK},
	"GET /api/apps/{app}/packages":                {nil, client.Packages{}, http.StatusOK},
	"POST /api/deploy":                            {client.DeployRequest{}, client.DeployResponse{}, http.StatusOK},
	"POST /api/rollouts":                          {manifest.RolloutStrategy{}, manifest.RolloutRecord{}, http.StatusCreated},
	"GET /api/rollouts":                           {nil, client.RolloutPage{}, http.StatusOK},
	"GET /api/rollouts/{id}":                      {nil, manifest.RolloutRecord{}, http.StatusOK},
	"GET /api/rollouts/{group}/{env}/{id}":        {nil, manifest.RolloutRecord{}, http.StatusOK},
	"POST /api/rollouts/{id}/{cmd}":               {nil, manifest.RolloutRecord{}, http.StatusOK},
	"POST /api/rollouts/{group}/{env}/{id}/{cmd}": {nil, manifest.RolloutRecord{}, http.StatusOK},
	"GET /api/config":                             {nil, manifest.PushConfig{}, http.StatusOK},
	"PUT /api/config":                             {manifest.PushConfig{}, manifest.PushConfig{}, http.StatusOK},
	"GET /api/live":                               {nil, client.Live{}, http.StatusOK},
	"GET /api/openapi.json":                       {nil, map[string]any{}, http.StatusOK},
}

// OpenAPI returns the OpenAPI 3 document of routes: every route with its
// parameters, what it does and answers, and the schemas of its body and
// of its success answer, generated from the Go types the handlers encode
// and decode; an error answer is {"error": "…"}.
func OpenAPI(routes []Route) (*openapi3.T, error) {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info:    &openapi3.Info{Title: "pushui", Version: "1", Description: "pushpull's JSON API (docs/api.md)."},
		Paths:   openapi3.NewPaths(),
	}
	errSchema := openapi3.NewObjectSchema().WithProperty("error", openapi3.NewStringSchema())
	for _, rt := range routes {
		sh, ok := shapes[rt.Method+" "+rt.Path]
		if !ok {
			return nil, fmt.Errorf("api: route %s %s has no shape for the OpenAPI document", rt.Method, rt.Path)
		}
		op := openapi3.NewOperation()
		op.OperationID = operationID(rt)
		op.Summary, _, _ = strings.Cut(rt.What, ". ")
		op.Description = rt.What + "\n\nAnswers: " + rt.Answers + "\n\nExample: `" + rt.Example + "`"
		for _, seg := range strings.Split(rt.Path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				op.AddParameter(openapi3.NewPathParameter(strings.TrimSuffix(name, "}")).WithSchema(openapi3.NewStringSchema()))
			}
		}
		if sh.request != nil {
			ref, err := schemaOf(sh.request)
			if err != nil {
				return nil, err
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
		}
		ref, err := schemaOf(sh.response)
		if err != nil {
			return nil, err
		}
		op.AddResponse(sh.code, openapi3.NewResponse().WithDescription(http.StatusText(sh.code)).WithJSONSchemaRef(ref))
		op.Responses.Set("default", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("an error").WithJSONSchema(errSchema)})
		item := doc.Paths.Value(rt.Path)
		if item == nil {
			item = &openapi3.PathItem{}
			doc.Paths.Set(rt.Path, item)
		}
		item.SetOperation(rt.Method, op)
	}
	return doc, nil
}

func operationID(rt Route) string {
	id := strings.ToLower(rt.Method)
	for _, seg := range strings.Split(strings.TrimPrefix(rt.Path, "/api/"), "/") {
		seg = strings.Trim(seg, "{}")
		seg = strings.TrimSuffix(seg, ".json")
		id += strings.ToUpper(seg[:1]) + seg[1:]
	}
	return id
}

var (
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	rawMessage    = reflect.TypeFor[json.RawMessage]()
)

// schemaOf generates v's schema from its type and JSON tags, with the
// types that encode themselves described as they encode: names and
// durations as strings, a quota as a count or a percentage, a raw message
// as any JSON, and a manifest as its document (manifestSchema).
func schemaOf(v any) (*openapi3.SchemaRef, error) {
	return openapi3gen.NewSchemaRefForValue(v, nil, openapi3gen.SchemaCustomizer(func(_ string, t reflect.Type, _ reflect.StructTag, s *openapi3.Schema) error {
		base := t
		for base.Kind() == reflect.Pointer {
			base = base.Elem()
		}
		switch {
		case base == reflect.TypeFor[manifest.Manifest]():
			*s = *manifestSchema()
		case base == reflect.TypeFor[manifest.Quota]():
			*s = openapi3.Schema{OneOf: openapi3.SchemaRefs{openapi3.NewIntegerSchema().NewRef(), openapi3.NewStringSchema().NewRef()}}
		case base == rawMessage:
			*s = openapi3.Schema{Nullable: true}
		case base.Implements(textMarshaler) || reflect.PointerTo(base).Implements(textMarshaler):
			*s = *openapi3.NewStringSchema()
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			s.Nullable = true // Go's nil encodes as null
		}
		return nil
	}))
}

var manifestSchemaOnce = sync.OnceValue(func() *openapi3.Schema {
	str := openapi3.NewStringSchema
	entry := openapi3.NewObjectSchema().
		WithProperty("package", str()).
		WithProperty("env", str()).
		WithProperty("config", openapi3.NewObjectSchema().WithAdditionalProperties(str())).
		WithProperty("on_failure", str()).
		WithProperty("restart", str()).
		WithProperty("stage", str()).
		WithProperty("rollout", openapi3.NewObjectSchema()).
		WithProperty("health", openapi3.NewObjectSchema())
	entry.Required = []string{"package"}
	m := openapi3.NewObjectSchema().
		WithProperty("revision", openapi3.NewInt64Schema()).
		WithProperty("packages", openapi3.NewArraySchema().WithItems(&openapi3.Schema{OneOf: openapi3.SchemaRefs{str().NewRef(), entry.NewRef()}}))
	m.Required = []string{"packages"}
	return m
})

// manifestSchema is a manifest as servers/{server}.json holds it: a
// revision, and packages, each a package name or an entry.
func manifestSchema() *openapi3.Schema {
	cp := *manifestSchemaOnce()
	return &cp
}

// apiOpenAPI answers GET /api/openapi.json: the OpenAPI 3 document of the
// route table.
func (s *Handler) apiOpenAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := OpenAPI(s.Routes())
	if err != nil {
		WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, doc)
}
