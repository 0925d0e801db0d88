package stream

// Headers of a dead letter's replay (drainctl dlq replay): the stream and sequence of the
// message that was dead-lettered, which the replay stands in for. A consumer whose handler
// keys its effects on the message's stream sequence (the filter) uses them instead of the
// replay's own sequence when the replay is stored on the same stream, so the replay
// reproduces the first delivery. Unlike the other Drain-* headers of a dead letter, a replay
// carries them, and a replay of a replay keeps the first message's values.
const (
	HeaderReplayStream   = "Drain-Replay-Stream"
	HeaderReplaySequence = "Drain-Replay-Sequence"
)
