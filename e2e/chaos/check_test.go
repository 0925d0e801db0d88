package chaos

import (
	"strings"
	"testing"
)

// judgeHandoffs: the plan bound always fails; the changed-stream bound fails only when no
// filter was interrupted.
func TestJudgeHandoffs(t *testing.T) {
	plan := &Plan{Expect: map[string]Expect{
		"a": {NonNoop: 3}, // handed on twice for one fresh event: above the tight bound only
		"b": {NonNoop: 1}, // handed on twice for one non-noop event: above both
		"c": {NonNoop: 2}, // once per fresh event: fine
	}}
	dirtied := map[string]int{"a": 1, "b": 1, "c": 2}
	swept := map[string]int{"a": 2, "b": 2, "c": 2}

	strict := judgeHandoffs(plan, dirtied, swept, false)
	if strict.handoffs != 6 || len(strict.twice) != 2 || !strings.HasPrefix(strict.twice[0], "a:") || !strings.HasPrefix(strict.twice[1], "b:") {
		t.Errorf("nothing interrupted: %+v, want a and b failing", strict)
	}
	loose := judgeHandoffs(plan, dirtied, swept, true)
	if len(loose.twice) != 1 || !strings.HasPrefix(loose.twice[0], "b:") || len(loose.above) != 2 {
		t.Errorf("a filter interrupted: %+v, want b failing and a, b reported", loose)
	}
}

func TestFilterInterruptions(t *testing.T) {
	if got := FilterInterruptions(&Summary{Kills: map[string]int{"sweeper": 3}}); len(got) != 0 {
		t.Errorf("sweeper kills only: %v", got)
	}
	got := FilterInterruptions(&Summary{Kills: map[string]int{"filter": 2}, NATS: 1})
	if strings.Join(got, ", ") != "2 filter SIGKILLs, 1 NATS faults" {
		t.Errorf("got %v", got)
	}
}
