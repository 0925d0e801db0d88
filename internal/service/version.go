package service

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo is what the Go toolchain recorded in a binary about its own build.
type BuildInfo struct {
	// Version is the main module's version: a release or pseudo-version when the binary was
	// built as a module dependency (go install …@v0.1.0), "devel" for a build from a work tree.
	Version string
	// Revision is the VCS commit the binary was built from (vcs.revision), "" when the build
	// did not record one (-buildvcs=false, or a checkout without a .git directory).
	Revision string
	// Modified reports uncommitted changes in the build's work tree (vcs.modified).
	Modified bool
	// GoVersion is the toolchain that built the binary, such as "go1.26.0".
	GoVersion string
}

// ReadBuildInfo returns the running binary's BuildInfo from runtime/debug.ReadBuildInfo. It
// reads what the linker stored, so it costs nothing worth caching.
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "devel", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Line is what -version prints for the binary name: one line such as
// "ingest v0.1.0 (go1.26.0, rev 6048a8446cfc, modified)", the revision shortened to 12
// characters and left out, like "modified", when the build did not record it.
func (b BuildInfo) Line(name string) string {
	details := b.GoVersion
	if b.Revision != "" {
		details += ", rev " + b.Revision[:min(12, len(b.Revision))]
	}
	if b.Modified {
		details += ", modified"
	}
	return fmt.Sprintf("%s %s (%s)", name, b.Version, details)
}

// Collector returns the gauge drain_build_info{service,version,revision,goversion}, always 1,
// that tells a dashboard which build of service each process runs (revision in full).
func (b BuildInfo) Collector(service string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "drain_build_info",
		Help: "Always 1; the labels name the service and the build it runs.",
		ConstLabels: prometheus.Labels{
			"service": service, "version": b.Version, "revision": b.Revision, "goversion": b.GoVersion,
		},
	})
	g.Set(1)
	return g
}
