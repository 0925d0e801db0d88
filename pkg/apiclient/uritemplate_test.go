package apiclient_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

func TestExpand(t *testing.T) {
	// Examples from RFC 6570 §1.2 and §3.2 with string values.
	vars := map[string]string{
		"var": "value", "hello": "Hello World!", "path": "/foo/bar", "empty": "", "x": "1024", "y": "768",
		"id": "42", "page": "2", "per_page": "10", "who": "fred", "base": "http://example.com/home/",
	}
	for tmpl, want := range map[string]string{
		"{var}":                       "value",
		"{hello}":                     "Hello%20World%21",
		"{+var}":                      "value",
		"{+hello}":                    "Hello%20World!",
		"{+path}/here":                "/foo/bar/here",
		"here?ref={+path}":            "here?ref=/foo/bar",
		"{#var}":                      "#value",
		"{#hello}":                    "#Hello%20World!",
		"map?{x,y}":                   "map?1024,768",
		"{x,hello,y}":                 "1024,Hello%20World%21,768",
		"{+x,hello,y}":                "1024,Hello%20World!,768",
		"{+path,x}/here":              "/foo/bar,1024/here",
		"{#x,hello,y}":                "#1024,Hello%20World!,768",
		"{#path,x}/here":              "#/foo/bar,1024/here",
		"X{.var}":                     "X.value",
		"X{.x,y}":                     "X.1024.768",
		"{/var}":                      "/value",
		"{/var,x}/here":               "/value/1024/here",
		"{;x,y}":                      ";x=1024;y=768",
		"{;x,y,empty}":                ";x=1024;y=768;empty",
		"{?x,y}":                      "?x=1024&y=768",
		"{?x,y,empty}":                "?x=1024&y=768&empty=",
		"?fixed=yes{&x}":              "?fixed=yes&x=1024",
		"{&x,y,empty}":                "&x=1024&y=768&empty=",
		"{var:3}":                     "val",
		"{var:30}":                    "value",
		"{+path:6}/here":              "/foo/b/here",
		"{var*}":                      "value",
		"{undef}":                     "",
		"{?undef}":                    "",
		"/widgets{?undef,page}":       "/widgets?page=2",
		"/widgets/{id}":               "/widgets/42",
		"/widgets{?page,per_page}":    "/widgets?page=2&per_page=10",
		"{+base}widgets{/id}{?page}":  "http://example.com/home/widgets/42?page=2",
		"http://api.test/{who}/{who}": "http://api.test/fred/fred",
		"http://api.test/a b":         "http://api.test/a%20b",
		"http://api.test/{who}{#var}": "http://api.test/fred#value",
	} {
		got, err := apiclient.Expand(tmpl, vars)
		if err != nil || got != want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
	if got, _ := apiclient.Expand("/resources{?page,per_page}", nil); got != "/resources" {
		t.Errorf("no values: %q", got)
	}
	for _, bad := range []string{"{", "}", "{}", "/a{b", "{!x}", "{x:0}", "{x:y}", "{a b}", "{x:3*}"} {
		if _, err := apiclient.Expand(bad, vars); !errors.Is(err, apiclient.ErrBadURL) {
			t.Errorf("Expand(%q): %v, want ErrBadURL", bad, err)
		}
	}
	if got := apiclient.TemplateVars("/w/{id}{?page,per_page*}{&q:3}"); !slices.Equal(got, []string{"id", "page", "per_page", "q"}) {
		t.Errorf("TemplateVars = %v", got)
	}
}
