#!/usr/bin/env node
// credential-node: a Palvella credential plugin written in Node.js.
//
// It keeps credentials in memory, and exists to show (and to test, see
// conformance_test.go) that a plugin can be written in any language that
// speaks gRPC. Everything a plugin must do is in this one file, in the order
// the host needs it:
//
//   1. `--describe` prints the manifest as JSON and exits.
//   2. Without the magic cookie in its environment, refuse to run.
//   3. Pick the protocol version from PLUGIN_PROTOCOL_VERSIONS.
//   4. With PLUGIN_CLIENT_CERT set (AutoMTLS), make a key and a self-signed
//      certificate, and require client certificates signed by the host's.
//   5. Serve grpc.health.v1.Health, go-plugin's GRPCController, GRPCStdio and
//      GRPCBroker, palvella.plugin.v1.PluginService and the category service
//      on a unix socket.
//   6. Print the handshake line on stdout. From then on stdout is not used;
//      logs go to stderr as JSON lines the host understands.
//
// docs/plugins/other-languages.md explains each step.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const NAME = 'credential-node';
const VERSION = '0.1.0';

// The handshake values of Palvella (plugin-sdk/handshake.go).
const MAGIC_COOKIE_KEY = 'PALVELLA_PLUGIN_MAGIC_COOKIE';
const MAGIC_COOKIE_VALUE = 'd5a1f2b3c0e84b7f9a6e2c1d8b0f4a37';
// go-plugin's own protocol version: always 1.
const CORE_PROTOCOL_VERSION = 1;
// The Palvella plugin protocol versions this plugin speaks.
const PROTOCOL_VERSIONS = [1];

const DEFAULT_MAX_CREDENTIALS = 10000;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const MAX_NAME_LENGTH = 253;
const KEY_PATTERN = /^[A-Za-z0-9._-]+$/;
const MAX_TYPE_LENGTH = 128;

// ---------------------------------------------------------------------------
// Manifest

/** The manifest, with the field names of sdk.Manifest's JSON tags. */
function manifest() {
  return {
    name: NAME,
    version: VERSION,
    description: 'Credentials kept in the memory of a Node.js process. For development, and the reference for plugins written in languages other than Go.',
    categories: ['credential'],
    protocolVersions: PROTOCOL_VERSIONS,
    configSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_credentials: {
          type: 'integer',
          minimum: 1,
          default: DEFAULT_MAX_CREDENTIALS,
          description: 'How many credentials the plugin holds at most; a Put of a new name beyond that fails with resource_exhausted.',
        },
      },
    },
  };
}

// ---------------------------------------------------------------------------
// Errors. A PluginError travels as a gRPC status whose details carry a
// palvella.plugin.v1.ErrorDetail, so that the Go side sees the same sentinel
// error (errors.Is(err, sdk.ErrNotFound)) and the field it is about.

// Reasons and codes of plugin-sdk/errors.go.
const GRPC_CODES = {
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  not_found: grpc.status.NOT_FOUND,
  already_exists: grpc.status.ALREADY_EXISTS,
  conflict: grpc.status.ABORTED,
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  permission_denied: grpc.status.PERMISSION_DENIED,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  unimplemented: grpc.status.UNIMPLEMENTED,
  resource_exhausted: grpc.status.RESOURCE_EXHAUSTED,
  plugin_stopped: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

class PluginError extends Error {
  /**
   * @param {string} reason one of the keys of GRPC_CODES
   * @param {string} field the input field the error is about, or ''
   * @param {string} message what is wrong, for a person; never a secret
   */
  constructor(reason, field, message) {
    super(message);
    this.reason = reason;
    this.field = field;
  }
}

// A few lines of protobuf encoding, so that the error detail needs no
// generated code: google.rpc.Status{code, message, details: [Any{ErrorDetail}]}.
function pbVarint(n) {
  const out = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
function pbBytes(fieldNumber, buf) {
  if (buf.length === 0) return Buffer.alloc(0);
  return Buffer.concat([pbVarint((fieldNumber << 3) | 2), pbVarint(buf.length), buf]);
}
function pbString(fieldNumber, s) {
  return pbBytes(fieldNumber, Buffer.from(s || '', 'utf8'));
}
function pbUint(fieldNumber, n) {
  if (!n) return Buffer.alloc(0);
  return Buffer.concat([pbVarint(fieldNumber << 3), pbVarint(n)]);
}

/** Encodes the google.rpc.Status sent in the grpc-status-details-bin trailer. */
function statusDetails(code, message, reason, field) {
  const detail = Buffer.concat([pbString(1, reason), pbString(2, field)]);
  const any = Buffer.concat([
    pbString(1, 'type.googleapis.com/palvella.plugin.v1.ErrorDetail'),
    pbBytes(2, detail),
  ]);
  return Buffer.concat([pbUint(1, code), pbString(2, message), pbBytes(3, any)]);
}

/** Turns an error thrown by a handler into what a grpc-js callback takes. */
function toServiceError(err) {
  if (!(err instanceof PluginError)) {
    // Unexpected: say so without details that might hold a value.
    log('error', 'request failed', { error: String(err && err.stack ? err.stack : err) });
    err = new PluginError('internal', '', 'internal error in the credential-node plugin');
  }
  const code = GRPC_CODES[err.reason] ?? grpc.status.UNKNOWN;
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', statusDetails(code, err.message, err.reason, err.field));
  return { code, details: err.message, metadata };
}

// ---------------------------------------------------------------------------
// google.protobuf.Struct and Timestamp, as @grpc/proto-loader hands them over.

function fromValue(v) {
  if (!v) return null;
  switch (v.kind) {
    case 'nullValue': return null;
    case 'numberValue': return v.numberValue;
    case 'stringValue': return v.stringValue;
    case 'boolValue': return v.boolValue;
    case 'structValue': return fromStruct(v.structValue);
    case 'listValue': return ((v.listValue && v.listValue.values) || []).map(fromValue);
    default: return null;
  }
}
function fromStruct(s) {
  const out = {};
  for (const [k, v] of Object.entries((s && s.fields) || {})) out[k] = fromValue(v);
  return out;
}
function toValue(x) {
  if (x === null || x === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof x === 'number') return { numberValue: x };
  if (typeof x === 'string') return { stringValue: x };
  if (typeof x === 'boolean') return { boolValue: x };
  if (Array.isArray(x)) return { listValue: { values: x.map(toValue) } };
  return { structValue: toStruct(x) };
}
function toStruct(obj) {
  const fields = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toValue(v);
  return { fields };
}
function toTimestamp(ms) {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

// ---------------------------------------------------------------------------
// The credential store: the plugin's own logic, free of gRPC.

class Store {
  constructor() {
    /** @type {Map<string, {name: string, type: string, labels: Object<string,string>, data: Object<string,Buffer>, createdAt: number, updatedAt: number}>} */
    this.items = new Map();
    this.maxCredentials = DEFAULT_MAX_CREDENTIALS;
  }

  /** Applies a configuration; returns diagnostics, changing nothing if there is an error. */
  configure(config) {
    const diagnostics = [];
    let max = DEFAULT_MAX_CREDENTIALS;
    for (const [key, value] of Object.entries(config)) {
      if (key !== 'max_credentials') {
        diagnostics.push({
          severity: 'SEVERITY_ERROR', summary: `unknown setting ${JSON.stringify(key)}`,
          detail: 'credential-node accepts only max_credentials.', field: `config.${key}`,
        });
        continue;
      }
      if (!Number.isInteger(value) || value < 1) {
        diagnostics.push({
          severity: 'SEVERITY_ERROR', summary: 'max_credentials must be a whole number of at least 1',
          detail: `got ${JSON.stringify(value)}`, field: 'config.max_credentials',
        });
        continue;
      }
      max = value;
    }
    if (diagnostics.length === 0) this.maxCredentials = max;
    return diagnostics;
  }

  put(req) {
    const name = req.name;
    checkName(name);
    if (typeof req.type !== 'string' || req.type.length > MAX_TYPE_LENGTH) {
      throw new PluginError('invalid_argument', 'type', `type must be at most ${MAX_TYPE_LENGTH} characters`);
    }
    for (const key of Object.keys(req.labels)) {
      if (!KEY_PATTERN.test(key)) {
        throw new PluginError('invalid_argument', 'labels', `label key ${JSON.stringify(key)} must be letters, digits, '.', '_' or '-'`);
      }
    }
    const keys = Object.keys(req.data);
    if (keys.length === 0) {
      throw new PluginError('invalid_argument', 'data', 'data must hold at least one value (conventionally under the key "value")');
    }
    for (const key of keys) {
      if (!KEY_PATTERN.test(key)) {
        throw new PluginError('invalid_argument', 'data', `data key ${JSON.stringify(key)} must be letters, digits, '.', '_' or '-'`);
      }
    }
    const old = this.items.get(name);
    if (!old && this.items.size >= this.maxCredentials) {
      throw new PluginError('resource_exhausted', '', `the plugin already holds max_credentials (${this.maxCredentials}) credentials`);
    }
    const now = Date.now();
    const data = {};
    for (const key of keys) data[key] = Buffer.from(req.data[key]);
    const item = {
      name, type: req.type, labels: { ...req.labels }, data,
      createdAt: old ? old.createdAt : now, updatedAt: now,
    };
    this.items.set(name, item);
    return item;
  }

  get(name) {
    const item = this.items.get(name);
    if (!item) throw new PluginError('not_found', 'name', `credential ${JSON.stringify(name)} not found`);
    return item;
  }

  delete(name) {
    if (!this.items.delete(name)) {
      throw new PluginError('not_found', 'name', `credential ${JSON.stringify(name)} not found`);
    }
  }

  list(prefix) {
    return [...this.items.values()]
      .filter((item) => item.name.startsWith(prefix))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

function checkName(name) {
  if (!name) throw new PluginError('invalid_argument', 'name', 'name must not be empty');
  if (name.length > MAX_NAME_LENGTH) {
    throw new PluginError('invalid_argument', 'name', `name must be at most ${MAX_NAME_LENGTH} characters`);
  }
  if (!NAME_PATTERN.test(name)) {
    throw new PluginError('invalid_argument', 'name', `name ${JSON.stringify(name)} must start with a letter or digit and hold only letters, digits, '.', '_' or '-'`);
  }
}

function metaToProto(item) {
  return {
    name: item.name, type: item.type, labels: item.labels,
    createdAt: toTimestamp(item.createdAt), updatedAt: toTimestamp(item.updatedAt),
  };
}

// ---------------------------------------------------------------------------
// Logging: JSON lines on stderr in hclog's shape, which the host parses and
// writes into its own log under the plugin's name.

function log(level, message, fields = {}) {
  const timestamp = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  process.stderr.write(JSON.stringify({ '@level': level, '@message': message, '@timestamp': timestamp, ...fields }) + '\n');
}

// ---------------------------------------------------------------------------
// Certificates for AutoMTLS. Node can make keys and sign, but has no API to
// build an X.509 certificate, so a few lines of DER do it.

function der(tag, ...parts) {
  const body = Buffer.concat(parts);
  let len;
  if (body.length < 0x80) {
    len = Buffer.from([body.length]);
  } else {
    const bytes = [];
    for (let n = body.length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const derSeq = (...parts) => der(0x30, ...parts);
function derOID(dotted) {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const group = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) group.unshift((v & 0x7f) | 0x80);
    out.push(...group);
  }
  return der(0x06, Buffer.from(out));
}
function derUint(buf) {
  let i = 0;
  while (i < buf.length - 1 && buf[i] === 0) i++;
  buf = buf.subarray(i);
  return der(0x02, buf[0] & 0x80 ? Buffer.concat([Buffer.from([0]), buf]) : buf);
}
function derTime(d) {
  const p = (n) => String(n).padStart(2, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const year = d.getUTCFullYear();
  return year < 2050 ? der(0x17, Buffer.from(p(year % 100) + rest)) : der(0x18, Buffer.from(year + rest));
}
const DER_TRUE = der(0x01, Buffer.from([0xff]));
function derExtension(oid, critical, value) {
  return critical ? derSeq(derOID(oid), DER_TRUE, der(0x04, value)) : derSeq(derOID(oid), der(0x04, value));
}

/**
 * Makes an ECDSA P-256 key and a self-signed certificate for "localhost",
 * usable for server and client authentication, as go-plugin's own plugins do.
 */
function selfSignedCert() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaWithSHA256 = derSeq(derOID('1.2.840.10045.4.3.2'));
  const name = derSeq(
    der(0x31, derSeq(derOID('2.5.4.10'), der(0x0c, Buffer.from('Palvella plugin')))),
    der(0x31, derSeq(derOID('2.5.4.3'), der(0x0c, Buffer.from('localhost')))),
  );
  const now = Date.now();
  const tbs = derSeq(
    der(0xa0, derUint(Buffer.from([2]))), // X.509 v3
    derUint(crypto.randomBytes(16)),
    ecdsaWithSHA256,
    name,
    derSeq(derTime(new Date(now - 30 * 1000)), derTime(new Date(now + 365 * 24 * 3600 * 1000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, derSeq(
      derExtension('2.5.29.15', true, der(0x03, Buffer.from([0x02, 0x84]))), // keyUsage: digitalSignature, keyCertSign
      derExtension('2.5.29.37', false, derSeq(derOID('1.3.6.1.5.5.7.3.1'), derOID('1.3.6.1.5.5.7.3.2'))), // serverAuth, clientAuth
      derExtension('2.5.29.19', true, derSeq(DER_TRUE)), // basicConstraints: CA, so it can anchor itself
      derExtension('2.5.29.17', false, derSeq(der(0x82, Buffer.from('localhost')))), // subjectAltName: DNS localhost
    )),
  );
  const signature = crypto.sign('sha256', tbs, privateKey); // DER-encoded ECDSA signature
  const certDER = derSeq(tbs, ecdsaWithSHA256, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = certDER.toString('base64');
  const certPEM = `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
  return { certDER, certPEM, keyPEM: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
}

// ---------------------------------------------------------------------------
// The plugin process.

const LOAD_OPTIONS = { keepCase: false, longs: Number, enums: String, bytes: Buffer, defaults: true, oneofs: true };

function loadProtos() {
  // Palvella's contracts, from the repository's proto/ directory.
  const repoProto = path.resolve(__dirname, '..', '..', '..', 'proto');
  const palvella = grpc.loadPackageDefinition(protoLoader.loadSync([
    'palvella/plugin/v1/plugin.proto',
    'palvella/credential/v1/credential.proto',
    'palvella/host/v1/host.proto',
  ], { ...LOAD_OPTIONS, includeDirs: [repoProto] }));
  // go-plugin's services and gRPC health checking, shipped next to this file.
  const local = grpc.loadPackageDefinition(protoLoader.loadSync([
    'grpc/health/v1/health.proto',
    'plugin/grpc_controller.proto',
    'plugin/grpc_stdio.proto',
    'plugin/grpc_broker.proto',
  ], { ...LOAD_OPTIONS, includeDirs: [path.join(__dirname, 'proto')] }));
  return {
    pluginV1: palvella.palvella.plugin.v1,
    credentialV1: palvella.palvella.credential.v1,
    hostV1: palvella.palvella.host.v1,
    health: local.grpc.health.v1,
    goplugin: local.plugin,
  };
}

/** Picks the highest protocol version both sides speak. */
function negotiateProtocol(offered) {
  const hostVersions = (offered || '').split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
  const common = PROTOCOL_VERSIONS.filter((v) => hostVersions.includes(v));
  if (common.length > 0) return Math.max(...common);
  if (hostVersions.length > 0) {
    // Answer with our own version anyway: the host refuses it and says which
    // versions each side speaks.
    log('error', 'no protocol version in common with the host', {
      host_versions: hostVersions.join(','), plugin_versions: PROTOCOL_VERSIONS.join(','),
    });
  }
  return Math.min(...PROTOCOL_VERSIONS);
}

/** Wraps a unary handler: errors become statuses, cancelled calls change nothing. */
function unary(fn) {
  return (call, callback) => {
    if (call.cancelled) {
      callback({ code: grpc.status.CANCELLED, details: 'call cancelled' });
      return;
    }
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then((resp) => callback(null, resp), (err) => callback(toServiceError(err)));
  };
}

function main() {
  const args = process.argv.slice(2);
  if (args.includes('--describe')) {
    process.stdout.write(JSON.stringify(manifest(), null, 2) + '\n');
    return;
  }

  if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(
      'This program is a Palvella plugin. It is started by Palvella, not by hand.\n' +
      `To see what it provides: node ${path.relative(process.cwd(), __filename) || __filename} --describe\n` +
      'To use it: palvella plugin add <path-to-this-plugin> --allow-unsigned\n');
    process.exitCode = 1;
    return;
  }

  const protocolVersion = negotiateProtocol(process.env.PLUGIN_PROTOCOL_VERSIONS);
  const protos = loadProtos();
  const store = new Store();
  const server = new grpc.Server();
  const openStreams = new Set(); // stdio and broker streams, ended at shutdown

  // AutoMTLS: the host's certificate arrives in PLUGIN_CLIENT_CERT.
  const hostCertPEM = process.env.PLUGIN_CLIENT_CERT || '';
  const tls = hostCertPEM ? selfSignedCert() : null;

  // The broker: the host announces, on this stream, where it serves the
  // services it offers back to the plugin (palvella.host.v1.HostService).
  const brokerConns = new Map();
  const brokerWaiters = new Map();
  function brokerConn(id, timeoutMs) {
    if (brokerConns.has(id)) return Promise.resolve(brokerConns.get(id));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        brokerWaiters.delete(id);
        reject(new PluginError('plugin_stopped', '', `the host did not announce broker service ${id}`));
      }, timeoutMs);
      brokerWaiters.set(id, (info) => { clearTimeout(timer); resolve(info); });
    });
  }
  let host = null; // { id, client } once Configure offered host services
  async function hostClient(id) {
    if (host && host.id === id) return host.client;
    const info = await brokerConn(id, 5000);
    const target = info.network === 'unix' ? `unix:${info.address}` : info.address;
    const creds = tls
      ? grpc.credentials.createSsl(Buffer.from(hostCertPEM), Buffer.from(tls.keyPEM), Buffer.from(tls.certPEM))
      : grpc.credentials.createInsecure();
    if (host) host.client.close();
    const client = new protos.hostV1.HostService(target, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    host = { id, client };
    return client;
  }

  let stopping = false;
  function shutdown() {
    if (stopping) return;
    stopping = true;
    for (const stream of openStreams) stream.end();
    if (host) host.client.close();
    const exit = () => {
      fs.rmSync(socketDir, { recursive: true, force: true });
      process.exit(0);
    };
    server.tryShutdown(exit);
    setTimeout(() => { server.forceShutdown(); exit(); }, 2000).unref();
  }

  server.addService(protos.health.Health.service, {
    Check: (call, callback) => {
      const service = call.request.service;
      if (service === '' || service === 'plugin') callback(null, { status: 'SERVING' });
      else callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(service)}` });
    },
    Watch: (call) => {
      call.write({ status: 'SERVING' });
      openStreams.add(call);
      call.on('cancelled', () => openStreams.delete(call));
    },
  });

  server.addService(protos.goplugin.GRPCController.service, {
    Shutdown: (call, callback) => {
      callback(null, {});
      shutdown();
    },
  });

  // This plugin writes its logs straight to stderr, so the stdio stream
  // stays open and empty until shutdown.
  server.addService(protos.goplugin.GRPCStdio.service, {
    StreamStdio: (call) => {
      openStreams.add(call);
      call.on('cancelled', () => openStreams.delete(call));
    },
  });

  server.addService(protos.goplugin.GRPCBroker.service, {
    StartStream: (call) => {
      openStreams.add(call);
      call.on('data', (info) => {
        brokerConns.set(info.serviceId, info);
        const waiter = brokerWaiters.get(info.serviceId);
        if (waiter) {
          brokerWaiters.delete(info.serviceId);
          waiter(info);
        }
      });
      call.on('end', () => { openStreams.delete(call); call.end(); });
      call.on('cancelled', () => openStreams.delete(call));
      call.on('error', () => openStreams.delete(call));
    },
  });

  server.addService(protos.pluginV1.PluginService.service, {
    Describe: unary(() => {
      const m = manifest();
      return {
        manifest: {
          name: m.name, version: m.version, description: m.description,
          categories: m.categories.map((c) => `CATEGORY_${c.toUpperCase()}`),
          protocolVersions: m.protocolVersions,
          configSchema: toStruct(m.configSchema),
          types: [],
        },
      };
    }),
    Configure: unary(async (req) => {
      const diagnostics = store.configure(fromStruct(req.config));
      if (req.hostBrokerId) {
        // Proves the way back: say hello through the host's log service.
        const client = await hostClient(req.hostBrokerId).catch((err) => {
          throw err instanceof PluginError ? err : new PluginError('plugin_stopped', '', `connect to host services: ${err.message}`);
        });
        await new Promise((resolve, reject) => {
          client.Log({ level: 'LEVEL_INFO', message: 'credential-node configured', fields: { max_credentials: String(store.maxCredentials) } },
            (err) => (err ? reject(new PluginError('plugin_stopped', '', `log through host services: ${err.details || err.message}`)) : resolve()));
        });
      }
      return { diagnostics };
    }),
  });

  server.addService(protos.credentialV1.CredentialService.service, {
    Put: unary((req) => {
      const cred = req.credential || {};
      const meta = cred.meta || {};
      const item = store.put({ name: meta.name || '', type: meta.type || '', labels: meta.labels || {}, data: cred.data || {} });
      return { meta: metaToProto(item) };
    }),
    Get: unary((req) => {
      const item = store.get(req.name);
      return { credential: { meta: metaToProto(item), data: item.data } };
    }),
    Delete: unary((req) => {
      store.delete(req.name);
      return {};
    }),
    List: unary((req) => ({ items: store.list(req.prefix || '').map(metaToProto) })),
  });

  // Interrupts are for the host: it stops its plugins through the controller.
  process.on('SIGINT', () => log('debug', 'interrupt ignored; the host stops this plugin'));
  process.on('SIGTERM', shutdown);

  const socketDir = fs.mkdtempSync(path.join(process.env.PLUGIN_UNIX_SOCKET_DIR || os.tmpdir(), 'palvella-node-'));
  const socketPath = path.join(socketDir, 'plugin.sock');
  const creds = tls
    ? grpc.ServerCredentials.createSsl(Buffer.from(hostCertPEM), [{ private_key: Buffer.from(tls.keyPEM), cert_chain: Buffer.from(tls.certPEM) }], true)
    : grpc.ServerCredentials.createInsecure();
  server.bindAsync(`unix:${socketPath}`, creds, (err) => {
    if (err) {
      log('error', 'cannot listen', { path: socketPath, error: err.message });
      fs.rmSync(socketDir, { recursive: true, force: true });
      process.exit(1);
    }
    const fields = [CORE_PROTOCOL_VERSION, protocolVersion, 'unix', socketPath, 'grpc'];
    if (tls) fields.push(tls.certDER.toString('base64').replace(/=+$/, ''));
    else if (process.env.PLUGIN_MULTIPLEX_GRPC) fields.push('');
    // go-plugin's broker multiplexing is not supported: say so when asked.
    if (process.env.PLUGIN_MULTIPLEX_GRPC) fields.push('false');
    process.stdout.write(fields.join('|') + '\n');
    log('info', 'plugin serving', { protocol_version: protocolVersion, tls: Boolean(tls) });
  });
}

if (require.main === module) main();

module.exports = { Store, PluginError, manifest, negotiateProtocol, selfSignedCert, statusDetails };
