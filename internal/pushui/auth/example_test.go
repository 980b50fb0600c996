package auth_test

import (
	"fmt"

	"github.com/pushpull/pushpull/internal/pushui/auth"
	"golang.org/x/crypto/bcrypt"
)

// Passwords are bcrypt hashes, as htpasswd -B writes them.
func ExampleParseHtpasswd() {
	hash, _ := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	h, err := auth.ParseHtpasswd([]byte("# pushui users\nalice:" + string(hash) + "\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(h.Verify("alice", "wonderland"), h.Verify("alice", "guess"))

	_, err = auth.ParseHtpasswd([]byte("bob:$apr1$salt$hash\n"))
	fmt.Println(err)
	// Output:
	// true false
	// htpasswd: line 1: user "bob": hash is not bcrypt (create it with htpasswd -B)
}
