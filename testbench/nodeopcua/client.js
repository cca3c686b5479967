#!/usr/bin/env node
// client.js — drive node-opcua-client, an OPC UA stack nobody at brana wrote,
// from Go tests.
//
//   node client.js ENDPOINT OPS_JSON      (OPS_JSON "-" reads it from stdin)
//
// The connection is security None with an anonymous user unless the
// environment says otherwise:
//   BRANA_OPCUA_SECURITY  "POLICY:MODE", e.g. "Basic256Sha256:SignAndEncrypt"
//                         (node-opcua's SecurityPolicy and MessageSecurityMode
//                         names; "None" or unset: no security)
//   BRANA_OPCUA_USER      UserName identity (with BRANA_OPCUA_PASSWORD)
//   BRANA_OPCUA_USER_CERT X509 identity: the user's certificate (PEM, or DER
//                         when the name ends in .der), with
//   BRANA_OPCUA_USER_KEY  the user's private key (PEM, or DER as above)
//   BRANA_OPCUA_PKI       the client's PKI folder, where its self-signed
//                         certificate is made (own/certs/client_certificate.pem)
//                         and server certificates are trusted on first sight;
//                         a temporary folder, removed on exit, when unset and
//                         security is not None or the identity is X509
//   BRANA_OPCUA_CONNECT_TIMEOUT
//                         seconds to get a session before giving up (15)
//   BRANA_OPCUA_INIT_PKI  "1": only make the certificate in BRANA_OPCUA_PKI,
//                         print {"op":"initPKI","certificate":FILE} and exit;
//                         ENDPOINT and OPS_JSON may then be omitted
//
// OPS_JSON is a JSON array of operations, run in order on one session. Each
// prints one JSON line {"i": index, "op": ..., ...} to stdout; a failed
// operation has "error" and does not stop the others. Connection failures
// print {"op":"connect","error":...} and exit 1; the error names the status
// code the server answered (e.g. BadUserAccessDenied) when there was one.
// The client makes no second attempt to connect.
//
// Nodes are named by "nodeId" (node-opcua syntax, e.g. "ns=2;s=Feeder.Voltage";
// "nsu=URI;s=..." is resolved through the server's NamespaceArray) or by
// "path", browse names below the Objects folder separated by "/"
// ("Feeder/Breaker/Close"). Path segments are in the namespace "namespace"
// (a URI; namespace 0 without it) unless written "N:Name".
//
// read, write, readMany and writeMany address the Value attribute unless an
// item has "attribute" (an AttributeIds name: "DisplayName", "AccessLevel",
// ...); "indexRange" (e.g. "1" or "0:2") selects array elements.
//
//   {"op":"browse", NODE}                         → references [{browseName, nodeId, nodeClass, referenceType}]
//   {"op":"read", NODE, "attribute"?, "indexRange"?}
//                                                 → statusCode, dataType, value
//   {"op":"readMany", "items":[{NODE, "attribute"?, "indexRange"?}, ...]}
//                                                 → statusCodes, dataTypes, values (one Read request)
//   {"op":"write", NODE, "dataType":"Double", "value":450, "attribute"?, "indexRange"?}
//                                                 → statusCode
//   {"op":"writeMany", "items":[{NODE, "dataType", "value", "attribute"?, "indexRange"?}, ...]}
//                                                 → statusCodes (one Write request)
//   {"op":"registerNodes", "items":[NODE, ...]}  → nodeIds (the aliases the server returned)
//   {"op":"unregisterNodes", "items":[NODE, ...]}
//                                                 → statusCode
//   {"op":"call", "object":NODE, "method":NODE, "inputs":[{"dataType":"Byte","value":1}]}
//                                                 → statusCode, outputs [{dataType, value}], inputArgumentResults
//     An input {"output":{"op":I,"index":K}} passes output K of the earlier
//     call operation I as it came (a FileType Open's FileHandle to Write
//     and Close).
//   {"op":"subscribe", NODE, "seconds":3, "publishingInterval":200, "samplingInterval":100}
//                                                 → notifications, values, statusCodes, keepAlives,
//                                                   lastNotificationSeconds, terminated, statusChanges, errors
//
// An omitted NODE in browse means the Objects folder. In call, "object" and
// "method" are objects with nodeId or path; "method" may be omitted when a
// top-level "path" names the method (its parent is the object).
// In subscribe, "terminated" is true when the subscription ended before
// "seconds" were up (the server timed it out or deleted it, or the session or
// connection was lost); statusChanges are the StatusChangeNotifications and
// errors what the subscription, the session or the connection reported.
// Values: Int64/UInt64 print as decimal strings, ByteString as base64, arrays
// as JSON arrays, LocalizedText as its text. To write an array give "value" as
// a JSON array; LocalizedText and QualifiedName take a string.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const {
  OPCUAClient,
  MessageSecurityMode,
  SecurityPolicy,
  UserTokenType,
  AttributeIds,
  DataType,
  VariantArrayType,
  NodeClass,
  StatusCodes,
  ClientSubscription,
  ClientMonitoredItem,
  TimestampsToReturn,
  makeBrowsePath,
  resolveNodeId,
} = require("node-opcua-client");

function out(obj) {
  process.stdout.write(JSON.stringify(obj, replacer) + "\n");
}

function replacer(key, v) {
  if (typeof v === "bigint") return v.toString();
  if (v && v.type === "Buffer" && Array.isArray(v.data)) return Buffer.from(v.data).toString("base64");
  return v;
}

function errText(err) {
  return String(err && err.message ? err.message : err);
}

// connectErrText is errText plus the status code the error carries, if its
// message does not name it already.
function connectErrText(err) {
  let text = errText(err);
  const seen = new Set();
  for (let e = err; e && typeof e === "object" && !seen.has(e); e = e.cause) {
    seen.add(e);
    const sc = e.statusCode || (e.response && e.response.responseHeader && e.response.responseHeader.serviceResult);
    if (sc && sc.name && !text.includes(sc.name)) text += " (" + sc.name + ")";
    if (e !== err && e.message && !text.includes(e.message)) text += ": " + e.message;
  }
  return text;
}

function scalarValue(t, v) {
  if ((t === DataType.Int64 || t === DataType.UInt64) && Array.isArray(v) && v.length === 2 && typeof v[0] === "number") {
    // node-opcua keeps 64-bit integers as [high, low].
    const big = (BigInt(v[0] >>> 0) << 32n) | BigInt(v[1] >>> 0);
    return (t === DataType.Int64 ? BigInt.asIntN(64, big) : big).toString();
  }
  if (Buffer.isBuffer(v)) return v.toString("base64");
  if (t === DataType.LocalizedText && v && typeof v === "object") return v.text === undefined ? null : v.text;
  if (v && typeof v === "object" && typeof v.toString === "function" && !Array.isArray(v) && !(v instanceof Date)) {
    return v.toString();
  }
  return v;
}

function jsValue(variant) {
  if (!variant) return null;
  const t = variant.dataType;
  const v = variant.value;
  if (variant.arrayType !== undefined && variant.arrayType !== VariantArrayType.Scalar && v && !Buffer.isBuffer(v)) {
    return Array.from(v, (e) => scalarValue(t, e));
  }
  return scalarValue(t, v);
}

function dataTypeOf(name) {
  const t = DataType[name];
  if (typeof t !== "number") throw new Error("unknown dataType " + JSON.stringify(name));
  return t;
}

function attributeOf(name) {
  if (name === undefined || name === null || name === "") return AttributeIds.Value;
  const a = AttributeIds[name];
  if (typeof a !== "number") throw new Error("unknown attribute " + JSON.stringify(name));
  return a;
}

function toScalar(dataType, value) {
  switch (dataType) {
    case DataType.ByteString:
      return Buffer.from(value || "", "base64");
    case DataType.Int64:
    case DataType.UInt64: {
      const b = BigInt(value);
      const u = BigInt.asUintN(64, b);
      return [Number(u >> 32n), Number(u & 0xffffffffn)];
    }
    case DataType.LocalizedText:
      return typeof value === "string" ? { text: value } : value;
    case DataType.QualifiedName:
      return typeof value === "string" ? { name: value } : value;
    case DataType.NodeId:
      return typeof value === "string" ? resolveNodeId(value) : value;
    default:
      return value;
  }
}

function toVariant(dataType, value) {
  if (Array.isArray(value)) {
    return { dataType, arrayType: VariantArrayType.Array, value: value.map((e) => toScalar(dataType, e)) };
  }
  return { dataType, value: toScalar(dataType, value) };
}

// connectionSettings reads BRANA_OPCUA_* (see the header).
function connectionSettings() {
  const sec = (process.env.BRANA_OPCUA_SECURITY || "None").trim();
  let policy = SecurityPolicy.None;
  let mode = MessageSecurityMode.None;
  if (sec !== "" && sec !== "None" && sec !== "None:None") {
    const [p, m] = sec.split(":");
    policy = SecurityPolicy[p];
    mode = MessageSecurityMode[m || "SignAndEncrypt"];
    if (!policy || typeof mode !== "number") {
      throw new Error("BRANA_OPCUA_SECURITY " + JSON.stringify(sec) + ": want POLICY:MODE, e.g. Basic256Sha256:SignAndEncrypt");
    }
  }
  const user = process.env.BRANA_OPCUA_USER || "";
  const certFile = process.env.BRANA_OPCUA_USER_CERT || "";
  const keyFile = process.env.BRANA_OPCUA_USER_KEY || "";
  let identity; // undefined: anonymous
  if (certFile || keyFile) {
    if (!certFile || !keyFile) throw new Error("BRANA_OPCUA_USER_CERT and BRANA_OPCUA_USER_KEY go together");
    if (user) throw new Error("BRANA_OPCUA_USER and BRANA_OPCUA_USER_CERT exclude each other");
    const { readCertificate, readPrivateKey, keyOperationsFromPrivateKey } = require("node-opcua-crypto");
    identity = {
      type: UserTokenType.Certificate,
      certificateData: readCertificate(certFile), // DER
      keyOperations: keyOperationsFromPrivateKey(readPrivateKey(keyFile)),
    };
  } else if (user) {
    identity = { type: UserTokenType.UserName, userName: user, password: process.env.BRANA_OPCUA_PASSWORD || "" };
  }
  const timeout = Number(process.env.BRANA_OPCUA_CONNECT_TIMEOUT || 15);
  if (!(timeout > 0)) throw new Error("BRANA_OPCUA_CONNECT_TIMEOUT must be a positive number of seconds");
  return {
    policy,
    mode,
    identity,
    secure: mode !== MessageSecurityMode.None,
    x509: !!certFile,
    timeoutMs: timeout * 1000,
  };
}

// certificateManager gives the client a PKI folder of its own, so that runs
// neither share nor leave state in node-opcua's per-user default folder.
function certificateManager(cleanup) {
  const { OPCUACertificateManager } = require("node-opcua-certificate-manager");
  let dir = process.env.BRANA_OPCUA_PKI;
  if (!dir) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "brana-nodeopcua-client-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return new OPCUACertificateManager({ rootFolder: dir, automaticallyAcceptUnknownCertificate: true });
}

async function main() {
  const initPKI = process.env.BRANA_OPCUA_INIT_PKI === "1";
  const [endpoint, opsArg] = process.argv.slice(2);
  if (!initPKI && (!endpoint || !opsArg)) {
    process.stderr.write("usage: node client.js ENDPOINT OPS_JSON|-\n");
    process.exit(2);
  }
  let ops = [];
  if (!initPKI) {
    const opsText = opsArg === "-" ? fs.readFileSync(0, "utf8") : opsArg;
    ops = JSON.parse(opsText);
    if (!Array.isArray(ops)) throw new Error("OPS_JSON must be an array");
  }

  const cleanup = [];
  function exit(code) {
    for (const f of cleanup) {
      try { f(); } catch (_) { /* ignore */ }
    }
    process.exit(code);
  }

  let settings;
  try {
    if (initPKI && !process.env.BRANA_OPCUA_PKI) throw new Error("BRANA_OPCUA_INIT_PKI needs BRANA_OPCUA_PKI");
    settings = connectionSettings();
  } catch (err) {
    out({ op: initPKI ? "initPKI" : "connect", error: errText(err) });
    exit(1);
  }
  const options = {
    applicationName: "brana-testbench-nodeopcua",
    securityMode: settings.mode,
    securityPolicy: settings.policy,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    keepSessionAlive: false,
    requestedSessionTimeout: 60000,
  };
  if (settings.secure || settings.x509 || initPKI || process.env.BRANA_OPCUA_PKI) {
    options.clientCertificateManager = certificateManager(cleanup);
  }
  const client = OPCUAClient.create(options);

  // The certificate is made before connecting, so that it exists even when
  // the connection fails, and key generation does not count against the
  // connect timeout.
  try {
    await client.initializeCM();
  } catch (err) {
    out({ op: initPKI ? "initPKI" : "connect", error: "client certificate: " + errText(err) });
    exit(1);
  }
  if (initPKI) {
    out({ op: "initPKI", certificate: client.certificateFile });
    exit(0);
  }

  // Connection-level trouble during a long subscription is reported by the
  // subscribe op rather than lost.
  const connectionEvents = [];
  let connectionLost = false;
  let onConnectionLost = () => {};
  client.on("connection_lost", () => {
    connectionLost = true;
    connectionEvents.push("connection lost");
    onConnectionLost();
  });
  client.on("backoff", (n, delay) => connectionEvents.push("reconnect attempt " + n + " in " + delay + " ms"));
  client.on("start_reconnection", () => connectionEvents.push("reconnecting"));
  client.on("after_reconnection", (err) => connectionEvents.push("reconnected" + (err ? ": " + errText(err) : "")));

  let session;
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("no session within " + settings.timeoutMs / 1000 + " s")),
        settings.timeoutMs
      );
    });
    session = await Promise.race([
      (async () => {
        await client.connect(endpoint);
        return client.createSession(settings.identity);
      })(),
      timeout,
    ]);
    clearTimeout(timer);
  } catch (err) {
    clearTimeout(timer);
    out({ op: "connect", error: connectErrText(err) });
    // A hung server must not hold up the exit.
    setTimeout(() => exit(1), 2000).unref();
    try { await client.disconnect(); } catch (_) { /* ignore */ }
    exit(1);
  }
  let sessionClosed = false;
  session.on("session_closed", (sc) => {
    sessionClosed = true;
    connectionEvents.push("session closed" + (sc && sc.name ? ": " + sc.name : ""));
  });

  let nsArray = null;
  async function namespaces() {
    if (!nsArray) {
      const dv = await session.read({ nodeId: resolveNodeId("i=2255"), attributeId: AttributeIds.Value });
      if (dv.statusCode !== StatusCodes.Good) throw new Error("NamespaceArray: " + dv.statusCode.name);
      nsArray = dv.value.value;
    }
    return nsArray;
  }
  async function nsIndex(uri) {
    if (!uri) return 0;
    const i = (await namespaces()).indexOf(uri);
    if (i < 0) throw new Error("namespace not on server: " + uri);
    return i;
  }

  // node resolves {nodeId} or {path, namespace} to a NodeId.
  async function node(spec, fallbackObjects) {
    if (spec && spec.nodeId) {
      let s = spec.nodeId;
      const m = /^nsu=([^;]*);(.*)$/.exec(s);
      if (m) s = "ns=" + (await nsIndex(m[1])) + ";" + m[2];
      return resolveNodeId(s);
    }
    if (spec && typeof spec.path === "string" && spec.path !== "") {
      const ns = await nsIndex(spec.namespace);
      const rel = spec.path
        .split("/")
        .filter((s) => s !== "")
        .map((s) => "/" + (/^\d+:/.test(s) ? s : ns + ":" + s))
        .join("");
      const [res] = await session.translateBrowsePath([makeBrowsePath("ObjectsFolder", rel)]);
      if (res.statusCode !== StatusCodes.Good || !res.targets || res.targets.length === 0) {
        throw new Error("translate " + spec.path + ": " + res.statusCode.name);
      }
      return res.targets[0].targetId;
    }
    if (fallbackObjects) return resolveNodeId("ObjectsFolder");
    throw new Error("operation names no node (nodeId or path)");
  }

  async function readValueId(item) {
    const r = { nodeId: await node(item), attributeId: attributeOf(item.attribute) };
    if (item.indexRange) r.indexRange = item.indexRange;
    return r;
  }

  async function writeValue(item) {
    const dataType = dataTypeOf(item.dataType);
    const w = {
      nodeId: await node(item),
      attributeId: attributeOf(item.attribute),
      value: { value: toVariant(dataType, item.value) },
    };
    if (item.indexRange) w.indexRange = item.indexRange;
    return w;
  }

  function items(op) {
    if (!Array.isArray(op.items) || op.items.length === 0) throw new Error(op.op + " needs a non-empty items array");
    return op.items;
  }

  // The output arguments of the call operations so far, by operation index.
  const callOutputs = [];

  function inputVariant(a) {
    if (a && a.output) {
      const outs = callOutputs[a.output.op];
      const v = outs && outs[a.output.index || 0];
      if (!v) throw new Error("input names output " + JSON.stringify(a.output) + ", which no earlier call returned");
      return { dataType: v.dataType, arrayType: v.arrayType, value: v.value };
    }
    return toVariant(dataTypeOf(a.dataType), a.value);
  }

  async function run(op, i) {
    switch (op.op) {
      case "browse": {
        const nodeId = await node(op, true);
        const res = await session.browse({
          nodeId,
          referenceTypeId: "HierarchicalReferences",
          includeSubtypes: true,
          browseDirection: 0, // Forward
          resultMask: 0x3f,
        });
        return {
          nodeId: nodeId.toString(),
          statusCode: res.statusCode.name,
          references: (res.references || []).map((r) => ({
            browseName: r.browseName.name,
            browseNamespace: r.browseName.namespaceIndex,
            nodeId: r.nodeId.toString(),
            nodeClass: NodeClass[r.nodeClass],
            referenceType: r.referenceTypeId.toString(),
          })),
        };
      }
      case "read": {
        const rv = await readValueId(op);
        const dv = await session.read(rv);
        return {
          nodeId: rv.nodeId.toString(),
          statusCode: dv.statusCode.name,
          dataType: dv.value ? DataType[dv.value.dataType] : null,
          value: jsValue(dv.value),
        };
      }
      case "readMany": {
        const rvs = [];
        for (const it of items(op)) rvs.push(await readValueId(it));
        const dvs = await session.read(rvs);
        return {
          nodeIds: rvs.map((r) => r.nodeId.toString()),
          statusCodes: dvs.map((dv) => dv.statusCode.name),
          dataTypes: dvs.map((dv) => (dv.value ? DataType[dv.value.dataType] : null)),
          values: dvs.map((dv) => jsValue(dv.value)),
        };
      }
      case "write": {
        const wv = await writeValue(op);
        const sc = await session.write(wv);
        return { nodeId: wv.nodeId.toString(), statusCode: sc.name };
      }
      case "writeMany": {
        const wvs = [];
        for (const it of items(op)) wvs.push(await writeValue(it));
        const scs = await session.write(wvs);
        return { nodeIds: wvs.map((w) => w.nodeId.toString()), statusCodes: scs.map((sc) => sc.name) };
      }
      case "registerNodes": {
        const ids = [];
        for (const it of items(op)) ids.push(await node(it));
        const aliases = await session.registerNodes(ids);
        return { nodeIds: aliases.map((n) => n.toString()) };
      }
      case "unregisterNodes": {
        const ids = [];
        for (const it of items(op)) ids.push(await node(it));
        await session.unregisterNodes(ids);
        return { statusCode: "Good" };
      }
      case "call": {
        let objectId, methodId;
        if (op.method || op.object) {
          methodId = await node(op.method || op);
          objectId = await node(op.object);
        } else {
          const parts = (op.path || "").split("/").filter((s) => s !== "");
          methodId = await node(op);
          objectId = await node({ path: parts.slice(0, -1).join("/"), namespace: op.namespace });
        }
        const res = await session.call({
          objectId,
          methodId,
          inputArguments: (op.inputs || []).map(inputVariant),
        });
        callOutputs[i] = res.outputArguments || [];
        return {
          objectId: objectId.toString(),
          methodId: methodId.toString(),
          statusCode: res.statusCode.name,
          inputArgumentResults: (res.inputArgumentResults || []).map((s) => s.name),
          outputs: (res.outputArguments || []).map((v) => ({ dataType: DataType[v.dataType], value: jsValue(v) })),
        };
      }
      case "subscribe":
        return subscribe(op);
      default:
        throw new Error("unknown op " + JSON.stringify(op.op));
    }
  }

  async function subscribe(op) {
    const nodeId = await node(op);
    const seconds = op.seconds || 3;
    const publishingInterval = op.publishingInterval || 200;
    const maxKeepAliveCount = 10;
    // A lifetime of at least a minute and three keep-alives lets the
    // subscription ride out a slow gateway without the server timing it out.
    const lifetimeCount = Math.max(3 * maxKeepAliveCount, Math.ceil(60000 / publishingInterval));
    const sub = ClientSubscription.create(session, {
      requestedPublishingInterval: publishingInterval,
      requestedLifetimeCount: lifetimeCount,
      requestedMaxKeepAliveCount: maxKeepAliveCount,
      maxNotificationsPerPublish: 100,
      publishingEnabled: true,
      priority: 1,
    });
    const errors = [];
    const statusChanges = [];
    let keepAlives = 0;
    let ending = false; // set when this op deletes the subscription itself
    let terminated = false;
    let wake = () => {};
    const eventsBefore = connectionEvents.length;

    await new Promise((resolve, reject) => {
      sub.once("started", resolve);
      sub.once("error", reject);
      sub.once("internal_error", reject);
    });
    sub.on("error", (e) => errors.push("subscription: " + errText(e)));
    sub.on("internal_error", (e) => errors.push("subscription internal: " + errText(e)));
    sub.on("keepalive", () => keepAlives++);
    sub.on("status_changed", (sc) => {
      statusChanges.push(sc && sc.name ? sc.name : String(sc));
    });
    sub.on("terminated", () => {
      if (!ending) {
        terminated = true;
        wake();
      }
    });
    session.on("session_closed", () => wake());
    onConnectionLost = () => wake();

    const start = Date.now();
    let last = null;
    const values = [];
    const statusCodes = [];
    const item = ClientMonitoredItem.create(
      sub,
      { nodeId, attributeId: AttributeIds.Value },
      { samplingInterval: op.samplingInterval || 100, discardOldest: true, queueSize: 10 },
      TimestampsToReturn.Both
    );
    item.on("changed", (dv) => {
      last = Date.now();
      values.push(jsValue(dv.value));
      statusCodes.push(dv.statusCode.name);
    });
    item.on("err", (e) => errors.push("monitored item: " + errText(e)));

    await new Promise((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    const revised = sub.publishingInterval;
    onConnectionLost = () => {};
    if (!terminated && !sessionClosed && !connectionLost) {
      ending = true;
      try {
        await sub.terminate();
      } catch (e) {
        errors.push("terminate: " + errText(e));
      }
    } else {
      terminated = true;
    }
    for (const e of connectionEvents.slice(eventsBefore)) errors.push(e);
    const r = {
      nodeId: nodeId.toString(),
      seconds,
      elapsedSeconds: (Date.now() - start) / 1000,
      revisedPublishingInterval: revised,
      notifications: values.length,
      values,
      statusCodes: [...new Set(statusCodes)],
      keepAlives,
      lastNotificationSeconds: last === null ? null : (last - start) / 1000,
      terminated,
      statusChanges,
      errors,
    };
    if (errors.length > 0 && !terminated) r.error = errors.join("; ");
    return r;
  }

  let failed = false;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    try {
      out({ i, op: op.op, ...(await run(op, i)) });
    } catch (err) {
      failed = true;
      out({ i, op: op.op, error: errText(err) });
    }
  }
  try {
    if (!sessionClosed) await session.close();
    await client.disconnect();
  } catch (err) {
    out({ op: "disconnect", error: errText(err) });
  }
  exit(failed ? 3 : 0);
}

main().catch((err) => {
  out({ op: "fatal", error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
});
