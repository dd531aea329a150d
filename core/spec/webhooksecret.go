package spec

// literalSecret is the error of a webhook secret written in the pipeline.
// A pipeline is readable by every viewer of its namespace (pipeline get
// shows its source), so a secret in it is no secret: it goes in the
// credential store, which the server reads when a call arrives.
const literalSecret = "a webhook secret may not be written in the pipeline, where everyone who can read the pipeline sees it: " +
	"store it as a credential (palvella credential set NAME) and write secret: {from_credential: NAME}"
