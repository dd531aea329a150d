package wire

// TypeInfo is an action, job or engine type that an installed plugin
// provides, as GET /api/v1/types lists it for pipeline editors.
type TypeInfo struct {
	// Category is action, job or engine.
	Category string `json:"category"`
	// Name is the type as a pipeline writes it: an action's type ("run",
	// or "slack/post" when another plugin has a type of the same name),
	// a job's uses ("terraform/plan"), an engine's type ("local").
	Name string `json:"name"`
	// Plugin is the plugin that provides it ("action-standard").
	Plugin      string `json:"plugin"`
	Description string `json:"description,omitempty"`
	// ParamsSchema is the JSON Schema of the type's params (an action's
	// fields beside name, type and if; a job's with), as the plugin
	// describes it; absent when the type declares none.
	ParamsSchema map[string]any `json:"paramsSchema,omitempty"`
}

// TypeList answers GET /api/v1/types.
type TypeList struct {
	Items []TypeInfo `json:"items"`
	// Unavailable are the plugins whose types are not known because they
	// did not start, with why.
	Unavailable []UnavailablePlugin `json:"unavailable,omitempty"`
}

// UnavailablePlugin is a plugin that did not start.
type UnavailablePlugin struct {
	Plugin string `json:"plugin"`
	Error  string `json:"error"`
}
