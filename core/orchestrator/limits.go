package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Limits on the size of a run. Each is checked where it is first known
// (counts when a pipeline is applied, outputs when an action ends) and
// refused there with an error naming what exceeded it, so that no
// document or plugin call of a run grows past what the database and the
// plugin transport carry (a gRPC message is at most 4 MiB).
const (
	// MaxJobsPerPipeline is the most jobs a pipeline may have.
	MaxJobsPerPipeline = 10000
	// MaxActionsPerJob is the most actions a job may have, written in the
	// pipeline or given by its job type.
	MaxActionsPerJob = 200
	// MaxActionOutputBytes bounds the outputs of one action, as JSON: four
	// times a run action's stdout output (its last 64 KiB).
	MaxActionOutputBytes = 256 << 10
	// MaxJobOutputBytes bounds the outputs of the actions of one job
	// together, as JSON.
	MaxJobOutputBytes = 1 << 20
	// MaxMessageBytes bounds an action's message and a job's reason;
	// longer ones are cut, saying how much was cut (the log keeps all).
	MaxMessageBytes = 4 << 10
	// MaxDocumentBytes bounds any document written to the database.
	MaxDocumentBytes = 3 << 20
	// MaxContextBytes bounds the expression context sent with an action
	// or a job type's expansion (params, trigger, every job's status and
	// outputs).
	MaxContextBytes = 3 << 20
)

// errTooLarge is a size limit exceeded; errors wrapping it say which.
var errTooLarge = sdk.Errorf(sdk.ErrInvalidArgument, "", "too large")

// clipMessage cuts a message to MaxMessageBytes.
func clipMessage(s string) string {
	if len(s) <= MaxMessageBytes {
		return s
	}
	cut := MaxMessageBytes - 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" ... (%d more bytes; the action's log has all of it)", len(s)-cut)
}

// checkDocument refuses a document larger than MaxDocumentBytes.
func checkDocument(m *resource.Meta, data []byte) error {
	if len(data) <= MaxDocumentBytes {
		return nil
	}
	return fmt.Errorf("%w: %s %s/%s would be %d KiB, more than the %d KiB a document may hold", errTooLarge, m.Kind, m.Namespace, m.Name, len(data)>>10, MaxDocumentBytes>>10)
}

func jsonSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}

// checkContextSize refuses to send an expression context larger than
// MaxContextBytes to a plugin.
func checkContextSize(ectx map[string]any, action string) error {
	if n := jsonSize(ectx); n > MaxContextBytes {
		return fmt.Errorf("the expression context of action %s (params, trigger, and the status and outputs of every job of the run) is %d KiB, more than the %d KiB a plugin call may carry; make the outputs of the run's jobs smaller", action, n>>10, MaxContextBytes>>10)
	}
	return nil
}

// checkOutputs refuses the outputs of an action past MaxActionOutputBytes,
// or that take its job's outputs past MaxJobOutputBytes.
func (o *Orchestrator) checkOutputs(ctx context.Context, ns, run, job, action string, outputs map[string]any) error {
	if len(outputs) == 0 {
		return nil
	}
	n := jsonSize(outputs)
	if n > MaxActionOutputBytes {
		return fmt.Errorf("action %s produced %d KiB of outputs, more than the limit of %d KiB per action; they were not recorded (write large results to a file and put it in storage)", action, n>>10, MaxActionOutputBytes>>10)
	}
	if o.remote != nil {
		// A remote worker does not see the job's other outputs; the
		// server bounds the job's document (checkDocument).
		return nil
	}
	total := n
	err := o.withRun(ctx, ns, run, func(st *runState) error {
		i, ok := st.index(job)
		if !ok || st.run.Jobs == nil {
			return errStale
		}
		for _, a := range st.run.Jobs[i].Actions {
			if a.Name != action && len(a.Outputs) > 0 {
				total += jsonSize(a.Outputs)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStale) {
		return nil // not known here; the document's own limit still holds
	}
	if total > MaxJobOutputBytes {
		return fmt.Errorf("action %s's outputs take the outputs of job %s to %d KiB, more than the limit of %d KiB per job; they were not recorded", action, job, total>>10, MaxJobOutputBytes>>10)
	}
	return nil
}
