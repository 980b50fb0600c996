package pushui

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/pushpull/pushpull/manifest"
)

// TestOpenAPI checks GET /api/openapi.json with kin-openapi: the document
// is valid OpenAPI 3, every example body of the reference validates
// against its route's request schema, and what a real pushui answers to
// every GET route (with a rollout started, so that each has something to
// say) validates against the route's answer schema.
func TestOpenAPI(t *testing.T) {
	f := groupFixture(t)
	s := f.server()
	w := do(t, s, http.MethodPost, "/api/rollouts", strings.NewReader(`{"group": "web", "package": "`+f.h2.String()+`", "canary": 1}`), "Content-Type", "application/json")
	wantCode(t, w, http.StatusCreated)
	rec := decode[manifest.RolloutRecord](t, w)

	w = do(t, s, http.MethodGet, "/api/openapi.json", nil)
	wantCode(t, w, http.StatusOK)
	doc, err := openapi3.NewLoader().LoadFromData(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3: %v", err)
	}
	params := map[string]string{"{server}": "web-1", "{group}": "web", "{app}": "hello", "{env}": "hello", "{id}": rec.ID}
	bodies, answers := 0, 0
	for _, rt := range s.api.Routes() {
		op := doc.Paths.Find(rt.Path).GetOperation(rt.Method)
		if op == nil {
			t.Errorf("%s %s is not in the document", rt.Method, rt.Path)
			continue
		}
		if rt.Body != "" {
			schema := op.RequestBody.Value.Content.Get("application/json").Schema.Value
			for _, example := range strings.Split(rt.Body, "  or  ") {
				var v any
				if err := json.Unmarshal([]byte(example), &v); err != nil {
					t.Errorf("%s %s: the reference's body is not JSON: %v\n%s", rt.Method, rt.Path, err, example)
					continue
				}
				if err := schema.VisitJSON(v); err != nil {
					t.Errorf("%s %s: the reference's body does not fit the schema: %v\n%s", rt.Method, rt.Path, err, example)
				}
				bodies++
			}
		}
		if rt.Method != http.MethodGet {
			continue
		}
		path := rt.Path
		for k, v := range params {
			path = strings.ReplaceAll(path, k, v)
		}
		w := do(t, s, http.MethodGet, path, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, w.Code, w.Body)
			continue
		}
		var v any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		schema := op.Responses.Status(http.StatusOK).Value.Content.Get("application/json").Schema.Value
		if err := schema.VisitJSON(v); err != nil {
			t.Errorf("GET %s: the answer does not fit the schema: %v\n%s", path, err, w.Body)
		}
		answers++
	}
	// The schemas refuse what the API would: a wrong type, a manifest
	// whose packages are not names or entries.
	for _, bad := range []struct{ method, path, body string }{
		{"POST", "/api/deploy", `{"package": 5}`},
		{"POST", "/api/rollouts", `{"group": "web", "canary": "one"}`},
		{"PUT", "/api/servers/{server}", `{"revision": 1, "packages": [7]}`},
		{"PUT", "/api/config", `{"servers": {"web-1": "hello"}}`},
	} {
		var v any
		if err := json.Unmarshal([]byte(bad.body), &v); err != nil {
			t.Fatal(err)
		}
		schema := doc.Paths.Find(bad.path).GetOperation(bad.method).RequestBody.Value.Content.Get("application/json").Schema.Value
		if err := schema.VisitJSON(v); err == nil {
			t.Errorf("%s %s: the schema accepts %s", bad.method, bad.path, bad.body)
		}
	}
	if bodies < 5 || answers < 12 {
		t.Errorf("checked %d example bodies and %d answers: the table lost routes", bodies, answers)
	}
}
