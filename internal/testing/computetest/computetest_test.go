package computetest_test

import (
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"

	"cloud.google.com/go/compute/metadata"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/pushpull/pushpull/internal/testing/computetest"
	"github.com/pushpull/pushpull/internal/testing/metadatatest"
)

var web1 = computetest.Instance{Project: "my-project", Zone: "us-central1-a", Name: "web-1"}

// client is the real Compute API client pointed at s.
func client(t *testing.T, s *computetest.Server) *compute.Service {
	t.Helper()
	svc, err := compute.NewService(t.Context(), option.WithEndpoint(s.Endpoint), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// itemsOf turns the client's items into a map.
func itemsOf(md *compute.Metadata) map[string]string {
	m := map[string]string{}
	for _, it := range md.Items {
		v := ""
		if it.Value != nil {
			v = *it.Value
		}
		m[it.Key] = v
	}
	return m
}

func item(k, v string) *compute.MetadataItems { return &compute.MetadataItems{Key: k, Value: &v} }

// apiError returns err's HTTP status and first reason, failing the test
// when err is not a *googleapi.Error.
func apiError(t *testing.T, err error) (int, string) {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error %v (%T) is not a *googleapi.Error", err, err)
	}
	reason := ""
	if len(gerr.Errors) > 0 {
		reason = gerr.Errors[0].Reason
	}
	return gerr.Code, reason
}

// TestGetSetMetadata walks the protocol with the real client: get, set
// under the fingerprint (the fingerprint changes), a set under the old
// fingerprint (412, nothing changed), and a change by someone else (the
// fingerprint read before it is stale).
func TestGetSetMetadata(t *testing.T) {
	s := computetest.Start(t)
	s.Add(web1, map[string]string{"b": "2", "a": "1"})
	svc := client(t, s)

	inst, err := svc.Instances.Get(web1.Project, web1.Zone, web1.Name).Context(t.Context()).Do()
	if err != nil {
		t.Fatal(err)
	}
	if inst.Name != "web-1" || inst.Metadata == nil || inst.Metadata.Fingerprint == "" {
		t.Fatalf("instance %+v: want web-1 with metadata and a fingerprint", inst)
	}
	if got := itemsOf(inst.Metadata); !maps.Equal(got, map[string]string{"a": "1", "b": "2"}) {
		t.Fatalf("items %v", got)
	}
	fp0 := inst.Metadata.Fingerprint

	md := &compute.Metadata{Fingerprint: fp0, Items: []*compute.MetadataItems{item("a", "1"), item("pushrev", "r1")}}
	op, err := svc.Instances.SetMetadata(web1.Project, web1.Zone, web1.Name, md).Context(t.Context()).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.Status != "DONE" || op.OperationType != "setMetadata" || op.Error != nil {
		t.Errorf("operation %+v, want a finished setMetadata", op)
	}
	if got, _ := s.Items(web1); !maps.Equal(got, map[string]string{"a": "1", "pushrev": "r1"}) {
		t.Fatalf("items after set %v: want exactly those sent", got)
	}

	// The old fingerprint is stale now.
	md.Items = []*compute.MetadataItems{item("pushrev", "r2")}
	_, err = svc.Instances.SetMetadata(web1.Project, web1.Zone, web1.Name, md).Context(t.Context()).Do()
	if code, reason := apiError(t, err); code != http.StatusPreconditionFailed || reason != "conditionNotMet" {
		t.Fatalf("set with a stale fingerprint: %d %s, want 412 conditionNotMet", code, reason)
	}
	if got, _ := s.Items(web1); got["pushrev"] != "r1" {
		t.Fatalf("a refused set changed the items: %v", got)
	}

	// Someone else's change makes a fingerprint read before it stale.
	inst, err = svc.Instances.Get(web1.Project, web1.Zone, web1.Name).Context(t.Context()).Do()
	if err != nil {
		t.Fatal(err)
	}
	if inst.Metadata.Fingerprint == fp0 {
		t.Fatal("fingerprint unchanged by a set")
	}
	s.SetItem(web1, "other", "x")
	md.Fingerprint = inst.Metadata.Fingerprint
	_, err = svc.Instances.SetMetadata(web1.Project, web1.Zone, web1.Name, md).Context(t.Context()).Do()
	if code, _ := apiError(t, err); code != http.StatusPreconditionFailed {
		t.Fatalf("set after SetItem: %d, want 412", code)
	}
}

// TestErrors checks the 404s and 400s, as Google-style errors the client
// parses.
func TestErrors(t *testing.T) {
	s := computetest.Start(t)
	s.Add(web1, nil)
	svc := client(t, s)
	fp := func() string {
		inst, err := svc.Instances.Get(web1.Project, web1.Zone, web1.Name).Context(t.Context()).Do()
		if err != nil {
			t.Fatal(err)
		}
		return inst.Metadata.Fingerprint
	}
	tests := []struct {
		name   string
		call   func() error
		code   int
		reason string
	}{
		{"get unknown instance", func() error {
			_, err := svc.Instances.Get(web1.Project, web1.Zone, "web-9").Context(t.Context()).Do()
			return err
		}, 404, "notFound"},
		{"get in another zone", func() error {
			_, err := svc.Instances.Get(web1.Project, "europe-west4-b", web1.Name).Context(t.Context()).Do()
			return err
		}, 404, "notFound"},
		{"get in another project", func() error {
			_, err := svc.Instances.Get("other-project", web1.Zone, web1.Name).Context(t.Context()).Do()
			return err
		}, 404, "notFound"},
		{"set unknown instance", func() error {
			_, err := svc.Instances.SetMetadata(web1.Project, web1.Zone, "web-9", &compute.Metadata{Fingerprint: fp()}).Context(t.Context()).Do()
			return err
		}, 404, "notFound"},
		{"set without fingerprint", func() error {
			_, err := svc.Instances.SetMetadata(web1.Project, web1.Zone, web1.Name, &compute.Metadata{Items: []*compute.MetadataItems{item("a", "1")}}).Context(t.Context()).Do()
			return err
		}, 412, "conditionNotMet"},
		{"set duplicate key", func() error {
			md := &compute.Metadata{Fingerprint: fp(), Items: []*compute.MetadataItems{item("a", "1"), item("a", "2")}}
			_, err := svc.Instances.SetMetadata(web1.Project, web1.Zone, web1.Name, md).Context(t.Context()).Do()
			return err
		}, 400, "invalid"},
		{"set invalid key", func() error {
			md := &compute.Metadata{Fingerprint: fp(), Items: []*compute.MetadataItems{item("a/b", "1")}}
			_, err := svc.Instances.SetMetadata(web1.Project, web1.Zone, web1.Name, md).Context(t.Context()).Do()
			return err
		}, 400, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, reason := apiError(t, tt.call())
			if code != tt.code || reason != tt.reason {
				t.Fatalf("got %d %s, want %d %s", code, reason, tt.code, tt.reason)
			}
		})
	}
	if got, _ := s.Items(web1); len(got) != 0 {
		t.Errorf("refused requests changed the items: %v", got)
	}
	s.SetItem(web1, "a", "1") // an instance added with nil items takes items
	if got, _ := s.Items(web1); got["a"] != "1" {
		t.Errorf("items after SetItem: %v", got)
	}
}

// TestMirror checks that the items of a mirrored instance appear under
// instance/attributes/ on the metadata server, as read by the real
// metadata client, and follow setMetadata: changed, added and removed.
func TestMirror(t *testing.T) {
	s := computetest.Start(t)
	md := metadatatest.Start(t)
	md.Setenv(t)
	s.Add(web1, map[string]string{"pushrev": "0", "gone": "soon"})
	s.Mirror(web1, md)
	mc := metadata.NewWithOptions(&metadata.Options{})
	attr := func(key string) (string, bool) {
		t.Helper()
		v, err := mc.InstanceAttributeValueWithContext(t.Context(), key)
		var nd metadata.NotDefinedError
		if errors.As(err, &nd) {
			return "", false
		}
		if err != nil {
			t.Fatalf("attribute %s: %v", key, err)
		}
		return v, true
	}
	if v, ok := attr("pushrev"); !ok || v != "0" {
		t.Fatalf("pushrev = %q, %v before any set; want 0", v, ok)
	}

	svc := client(t, s)
	inst, err := svc.Instances.Get(web1.Project, web1.Zone, web1.Name).Context(t.Context()).Do()
	if err != nil {
		t.Fatal(err)
	}
	set := &compute.Metadata{Fingerprint: inst.Metadata.Fingerprint, Items: []*compute.MetadataItems{item("pushrev", "1"), item("new", "here")}}
	if _, err := svc.Instances.SetMetadata(web1.Project, web1.Zone, web1.Name, set).Context(t.Context()).Do(); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"pushrev": "1", "new": "here"} {
		if v, ok := attr(key); !ok || v != want {
			t.Errorf("%s = %q, %v; want %q", key, v, ok, want)
		}
	}
	if v, ok := attr("gone"); ok {
		t.Errorf("removed item still mirrored: gone = %q", v)
	}
	s.SetItem(web1, "pushrev", "2")
	if v, _ := attr("pushrev"); v != "2" {
		t.Errorf("pushrev = %q after SetItem, want 2", v)
	}
	names, err := mc.InstanceAttributesWithContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "new,pushrev" {
		t.Errorf("attributes %s, want new,pushrev", got)
	}
}
