package apiclient

// discovery is one memoised Discover result.
type discovery struct{}
