package pushui

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"defaults", Config{Bucket: "mem://", ConfigFile: "c.json"}, ""},
		{"localhost", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "localhost:9000"}, ""},
		{"ipv6 loopback", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "[::1]:9000"}, ""},
		{"127.0.0.2", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "127.0.0.2:9000"}, ""},
		{"all interfaces", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: ":8000"}, "refusing to listen on :8000 without authentication"},
		{"public IP", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "10.0.0.5:8000"}, "refusing to listen"},
		{"a host name", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "pushui.internal:8000"}, "refusing to listen"},
		{"public with header and trusted proxy", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "0.0.0.0:8000", AuthHeader: "X-Forwarded-Email", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, ""},
		{"public with header, no trusted proxy", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "0.0.0.0:8000", AuthHeader: "X-Forwarded-Email"}, "needs -trusted-proxy"},
		{"loopback with header", Config{Bucket: "mem://", Addr: "127.0.0.1:8000", AuthHeader: "X-Forwarded-Email"}, ""},
		{"public with IAP", Config{Bucket: "mem://", Addr: ":8000", IAPAudience: "/projects/1/global/backendServices/2"}, ""},
		{"trusted proxy without header", Config{Bucket: "mem://", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "give -auth-header too"},
		{"IAP and header", Config{Bucket: "mem://", AuthHeader: "X", IAPAudience: "a"}, "not several"},
		{"public with htpasswd", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "0.0.0.0:8000", HtpasswdFile: "h"}, ""},
		{"both auth modes", Config{Bucket: "mem://", ConfigFile: "c.json", AuthHeader: "X", HtpasswdFile: "h"}, "not several"},
		{"admins without auth", Config{Bucket: "mem://", ConfigFile: "c.json", Admins: []string{"a"}}, "-admins needs"},
		{"no bucket", Config{ConfigFile: "c.json"}, "-bucket is required"},
		{"no config file: the bucket's is used", Config{Bucket: "mem://"}, ""},
		{"bad addr", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "nonsense"}, "-addr nonsense"},
		{"negative refresh", Config{Bucket: "mem://", ConfigFile: "c.json", Refresh: -time.Second}, "-refresh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Check()
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}
}
