package apiclient

import (
	"fmt"
	"strconv"
	"strings"
)

// Expand expands an RFC 6570 URI template with string values: every operator of levels 1–3
// ({var}, {+var}, {#var}, {.var}, {/var}, {;var}, {?var}, {&var}, several variables per
// expression) and the level-4 prefix modifier ({var:3}); an explode modifier ({var*}) is
// accepted and, as the RFC says for strings, changes nothing. A variable missing from vars is
// undefined and expands to nothing: "/widgets{?page,per_page}" with no values is "/widgets".
// A malformed template is an ErrBadURL.
func Expand(template string, vars map[string]string) (string, error) {
	var b strings.Builder
	rest := template
	for {
		open := strings.IndexByte(rest, '{')
		closing := strings.IndexByte(rest, '}')
		if open < 0 {
			if closing >= 0 {
				return "", templateError(template, "unmatched }")
			}
			b.WriteString(encodeLiteral(rest))
			return b.String(), nil
		}
		if closing >= 0 && closing < open {
			return "", templateError(template, "unmatched }")
		}
		b.WriteString(encodeLiteral(rest[:open]))
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return "", templateError(template, "unclosed {")
		}
		if err := expandExpression(&b, rest[open+1:open+end], vars); err != nil {
			return "", templateError(template, err.Error())
		}
		rest = rest[open+end+1:]
	}
}

// TemplateVars returns the names of the variables of template, in order of appearance.
func TemplateVars(template string) []string {
	var names []string
	for rest := template; ; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			return names
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return names
		}
		expr := rest[open+1 : open+end]
		if expr != "" && strings.ContainsRune("+#./;?&", rune(expr[0])) {
			expr = expr[1:]
		}
		for _, spec := range strings.Split(expr, ",") {
			name, _, _ := strings.Cut(strings.TrimSuffix(spec, "*"), ":")
			if name != "" {
				names = append(names, name)
			}
		}
		rest = rest[open+end+1:]
	}
}

func templateError(template, msg string) error {
	return fmt.Errorf("apiclient: URI template %q: %w: %s", template, ErrBadURL, msg)
}

type operator struct {
	first, sep string
	named      bool
	ifEmpty    string
	reserved   bool // allow reserved characters (+ and #)
}

var operators = map[byte]operator{
	'+': {first: "", sep: ",", reserved: true},
	'#': {first: "#", sep: ",", reserved: true},
	'.': {first: ".", sep: "."},
	'/': {first: "/", sep: "/"},
	';': {first: ";", sep: ";", named: true},
	'?': {first: "?", sep: "&", named: true, ifEmpty: "="},
	'&': {first: "&", sep: "&", named: true, ifEmpty: "="},
}

func expandExpression(b *strings.Builder, expr string, vars map[string]string) error {
	if expr == "" {
		return fmt.Errorf("empty expression")
	}
	op := operator{sep: ","}
	if o, ok := operators[expr[0]]; ok {
		op = o
		expr = expr[1:]
	} else if strings.ContainsRune("=,!@|", rune(expr[0])) {
		return fmt.Errorf("reserved operator %q", expr[0])
	}
	first := true
	for _, spec := range strings.Split(expr, ",") {
		name := strings.TrimSuffix(spec, "*")
		prefix := -1
		if n, p, ok := strings.Cut(name, ":"); ok {
			l, err := strconv.Atoi(p)
			if err != nil || l < 1 || l > 9999 || strings.HasSuffix(spec, "*") {
				return fmt.Errorf("bad prefix modifier in %q", spec)
			}
			name, prefix = n, l
		}
		if !validVarName(name) {
			return fmt.Errorf("bad variable name %q", name)
		}
		value, defined := vars[name]
		if !defined {
			continue
		}
		if first {
			b.WriteString(op.first)
			first = false
		} else {
			b.WriteString(op.sep)
		}
		if prefix > 0 {
			if r := []rune(value); len(r) > prefix {
				value = string(r[:prefix])
			}
		}
		if op.named {
			b.WriteString(name)
			if value == "" {
				b.WriteString(op.ifEmpty)
				continue
			}
			b.WriteByte('=')
		}
		b.WriteString(encodeValue(value, op.reserved))
	}
	return nil
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case isAlnum(c) || c == '_':
		case c == '.' && i > 0 && i < len(name)-1 && name[i-1] != '.':
		case c == '%' && i+2 < len(name) && isHex(name[i+1]) && isHex(name[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unreserved(c byte) bool { return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' }

func reservedChar(c byte) bool { return strings.IndexByte(":/?#[]@!$&'()*+,;=", c) >= 0 }

// encodeValue percent-encodes s; with allowReserved, reserved characters and existing
// percent-encoded triplets pass as they are (the + and # operators).
func encodeValue(s string, allowReserved bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c):
			b.WriteByte(c)
		case allowReserved && reservedChar(c):
			b.WriteByte(c)
		case allowReserved && c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteString(s[i : i+3])
			i += 2
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// encodeLiteral copies template text outside expressions, encoding what a URI cannot hold.
func encodeLiteral(s string) string { return encodeValue(s, true) }
