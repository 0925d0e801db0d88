package stream

// Names derives every subject, stream and durable consumer name from the deployment prefix, so
// two deployments with different prefixes share one NATS without interfering.
type Names struct {
	Prefix string
}

// Kind identifies one of the drain's streams.
type Kind string

// The drain's streams. Each holds the subjects of its kind: <prefix>.<kind>[.<token>].
const (
	Events  Kind = "events"
	Siphon  Kind = "siphon"
	Changed Kind = "changed"
	Warm    Kind = "warm"
	Swept   Kind = "swept"
	DLQ     Kind = "dlq"
)

// Kinds is every stream the drain declares.
var Kinds = []Kind{Events, Siphon, Changed, Warm, Swept, DLQ}

// Subject returns <prefix>.<kind>.<token>, or <prefix>.<kind> when token is empty.
func (n Names) Subject(k Kind, token string) string {
	if token == "" {
		return n.Prefix + "." + string(k)
	}
	return n.Prefix + "." + string(k) + "." + token
}

// Subjects returns the subjects a stream of kind k holds.
func (n Names) Subjects(k Kind) []string {
	switch k {
	case Warm, Swept:
		return []string{n.Subject(k, "")}
	}
	return []string{n.Subject(k, ">")}
}

// Stream returns the JetStream stream name of kind k: <prefix>_<kind>.
func (n Names) Stream(k Kind) string { return n.Prefix + "_" + string(k) }

// Durable returns the name of a durable consumer: <prefix>_<name>.
func (n Names) Durable(name string) string { return n.Prefix + "_" + name }
