package testserver

import (
	"context"
	"os"
	"sync"
	"testing"

	pb "cloud.google.com/go/pubsub/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/pstest"
)

// GCPPubSub is the Pub/Sub client library's own in-process server
// (cloud.google.com/go/pubsub/pstest), reached through PUBSUB_EMULATOR_HOST
// by gocloud's gcppubsub:// URLs.
type GCPPubSub struct {
	srv *pstest.Server
}

var (
	gcpPubSubOnce sync.Once
	gcpPubSub     *GCPPubSub
)

// StartGCPPubSub returns the test process's Pub/Sub server, started on
// first use and shared by every test of the process: gocloud's gcppubsub
// opener dials PUBSUB_EMULATOR_HOST once and keeps that connection, so one
// process can only ever reach one server. It sets PUBSUB_EMULATOR_HOST for
// the rest of the process. Tests keep apart by their names.
func StartGCPPubSub(t testing.TB) *GCPPubSub {
	t.Helper()
	gcpPubSubOnce.Do(func() {
		gcpPubSub = &GCPPubSub{srv: pstest.NewServer()}
		os.Setenv("PUBSUB_EMULATOR_HOST", gcpPubSub.srv.Addr)
	})
	return gcpPubSub
}

// Topic creates topics/{name} in project and returns its gcppubsub:// URL.
func (g *GCPPubSub) Topic(t testing.TB, project, name string) string {
	t.Helper()
	full := "projects/" + project + "/topics/" + name
	if _, err := g.srv.GServer.CreateTopic(context.Background(), &pb.Topic{Name: full}); err != nil {
		t.Fatalf("pstest: create %s: %v", full, err)
	}
	return "gcppubsub://" + full
}

// Subscription creates subscriptions/{name} to topics/{topic} in project
// and returns its gcppubsub:// URL.
func (g *GCPPubSub) Subscription(t testing.TB, project, name, topic string) string {
	t.Helper()
	full := "projects/" + project + "/subscriptions/" + name
	if _, err := g.srv.GServer.CreateSubscription(context.Background(), &pb.Subscription{Name: full, Topic: "projects/" + project + "/topics/" + topic}); err != nil {
		t.Fatalf("pstest: create %s: %v", full, err)
	}
	return "gcppubsub://" + full
}
