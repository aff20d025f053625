package s3name

import (
	"strings"
	"testing"
)

func TestValidBucket(t *testing.T) {
	for b, want := range map[string]bool{
		"abc": true, "my-bucket.data": true, strings.Repeat("a", 63): true,
		"ab": false, strings.Repeat("a", 64): false, "Abc": false, "-abc": false, "abc-": false,
		"a..b": false, "192.168.1.1": false, "xn--abc": false, "sthree-x": false, "abc-s3alias": false,
		"abc--ol-s3": false, "a_b": false, "": false,
	} {
		if got := ValidBucket(b); got != want {
			t.Errorf("ValidBucket(%q) = %v, want %v", b, got, want)
		}
	}
}
