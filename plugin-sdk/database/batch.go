package database

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	sdk "github.com/palvella/palvella/plugin-sdk"
	databasev1 "github.com/palvella/palvella/proto/palvella/database/v1"
	pluginv1 "github.com/palvella/palvella/proto/palvella/plugin/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// batchOpKey is the error metadata that carries a failed op's index across
// the wire.
const batchOpKey = "batch_op"

var _ Batcher = (*grpcClient)(nil)

// Batch calls the plugin's Batch; a plugin without it answers
// sdk.ErrUnimplemented.
func (c *grpcClient) Batch(ctx context.Context, ops []Op) ([]OpResult, error) {
	if err := ValidateBatch(ops); err != nil {
		return nil, err
	}
	req := &databasev1.BatchRequest{Ops: make([]*databasev1.BatchOp, len(ops))}
	for i, op := range ops {
		req.Ops[i] = opToProto(op)
	}
	resp, err := c.client.Batch(ctx, req)
	if err != nil {
		err = sdk.FromGRPC(err)
		var typed *sdk.Error
		if errors.As(err, &typed) {
			if i, perr := strconv.Atoi(typed.Metadata[batchOpKey]); perr == nil {
				return nil, &BatchError{Index: i, Err: typed}
			}
		}
		return nil, fmt.Errorf("batch of %d writes: %w", len(ops), err)
	}
	if len(resp.GetResults()) != len(ops) {
		return nil, sdk.Errorf(sdk.ErrInternal, "results", "plugin answered a batch of %d writes with %d results", len(ops), len(resp.GetResults()))
	}
	out := make([]OpResult, len(ops))
	for i, r := range resp.GetResults() {
		if r.GetResource() != nil {
			res := resourceFromProto(r.GetResource())
			out[i].Resource = &res
		}
		if r.GetItem() != nil {
			out[i].Item = itemFromProto(r.GetItem())
		}
	}
	return out, nil
}

// Batch serves the plugin's Batcher, or answers UNIMPLEMENTED when it has
// none.
func (s *grpcServer) Batch(ctx context.Context, req *databasev1.BatchRequest) (*databasev1.BatchResponse, error) {
	b, ok := s.impl.(Batcher)
	if !ok {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrUnimplemented, "", "this database plugin applies no batches"))
	}
	ops := make([]Op, len(req.GetOps()))
	for i, op := range req.GetOps() {
		ops[i] = opFromProto(op)
	}
	if err := ValidateBatch(ops); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	results, err := b.Batch(ctx, ops)
	if err != nil {
		return nil, batchErrorToGRPC(err)
	}
	out := &databasev1.BatchResponse{Results: make([]*databasev1.BatchResult, len(results))}
	for i, r := range results {
		out.Results[i] = &databasev1.BatchResult{}
		if r.Resource != nil {
			out.Results[i].Resource = resourceToProto(r.Resource)
		}
		if r.Item != nil {
			out.Results[i].Item = itemToProto(r.Item)
		}
	}
	return out, nil
}

// batchErrorToGRPC is sdk.ToGRPC with the index of the failed op, if any,
// in the error's metadata.
func batchErrorToGRPC(err error) error {
	out := sdk.ToGRPC(err)
	var be *BatchError
	if !errors.As(err, &be) {
		return out
	}
	st, _ := status.FromError(out)
	detail := &pluginv1.ErrorDetail{}
	for _, d := range st.Details() {
		if ed, ok := d.(*pluginv1.ErrorDetail); ok {
			detail = proto.Clone(ed).(*pluginv1.ErrorDetail)
		}
	}
	if detail.Metadata == nil {
		detail.Metadata = map[string]string{}
	}
	detail.Metadata[batchOpKey] = strconv.Itoa(be.Index)
	code := st.Code()
	if code == codes.OK {
		code = codes.Unknown
	}
	withIndex, derr := status.New(code, st.Message()).WithDetails(detail)
	if derr != nil {
		return out
	}
	return withIndex.Err()
}

func opToProto(op Op) *databasev1.BatchOp {
	switch {
	case op.Create != nil:
		return &databasev1.BatchOp{Op: &databasev1.BatchOp_Create{Create: resourceToProto(op.Create)}}
	case op.Update != nil:
		return &databasev1.BatchOp{Op: &databasev1.BatchOp_Update{Update: resourceToProto(op.Update)}}
	case op.Delete != nil:
		return &databasev1.BatchOp{Op: &databasev1.BatchOp_Delete{Delete: &databasev1.DeleteRequest{Key: keyToProto(op.Delete.Key), ExpectedRevision: op.Delete.ExpectedRevision}}}
	case op.Enqueue != nil:
		e := op.Enqueue
		return &databasev1.BatchOp{Op: &databasev1.BatchOp_Enqueue{Enqueue: &databasev1.EnqueueRequest{Queue: e.Queue, Payload: e.Payload, Delay: durationToProto(e.Delay), Id: e.ID}}}
	case op.Ack != nil:
		return &databasev1.BatchOp{Op: &databasev1.BatchOp_Ack{Ack: &databasev1.AckRequest{Id: op.Ack.ID, LeaseToken: op.Ack.LeaseToken}}}
	}
	return &databasev1.BatchOp{}
}

func opFromProto(op *databasev1.BatchOp) Op {
	switch w := op.GetOp().(type) {
	case *databasev1.BatchOp_Create:
		if w.Create != nil {
			r := resourceFromProto(w.Create)
			return Op{Create: &r}
		}
	case *databasev1.BatchOp_Update:
		if w.Update != nil {
			r := resourceFromProto(w.Update)
			return Op{Update: &r}
		}
	case *databasev1.BatchOp_Delete:
		if w.Delete != nil {
			return Op{Delete: &DeleteRequest{Key: keyFromProto(w.Delete.GetKey()), ExpectedRevision: w.Delete.GetExpectedRevision()}}
		}
	case *databasev1.BatchOp_Enqueue:
		if w.Enqueue != nil {
			e := w.Enqueue
			return Op{Enqueue: &EnqueueRequest{Queue: e.GetQueue(), Payload: e.GetPayload(), Delay: durationFromProto(e.GetDelay()), ID: e.GetId()}}
		}
	case *databasev1.BatchOp_Ack:
		if w.Ack != nil {
			return Op{Ack: &AckRequest{ID: w.Ack.GetId(), LeaseToken: w.Ack.GetLeaseToken()}}
		}
	}
	return Op{}
}
