// Package natstest runs a real NATS server (github.com/nats-io/nats-server)
// inside the test process, for tests of pulld's pub/sub nudges.
//
//	ns := natstest.Start(t)
//	t.Setenv("NATS_SERVER_URL", ns.URL) // or append ns.Env() for a child process
//	// open a nats://subject?natsv2=true subscription under test
//	ns.WaitInterest(t, "subject") // a subscriber is registered: no message can be missed
//	topic := ns.OpenTopic(t, "nats://subject?natsv2=true")
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/natspubsub"
)

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 10 * time.Second

// Server is a running NATS server.
type Server struct {
	// URL is the client URL, nats://127.0.0.1:PORT: the value for
	// NATS_SERVER_URL.
	URL string

	srv  *server.Server
	port int
}

// Start starts a NATS server on a free 127.0.0.1 port. It is shut down when
// the test ends; a server that does not come up fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start(-1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func start(port int) (*Server, error) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, fmt.Errorf("natstest: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("natstest: server not accepting connections after %v", startTimeout)
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		srv.Shutdown()
		return nil, fmt.Errorf("natstest: server has no TCP address")
	}
	return &Server{URL: srv.ClientURL(), srv: srv, port: addr.Port}, nil
}

// Env returns NATS_SERVER_URL=URL, for a child process's environment.
func (s *Server) Env() []string { return []string{"NATS_SERVER_URL=" + s.URL} }

// Stop shuts the server down; clients see their connections drop. It is
// idempotent.
func (s *Server) Stop() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Restart starts a new server on the same port after Stop, so clients that
// reconnect find it again. It fails the test if the port cannot be reused.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	ns, err := start(s.port)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = ns.srv
}

// Interest returns the number of subscriptions on subject.
func (s *Server) Interest(subject string) int { return s.srv.GlobalAccount().Interest(subject) }

// WaitInterest waits up to 10 s until some client subscribes to subject,
// and fails the test otherwise.
func (s *Server) WaitInterest(t testing.TB, subject string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for s.Interest(subject) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("natstest: no subscription on %q after %v", subject, startTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// OpenTopic opens the gocloud topic at a nats:// URL (nats://subject, with
// natsv2=true for NATS 2 encoding) on a connection of its own to this
// server, not through gocloud's process-wide default connection, so each
// test can have its own server. Topic and connection are closed when the
// test ends.
func (s *Server) OpenTopic(t testing.TB, topicURL string) *pubsub.Topic {
	t.Helper()
	u, err := url.Parse(topicURL)
	if err != nil || u.Scheme != natspubsub.Scheme {
		t.Fatalf("natstest: topic URL %q is not nats://subject", topicURL)
	}
	nc, err := nats.Connect(s.URL)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	o := &natspubsub.URLOpener{Connection: nc, UseV2: u.Query().Has("natsv2")}
	topic, err := o.OpenTopicURL(t.Context(), u)
	if err != nil {
		nc.Close()
		t.Fatalf("natstest: open topic %s: %v", topicURL, err)
	}
	t.Cleanup(func() {
		topic.Shutdown(context.Background())
		nc.Close()
	})
	return topic
}
