package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// errorBody turns an error from the backend (or from the API itself) into
// the HTTP status and body to send.
func errorBody(err error) (int, ErrorBody) {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return http.StatusUnprocessableEntity, ErrorBody{Code: CodeValidationFailed, Message: "the pipeline file has problems", Problems: ve.Problems}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, ErrorBody{Code: CodeRequestTooLarge, Field: "body",
			Message: "request body is larger than the limit of " + byteSize(mbe.Limit) + " for this route"}
	}
	body := ErrorBody{Code: CodeInternal, Message: err.Error()}
	status := http.StatusInternalServerError
	for _, c := range ErrorCodes {
		if c.Err != nil && c.Code != CodeValidationFailed && c.Code != CodeRequestTooLarge && errors.Is(err, c.Err) {
			body.Code, status = c.Code, c.Status
			break
		}
	}
	var typed *sdk.Error
	if errors.As(err, &typed) {
		body.Field = typed.Field
	}
	return status, body
}

func writeError(w http.ResponseWriter, err error) {
	status, body := errorBody(err)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="palvella"`)
	case http.StatusTooManyRequests:
		// The server is over a limit (such as its queue of runs); a
		// client that waits this long finds room more often than not.
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "5")
		}
	}
	writeJSON(w, status, ErrorResponse{Error: body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the status is sent; a client that went away is not an error of ours
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
