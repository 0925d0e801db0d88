package event

import (
	"net/url"
	"testing"
)

func slowValidURL(s string) bool {
	if len(s) < len("http://x") || !(hasPrefixFold([]byte(s), "http://") || hasPrefixFold([]byte(s), "https://")) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https")
}

var urlSeeds = []string{
	"https://orders.example.com/api/orders/1001", "https://api.example.com:8443/v1/users/42",
	"https://api.example.com/v1/users/42#profile", "http://x", "http://x.test/a?b=c&d=e;f",
	"HTTPS://X.TEST/A", "http://:80/", "http://[::1]:80/a", "http://u:p@h/a", "http://h:8x/",
	"http://h/a%20b", "http://h/a%zz", "http://h/a b", "http://h/\x7f", "http://h/é", "http:///a",
	"http://h?x", "http://h#x", "http://h/[a]", "http://h/@!$&'()*+,;=", "http://h_h.t~/", "http://h:/",
	"ftp://h/", "http:/h/", "http://h\x00/", "http://h/a\nb",
}

// TestPlainURLAgreesWithURLParse: the fast path accepts only URLs url.Parse accepts, and
// validURL decides exactly as the url.Parse-only rule.
func TestPlainURLAgreesWithURLParse(t *testing.T) {
	for _, s := range urlSeeds {
		if got, want := validURL([]byte(s)), slowValidURL(s); got != want {
			t.Errorf("validURL(%q) = %v, url.Parse rule says %v", s, got, want)
		}
	}
}

func FuzzValidURL(f *testing.F) {
	for _, s := range urlSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validURL([]byte(s)), slowValidURL(s); got != want {
			t.Fatalf("validURL(%q) = %v, url.Parse rule says %v", s, got, want)
		}
	})
}

func hasPrefixFold(s []byte, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
