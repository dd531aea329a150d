package database

import (
	"time"

	databasev1 "github.com/palvella/palvella/proto/palvella/database/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func keyToProto(k Key) *databasev1.ResourceKey {
	return &databasev1.ResourceKey{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name}
}

func keyFromProto(k *databasev1.ResourceKey) Key {
	return Key{Kind: k.GetKind(), Namespace: k.GetNamespace(), Name: k.GetName()}
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func durationToProto(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

func durationFromProto(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

func resourceToProto(r *Resource) *databasev1.Resource {
	return &databasev1.Resource{
		Key: keyToProto(r.Key), Revision: r.Revision, Labels: r.Labels, Data: r.Data,
		CreatedAt: timeToProto(r.CreatedAt), UpdatedAt: timeToProto(r.UpdatedAt),
	}
}

func resourceFromProto(r *databasev1.Resource) Resource {
	return Resource{
		Key: keyFromProto(r.GetKey()), Revision: r.GetRevision(), Labels: r.GetLabels(), Data: r.GetData(),
		CreatedAt: timeFromProto(r.GetCreatedAt()), UpdatedAt: timeFromProto(r.GetUpdatedAt()),
	}
}

func itemToProto(it *QueueItem) *databasev1.QueueItem {
	return &databasev1.QueueItem{
		Id: it.ID, Queue: it.Queue, Payload: it.Payload, Attempts: int32(it.Attempts), LeaseToken: it.LeaseToken,
		LeaseExpiresAt: timeToProto(it.LeaseExpiresAt), EnqueuedAt: timeToProto(it.EnqueuedAt),
	}
}

func itemFromProto(it *databasev1.QueueItem) *QueueItem {
	return &QueueItem{
		ID: it.GetId(), Queue: it.GetQueue(), Payload: it.GetPayload(), Attempts: int(it.GetAttempts()),
		LeaseToken: it.GetLeaseToken(), LeaseExpiresAt: timeFromProto(it.GetLeaseExpiresAt()),
		EnqueuedAt: timeFromProto(it.GetEnqueuedAt()),
	}
}

func eventTypeToProto(t EventType) databasev1.EventType { return databasev1.EventType(t) }

func eventTypeFromProto(t databasev1.EventType) EventType { return EventType(t) }
