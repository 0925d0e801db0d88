// Package table prints rows of the `make bench` table, which the Makefile collects from every
// benchmark program's standard output (lines starting with "|").
package table

import (
	"fmt"
	"strconv"
)

// Row prints one row: what was measured, its value, the reference measured in the same run,
// and value/reference ("-" when ratio is not positive).
func Row(stage, label, value, refName, refValue string, ratio float64) {
	rs := "-"
	if ratio > 0 {
		rs = fmt.Sprintf("%.2f", ratio)
	}
	fmt.Printf("| %s | %s | %s | %s: %s | %s |\n", stage, label, value, refName, refValue, rs)
}

// Commas formats n with thousands separators: 1234567 → "1,234,567".
func Commas[N ~int | ~int64](n N) string {
	s := strconv.FormatInt(int64(n), 10)
	start := 0
	if n < 0 {
		start = 1
	}
	for i := len(s) - 3; i > start; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Rate formats an events-per-second figure.
func Rate(r float64) string { return Commas(int64(r)) + " events/s" }
