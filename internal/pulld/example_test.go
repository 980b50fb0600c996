package pulld_test

import (
	"fmt"

	"github.com/pushpull/pushpull/internal/pulld"
)

func ExampleParseHostInfo() {
	hi, err := pulld.ParseHostInfo([]byte("groups=prod,servicex\nid=i-dcbcee23\nhost=service-x-001\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(hi.Hostname, hi.ID, hi.Groups)
	// Output: service-x-001 i-dcbcee23 [prod servicex]
}
