// Package depcheck holds no code: its test keeps the library packages (event, stream, dirty,
// cache, apiclient, reorder) free of the environment. Only pkg/config, the composition root,
// maps environment variables onto the libraries' Options; a library package that imported
// it (or any other package of ours that reads the environment) would tie every app that uses
// the library to the drain's variables and their defaults.
package depcheck
