package client_test

import (
	"testing"

	"github.com/pushpull/pushpull/client"
)

func TestParseNetrc(t *testing.T) {
	const file = `# pushctl's and git's
machine pushui.example.com login alice password s3cret
machine other
  login bob
  password "not-quoted"
macdef init
cd /tmp
put x

default login anon password guest
`
	entries, err := client.ParseNetrc([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, login, password string }{
		{"pushui.example.com", "alice", "s3cret"},
		{"PUSHUI.example.com", "alice", "s3cret"},
		{"other", "bob", `"not-quoted"`},
		{"elsewhere", "anon", "guest"},
	} {
		e, ok := client.Lookup(entries, tc.host)
		if !ok || e.Login != tc.login || e.Password != tc.password {
			t.Errorf("Lookup(%s) = %+v, %v; want %s/%s", tc.host, e, ok, tc.login, tc.password)
		}
	}
	for _, bad := range []string{"machine", "login alice", "machine a login", "machine a frobnicate b"} {
		if _, err := client.ParseNetrc([]byte(bad)); err == nil {
			t.Errorf("ParseNetrc(%q) accepted it", bad)
		}
	}
}

func FuzzParseNetrc(f *testing.F) {
	f.Add([]byte("machine h login u password p\ndefault login a password b\n"))
	f.Add([]byte("macdef x\nbody\n\nmachine h login u"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := client.ParseNetrc(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Machine != "" {
				if got, ok := client.Lookup(entries, e.Machine); !ok || got.Machine == "" {
					t.Errorf("Lookup(%q) = %+v, %v", e.Machine, got, ok)
				}
			}
		}
	})
}
