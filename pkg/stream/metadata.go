package stream

import (
	"runtime/debug"
	"strings"
	"sync"
)

// Metadata keys the drain sets on every stream and durable consumer it declares, so an
// operator listing them (nats stream info, nats consumer info) sees what made them. JetStream
// 2.10 and later keep them; 2.9 servers ignore the field, and declaring works the same.
const (
	// MetadataVersion is the version of this library that declared the stream or consumer
	// ("devel" for a build from a work tree).
	MetadataVersion = "drain_version"
	// MetadataStage is the stream's kind (events, siphon, changed, warm, swept, dlq) or the
	// consumer's stage (ConsumerConfig.Stage: filter, warm, or an app's own name).
	MetadataStage = "drain_stage"
	// MetadataPrefix is the deployment prefix (DRAIN_PREFIX) of the stream or consumer.
	MetadataPrefix = "drain_prefix"
)

// module is the import path of the library's module, as the build info records it.
const module = "github.com/routemaster-drain/drain/pkg"

// libraryVersion is the version of this module the running binary was built with, read once
// from its build info.
var libraryVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := ""
	if bi.Main.Path == module {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == module {
			v = d.Version
			if d.Replace != nil && d.Replace.Version != "" {
				v = d.Replace.Version
			}
		}
	}
	if v == "" || v == "(devel)" {
		return "devel"
	}
	return v
})

// metadata is the Metadata of a stream or consumer of stage under prefix; prefix "" (a
// consumer on a stream that is not the drain's) is left out.
func metadata(prefix, stage string) map[string]string {
	md := map[string]string{MetadataVersion: libraryVersion(), MetadataStage: stage}
	if prefix != "" {
		md[MetadataPrefix] = prefix
	}
	return md
}

// prefixOf returns the prefix of a drain stream name (<prefix>_<kind>), or "" when name is not
// one.
func prefixOf(stream string) string {
	for _, k := range Kinds {
		if p, ok := strings.CutSuffix(stream, "_"+string(k)); ok && prefixRE.MatchString(p) {
			return p
		}
	}
	return ""
}
