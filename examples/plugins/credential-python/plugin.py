#!/usr/bin/python3
# credential-python: a Palvella credential plugin written in Python.
#
# It keeps credentials in memory, and exists to show (and to test, see
# conformance_test.go) that a plugin can be written in Python with nothing
# but Debian's python3-grpcio, python3-protobuf and python3-cryptography.
# Everything a plugin must do is in this one file, in the order the host
# needs it:
#
#   1. `--describe` prints the manifest as JSON and exits.
#   2. Without the magic cookie in its environment, refuse to run.
#   3. Pick the protocol version from PLUGIN_PROTOCOL_VERSIONS.
#   4. With PLUGIN_CLIENT_CERT set (AutoMTLS), make a key and a self-signed
#      certificate, and require client certificates signed by the host's.
#   5. Serve grpc.health.v1.Health, go-plugin's GRPCController, GRPCStdio and
#      GRPCBroker, palvella.plugin.v1.PluginService and the category service
#      on a unix socket.
#   6. Print the handshake line on stdout. From then on stdout is not used;
#      logs go to stderr as JSON lines the host understands.
#
# The first line names /usr/bin/python3, the interpreter Debian's packages
# install into, and not "/usr/bin/env python3": that would run whichever
# python3 comes first on PATH (a pyenv or virtualenv one, say), which may
# lack grpc. docs/plugins/other-languages.md explains each step.

import base64
import datetime
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

# Leave no __pycache__ next to the plugin: where it is installed may be
# read-only, and its files are what the host checksums.
sys.dont_write_bytecode = True

NAME = "credential-python"
VERSION = "0.1.0"

# The handshake values of Palvella (plugin-sdk/handshake.go).
MAGIC_COOKIE_KEY = "PALVELLA_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d5a1f2b3c0e84b7f9a6e2c1d8b0f4a37"
# go-plugin's own protocol version: always 1.
CORE_PROTOCOL_VERSION = 1
# The Palvella plugin protocol versions this plugin speaks.
PROTOCOL_VERSIONS = [1]

DEFAULT_MAX_CREDENTIALS = 10000
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME_LENGTH = 253
KEY_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
MAX_TYPE_LENGTH = 128

# The Debian packages this file needs, for the messages that say so.
DEBIAN_PACKAGES = "python3-grpcio python3-protobuf python3-cryptography"


# ---------------------------------------------------------------------------
# Manifest


def manifest():
    """The manifest, with the field names of sdk.Manifest's JSON tags."""
    return {
        "name": NAME,
        "version": VERSION,
        "description": "Credentials kept in the memory of a Python process. For development, and an example of a plugin written in Python.",
        "categories": ["credential"],
        "protocolVersions": PROTOCOL_VERSIONS,
        "configSchema": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_credentials": {
                    "type": "integer",
                    "minimum": 1,
                    "default": DEFAULT_MAX_CREDENTIALS,
                    "description": "How many credentials the plugin holds at most; a Put of a new name beyond that fails with resource_exhausted.",
                },
            },
        },
    }


# ---------------------------------------------------------------------------
# Logging: JSON lines on stderr in hclog's shape, which the host parses and
# writes into its own log under the plugin's name.


def log(level, message, **fields):
    now = datetime.datetime.now(datetime.timezone.utc)
    line = {"@level": level, "@message": message, "@timestamp": now.isoformat(timespec="microseconds").replace("+00:00", "Z")}
    line.update({k: str(v) for k, v in fields.items()})
    sys.stderr.write(json.dumps(line) + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# Errors. A PluginError travels as a gRPC status whose details carry a
# palvella.plugin.v1.ErrorDetail, so that the Go side sees the same sentinel
# error (errors.Is(err, sdk.ErrNotFound)) and the field it is about.


class PluginError(Exception):
    def __init__(self, reason, field, message):
        """reason is one of the keys of GRPC_CODES (plugin-sdk/errors.go);
        field the input field the error is about, or ""; message what is
        wrong, for a person, and never a secret."""
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------
# The credential store: the plugin's own logic, free of gRPC.


class Store:
    def __init__(self):
        self.items = {}  # name -> dict(name, type, labels, data, created_ns, updated_ns)
        self.max_credentials = DEFAULT_MAX_CREDENTIALS
        self.lock = threading.Lock()  # the gRPC server calls from several threads

    def configure(self, config):
        """Applies a configuration; returns diagnostics as (field, summary,
        detail), changing nothing if there are any."""
        diagnostics = []
        new_max = DEFAULT_MAX_CREDENTIALS
        for key, value in sorted(config.items()):
            if key != "max_credentials":
                diagnostics.append(("config." + key, "unknown setting " + json.dumps(key), NAME + " accepts only max_credentials."))
                continue
            # Struct numbers are floats: 3.0 is a whole number, 3.5 and "3" are not.
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 1:
                diagnostics.append(("config.max_credentials", "max_credentials must be a whole number of at least 1", "got " + json.dumps(value)))
                continue
            new_max = int(value)
        if not diagnostics:
            with self.lock:
                self.max_credentials = new_max
        return diagnostics

    def put(self, name, type_, labels, data):
        check_name(name)
        if len(type_) > MAX_TYPE_LENGTH:
            raise PluginError("invalid_argument", "type", "type must be at most %d characters" % MAX_TYPE_LENGTH)
        for key in labels:
            if not KEY_PATTERN.fullmatch(key):
                raise PluginError("invalid_argument", "labels", "label key %s must be letters, digits, '.', '_' or '-'" % json.dumps(key))
        if not data:
            raise PluginError("invalid_argument", "data", 'data must hold at least one value (conventionally under the key "value")')
        for key in data:
            if not KEY_PATTERN.fullmatch(key):
                raise PluginError("invalid_argument", "data", "data key %s must be letters, digits, '.', '_' or '-'" % json.dumps(key))
        with self.lock:
            old = self.items.get(name)
            if old is None and len(self.items) >= self.max_credentials:
                raise PluginError("resource_exhausted", "", "the plugin already holds max_credentials (%d) credentials" % self.max_credentials)
            now = time.time_ns()
            item = {
                "name": name, "type": type_, "labels": dict(labels), "data": {k: bytes(v) for k, v in data.items()},
                "created_ns": old["created_ns"] if old else now, "updated_ns": now,
            }
            self.items[name] = item
            return item

    def get(self, name):
        with self.lock:
            item = self.items.get(name)
        if item is None:
            raise PluginError("not_found", "name", "credential %s not found" % json.dumps(name))
        return item

    def delete(self, name):
        with self.lock:
            if self.items.pop(name, None) is None:
                raise PluginError("not_found", "name", "credential %s not found" % json.dumps(name))

    def list(self, prefix):
        with self.lock:
            return [self.items[n] for n in sorted(self.items) if n.startswith(prefix)]


def check_name(name):
    if not name:
        raise PluginError("invalid_argument", "name", "name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise PluginError("invalid_argument", "name", "name must be at most %d characters" % MAX_NAME_LENGTH)
    if not NAME_PATTERN.fullmatch(name):
        raise PluginError("invalid_argument", "name", "name %s must start with a letter or digit and hold only letters, digits, '.', '_' or '-'" % json.dumps(name))


def negotiate_protocol(offered):
    """Picks the highest protocol version both sides speak."""
    host_versions = []
    for part in (offered or "").split(","):
        try:
            host_versions.append(int(part.strip()))
        except ValueError:
            pass
    common = [v for v in PROTOCOL_VERSIONS if v in host_versions]
    if common:
        return max(common)
    if host_versions:
        # Answer with our own version anyway: the host refuses it and says
        # which versions each side speaks.
        log("error", "no protocol version in common with the host",
            host_versions=",".join(map(str, host_versions)), plugin_versions=",".join(map(str, PROTOCOL_VERSIONS)))
    return min(PROTOCOL_VERSIONS)


# ---------------------------------------------------------------------------
# The plugin process. The imports of grpc, protobuf and cryptography come
# here, so that --describe and the cookie check work without them.


def import_dependencies():
    """Imports grpc, protobuf, cryptography and the stubs in palvella_pb, or
    exits saying what to install for this interpreter."""
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
        import cryptography  # noqa: F401
    except ImportError as err:
        sys.stderr.write(
            "%s cannot start: %s. It runs with %s, which lacks a module it needs;\n"
            "on Debian: apt-get install %s\n" % (NAME, err, sys.executable, DEBIAN_PACKAGES))
        sys.exit(1)


def self_signed_cert():
    """Makes an ECDSA P-256 key and a self-signed certificate for
    "localhost", usable for server and client authentication, as go-plugin's
    own plugins do. Returns (key PEM, certificate PEM, certificate DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Palvella plugin"),
        x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        # A CA, so that it can anchor itself.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)


def serve(protocol_version):
    import grpc
    from concurrent import futures
    from google.protobuf import any_pb2, struct_pb2, json_format

    from palvella_pb.google.rpc import status_pb2
    from palvella_pb.grpc.health.v1 import health_pb2, health_pb2_grpc
    from palvella_pb.palvella.credential.v1 import credential_pb2, credential_pb2_grpc
    from palvella_pb.palvella.host.v1 import host_pb2, host_pb2_grpc
    from palvella_pb.palvella.plugin.v1 import plugin_pb2, plugin_pb2_grpc
    from palvella_pb.plugin import grpc_broker_pb2_grpc, grpc_controller_pb2, grpc_controller_pb2_grpc
    from palvella_pb.plugin import grpc_stdio_pb2_grpc

    # Reasons and codes of plugin-sdk/errors.go.
    grpc_codes = {
        "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
        "not_found": grpc.StatusCode.NOT_FOUND,
        "already_exists": grpc.StatusCode.ALREADY_EXISTS,
        "conflict": grpc.StatusCode.ABORTED,
        "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
        "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
        "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
        "unimplemented": grpc.StatusCode.UNIMPLEMENTED,
        "resource_exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
        "plugin_stopped": grpc.StatusCode.UNAVAILABLE,
        "internal": grpc.StatusCode.INTERNAL,
    }

    def abort(context, err):
        """Ends the call with err as a status whose details hold an
        ErrorDetail, in the grpc-status-details-bin trailer."""
        code = grpc_codes.get(err.reason, grpc.StatusCode.UNKNOWN)
        detail = any_pb2.Any()
        detail.Pack(plugin_pb2.ErrorDetail(reason=err.reason, field=err.field))
        status = status_pb2.Status(code=code.value[0], message=err.message, details=[detail])
        context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(code, err.message)

    def unary(fn):
        """Wraps a unary handler: a PluginError becomes a status, anything
        else internal, and a call the host cancelled changes nothing."""
        def handler(self, request, context):
            if not context.is_active():
                context.abort(grpc.StatusCode.CANCELLED, "call cancelled")
            try:
                return fn(request, context)
            except PluginError as err:
                abort(context, err)
            except Exception as err:  # unexpected: log it, reveal nothing
                log("error", "request failed", error=repr(err))
                abort(context, PluginError("internal", "", "internal error in the %s plugin" % NAME))
        return handler

    def meta_to_proto(item):
        meta = credential_pb2.CredentialMeta(name=item["name"], type=item["type"], labels=item["labels"])
        meta.created_at.FromNanoseconds(item["created_ns"])
        meta.updated_at.FromNanoseconds(item["updated_ns"])
        return meta

    store = Store()
    stopping = threading.Event()  # set at shutdown: the long-lived streams end

    # AutoMTLS: the host's certificate arrives in PLUGIN_CLIENT_CERT.
    host_cert_pem = os.environ.get("PLUGIN_CLIENT_CERT", "").encode()
    tls = self_signed_cert() if host_cert_pem else None

    # The broker: the host announces, on its stream, where it serves the
    # services it offers back to the plugin (palvella.host.v1.HostService).
    broker_conns = {}
    broker_cond = threading.Condition()

    def broker_conn(service_id, timeout):
        deadline = time.monotonic() + timeout
        with broker_cond:
            while service_id not in broker_conns:
                left = deadline - time.monotonic()
                if left <= 0 or stopping.is_set():
                    raise PluginError("plugin_stopped", "", "the host did not announce broker service %d" % service_id)
                broker_cond.wait(left)
            return broker_conns[service_id]

    host = {}  # "id", "channel", "stub" once Configure offered host services
    host_lock = threading.Lock()

    def host_stub(service_id):
        with host_lock:
            if host.get("id") == service_id:
                return host["stub"]
            info = broker_conn(service_id, 5.0)
            target = "unix:" + info.address if info.network == "unix" else info.address
            options = [("grpc.ssl_target_name_override", "localhost"), ("grpc.default_authority", "localhost")]
            if tls:
                creds = grpc.ssl_channel_credentials(root_certificates=host_cert_pem, private_key=tls[0], certificate_chain=tls[1])
                channel = grpc.secure_channel(target, creds, options=options)
            else:
                channel = grpc.insecure_channel(target, options=options)
            if host:
                host["channel"].close()
            host.update(id=service_id, channel=channel, stub=host_pb2_grpc.HostServiceStub(channel))
            return host["stub"]

    class Health(health_pb2_grpc.HealthServicer):
        def Check(self, request, context):
            if request.service in ("", "plugin"):
                return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %s" % json.dumps(request.service))

        def Watch(self, request, context):
            yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
            while context.is_active() and not stopping.wait(1):
                pass

    class Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
        def Shutdown(self, request, context):
            threading.Thread(target=shutdown, daemon=True).start()
            return grpc_controller_pb2.Empty()

    class Stdio(grpc_stdio_pb2_grpc.GRPCStdioServicer):
        # This plugin writes its logs straight to stderr, so the stream
        # stays open and empty until shutdown.
        def StreamStdio(self, request, context):
            while context.is_active() and not stopping.wait(1):
                pass
            return
            yield  # a generator: a server stream that sends nothing

    class Broker(grpc_broker_pb2_grpc.GRPCBrokerServicer):
        def StartStream(self, request_iterator, context):
            def read():
                try:
                    for info in request_iterator:
                        with broker_cond:
                            broker_conns[info.service_id] = info
                            broker_cond.notify_all()
                except grpc.RpcError:
                    pass  # the stream ended with the call
            threading.Thread(target=read, daemon=True).start()
            while context.is_active() and not stopping.wait(1):
                pass
            return
            yield

    class Plugin(plugin_pb2_grpc.PluginServiceServicer):
        @unary
        def Describe(request, context):
            m = manifest()
            schema = struct_pb2.Struct()
            schema.update(m["configSchema"])
            return plugin_pb2.DescribeResponse(manifest=plugin_pb2.Manifest(
                name=m["name"], version=m["version"], description=m["description"],
                categories=["CATEGORY_" + c.upper() for c in m["categories"]],
                protocol_versions=m["protocolVersions"], config_schema=schema))

        @unary
        def Configure(request, context):
            config = json_format.MessageToDict(request.config) if request.HasField("config") else {}
            diagnostics = [
                plugin_pb2.Diagnostic(severity=plugin_pb2.SEVERITY_ERROR, field=field, summary=summary, detail=detail)
                for field, summary, detail in store.configure(config)
            ]
            if request.host_broker_id:
                # Proves the way back: say hello through the host's log service.
                try:
                    stub = host_stub(request.host_broker_id)
                    stub.Log(host_pb2.LogRequest(level=host_pb2.LEVEL_INFO, message=NAME + " configured",
                                                 fields={"max_credentials": str(store.max_credentials)}), timeout=10)
                except grpc.RpcError as err:
                    raise PluginError("plugin_stopped", "", "log through host services: %s" % err.details())
            return plugin_pb2.ConfigureResponse(diagnostics=diagnostics)

    class Credential(credential_pb2_grpc.CredentialServiceServicer):
        @unary
        def Put(request, context):
            meta = request.credential.meta
            item = store.put(meta.name, meta.type, meta.labels, request.credential.data)
            return credential_pb2.PutResponse(meta=meta_to_proto(item))

        @unary
        def Get(request, context):
            item = store.get(request.name)
            return credential_pb2.GetResponse(credential=credential_pb2.Credential(meta=meta_to_proto(item), data=item["data"]))

        @unary
        def Delete(request, context):
            store.delete(request.name)
            return credential_pb2.DeleteResponse()

        @unary
        def List(request, context):
            return credential_pb2.ListResponse(items=[meta_to_proto(i) for i in store.list(request.prefix)])

    # Streams (stdio, broker, health watch) hold a worker each for the life
    # of the plugin: keep enough for them and for the calls.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(), server)
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    grpc_broker_pb2_grpc.add_GRPCBrokerServicer_to_server(Broker(), server)
    plugin_pb2_grpc.add_PluginServiceServicer_to_server(Plugin(), server)
    credential_pb2_grpc.add_CredentialServiceServicer_to_server(Credential(), server)

    socket_dir = tempfile.mkdtemp(prefix="palvella-python-", dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
    socket_path = os.path.join(socket_dir, "plugin.sock")

    def shutdown(*_):
        if stopping.is_set():
            return
        stopping.set()
        with broker_cond:
            broker_cond.notify_all()
        with host_lock:
            if host:
                host["channel"].close()
        # Streams end within a second of `stopping`; the grace covers them.
        server.stop(grace=1.5)

    if tls:
        creds = grpc.ssl_server_credentials([(tls[0], tls[1])], root_certificates=host_cert_pem, require_client_auth=True)
        port = server.add_secure_port("unix:" + socket_path, creds)
    else:
        port = server.add_insecure_port("unix:" + socket_path)
    if port == 0:  # grpcio 1.51 says so with 0, not an exception
        log("error", "cannot listen", path=socket_path)
        shutil.rmtree(socket_dir, ignore_errors=True)
        sys.exit(1)
    server.start()

    # Interrupts are for the host: it stops its plugins through the controller.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=shutdown, daemon=True).start())

    fields = [str(CORE_PROTOCOL_VERSION), str(protocol_version), "unix", socket_path, "grpc"]
    if tls:
        fields.append(base64.b64encode(tls[2]).decode("ascii").rstrip("="))
    elif os.environ.get("PLUGIN_MULTIPLEX_GRPC"):
        fields.append("")
    # go-plugin's broker multiplexing is not supported: say so when asked.
    if os.environ.get("PLUGIN_MULTIPLEX_GRPC"):
        fields.append("false")
    sys.stdout.write("|".join(fields) + "\n")
    sys.stdout.flush()
    log("info", "plugin serving", protocol_version=protocol_version, tls=bool(tls))

    server.wait_for_termination()
    shutil.rmtree(socket_dir, ignore_errors=True)
    log("debug", "plugin stopped")


def main():
    if "--describe" in sys.argv[1:]:
        sys.stdout.write(json.dumps(manifest(), indent=2) + "\n")
        return 0

    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(
            "This program is a Palvella plugin. It is started by Palvella, not by hand.\n"
            "To see what it provides: %s --describe\n"
            "To use it: palvella plugin add <path-to-this-plugin> --allow-unsigned\n" % sys.argv[0])
        return 1

    protocol_version = negotiate_protocol(os.environ.get("PLUGIN_PROTOCOL_VERSIONS"))
    import_dependencies()
    serve(protocol_version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
