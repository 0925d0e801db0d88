package main

// commands is every drainctl command, in the order -h lists them. A command lives in its own
// file (dirty.go, state.go, ...) and adds one line here.
var commands = []*Command{
	dirtyCommand,
	stateCommand,
	cacheCommand,
	sendCommand,
	dlqCommand,
	statusCommand,
	consoleCommand,
}
