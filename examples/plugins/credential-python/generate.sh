#!/bin/sh
# Regenerates the Python stubs in palvella_pb/ from Palvella's contracts
# (the repository's proto/) and the go-plugin, health and status protocols
# (./proto/). The stubs are checked in: running the plugin needs no protoc.
#
# Needs protoc and gRPC's Python plugin, from Debian's packages:
#   apt-get install protobuf-compiler protobuf-compiler-grpc
# (protoc 3.21 writes code for the python3-protobuf 3.21 runtime of Debian 12.)
#
# protoc names Python modules after the proto packages, so the health stubs
# would be a top-level package "grpc" that hides grpcio's own. Everything is
# therefore moved under the package palvella_pb, and the imports between the
# stubs are rewritten to match.
#
# Usage: ./generate.sh [OUTPUT_DIR]   (default: palvella_pb next to this file)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/palvella_pb}
plugin=$(command -v grpc_python_plugin) || {
	echo "grpc_python_plugin not found: apt-get install protobuf-compiler protobuf-compiler-grpc" >&2
	exit 1
}
command -v protoc >/dev/null || {
	echo "protoc not found: apt-get install protobuf-compiler" >&2
	exit 1
}

rm -rf "$out"
mkdir -p "$out"
cd "$here"
protoc -I ../../../proto -I proto \
	--python_out="$out" \
	--grpc_python_out="$out" --plugin=protoc-gen-grpc_python="$plugin" \
	palvella/plugin/v1/plugin.proto \
	palvella/credential/v1/credential.proto \
	palvella/host/v1/host.proto \
	palvella/engine/v1/engine.proto \
	palvella/storage/v1/storage.proto \
	grpc/health/v1/health.proto \
	plugin/grpc_controller.proto \
	plugin/grpc_stdio.proto \
	plugin/grpc_broker.proto \
	google/rpc/status.proto

# Files without services get an empty _grpc module: drop those.
for f in $(find "$out" -name '*_pb2_grpc.py' | sort); do
	grep -q '^class ' "$f" || rm "$f"
done
# Imports between the stubs go through palvella_pb; grpcio ("import grpc")
# and protobuf's own types ("from google.protobuf") stay as they are.
find "$out" -name '*.py' | sort | while read -r f; do
	sed -E -i 's/^from (palvella|grpc\.health|google\.rpc|plugin)([. ])/from palvella_pb.\1\2/' "$f"
done
# Regular packages, one __init__.py per directory.
find "$out" -type d | sort | while read -r d; do
	: >"$d/__init__.py"
done
