module github.com/routemaster-drain/drain/services/sweeper

go 1.26.0

require (
	github.com/routemaster-drain/drain v0.0.0
	github.com/routemaster-drain/drain/draintest v0.0.0
)

replace (
	github.com/routemaster-drain/drain => ../../pkg
	github.com/routemaster-drain/drain/draintest => ../../pkg/draintest
)
