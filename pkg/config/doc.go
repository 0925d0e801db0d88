// Package config loads the drain's configuration from the environment (12-factor). It is the
// composition root of the services: it maps the variables onto the library packages' own
// option types (stream.ConnectOptions, stream.StreamOptions, apiclient.Options, and through
// Config.CacheOptions, ReorderOptions and DirtyOptions the cache, reorder and dirty Options).
// It may import the libraries; they never import it, and an app can use them without it.
// A variable that sets a library option shows that library's default, read from the package
// (stream.DefaultMaxAge, apiclient.DefaultTimeout...), so the default lives in one place.
//
// Every service and drainctl read the same variables through Load; each variable is declared
// once in Vars with its default, the services that read it and a one-line meaning, so `-h` on
// any binary prints exactly what that binary reads (Usage). The gem's names and meanings are
// kept where they exist (ROUTEMASTER_*); new settings start with DRAIN_ (and NATS_).
//
// A bad value is reported as a *VarError naming the variable and the problem, one per start-up
// failure, so a misconfigured process exits with one clear line:
//
//	cfg, err := config.Load(config.Ingest, os.Environ())
//	if err != nil {
//		fmt.Fprintln(os.Stderr, err) // ROUTEMASTER_DRAIN_TOKENS: is required (...)
//		os.Exit(2)
//	}
package config
