#!/usr/bin/env node
// client.js — drive node-opcua-client, an OPC UA stack nobody at brana wrote,
// from Go tests. Security None, anonymous user.
//
//   node client.js ENDPOINT OPS_JSON      (OPS_JSON "-" reads it from stdin)
//
// OPS_JSON is a JSON array of operations, run in order on one session. Each
// prints one JSON line {"i": index, "op": ..., ...} to stdout; a failed
// operation has "error" and does not stop the others. Connection failures
// print {"op":"connect","error":...} and exit 1.
//
// Nodes are named by "nodeId" (node-opcua syntax, e.g. "ns=2;s=Feeder.Voltage";
// "nsu=URI;s=..." is resolved through the server's NamespaceArray) or by
// "path", browse names below the Objects folder separated by "/"
// ("Feeder/Breaker/Close"). Path segments are in the namespace "namespace"
// (a URI; namespace 0 without it) unless written "N:Name".
//
//   {"op":"browse", NODE}                         → references [{browseName, nodeId, nodeClass, referenceType}]
//   {"op":"read", NODE}                           → statusCode, dataType, value
//   {"op":"write", NODE, "dataType":"Double", "value":450}
//                                                 → statusCode
//   {"op":"call", "object":NODE, "method":NODE, "inputs":[{"dataType":"Byte","value":1}]}
//                                                 → statusCode, outputs [{dataType, value}], inputArgumentResults
//   {"op":"subscribe", NODE, "seconds":3, "publishingInterval":200, "samplingInterval":100}
//                                                 → notifications, values, statusCodes
//
// An omitted NODE in browse means the Objects folder. In call, "object" and
// "method" are objects with nodeId or path; "method" may be omitted when a
// top-level "path" names the method (its parent is the object).
// Values: Int64/UInt64 print as decimal strings, ByteString as base64.
"use strict";

const {
  OPCUAClient,
  MessageSecurityMode,
  SecurityPolicy,
  AttributeIds,
  DataType,
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

function jsValue(variant) {
  if (!variant) return null;
  const t = variant.dataType;
  const v = variant.value;
  if ((t === DataType.Int64 || t === DataType.UInt64) && Array.isArray(v) && v.length === 2 && typeof v[0] === "number") {
    // node-opcua keeps 64-bit integers as [high, low].
    const big = (BigInt(v[0] >>> 0) << 32n) | BigInt(v[1] >>> 0);
    return (t === DataType.Int64 ? BigInt.asIntN(64, big) : big).toString();
  }
  if (Buffer.isBuffer(v)) return v.toString("base64");
  if (v && typeof v === "object" && typeof v.toString === "function" && !Array.isArray(v) && !(v instanceof Date)) {
    return v.toString();
  }
  return v;
}

function dataTypeOf(name) {
  const t = DataType[name];
  if (typeof t !== "number") throw new Error("unknown dataType " + JSON.stringify(name));
  return t;
}

function toVariantValue(dataType, value) {
  switch (dataType) {
    case DataType.ByteString:
      return Buffer.from(value || "", "base64");
    case DataType.Int64:
    case DataType.UInt64: {
      const b = BigInt(value);
      const u = BigInt.asUintN(64, b);
      return [Number(u >> 32n), Number(u & 0xffffffffn)];
    }
    default:
      return value;
  }
}

async function main() {
  const [endpoint, opsArg] = process.argv.slice(2);
  if (!endpoint || !opsArg) {
    process.stderr.write("usage: node client.js ENDPOINT OPS_JSON|-\n");
    process.exit(2);
  }
  const opsText = opsArg === "-" ? require("fs").readFileSync(0, "utf8") : opsArg;
  const ops = JSON.parse(opsText);
  if (!Array.isArray(ops)) throw new Error("OPS_JSON must be an array");

  const client = OPCUAClient.create({
    applicationName: "brana-testbench-nodeopcua",
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    keepSessionAlive: false,
    requestedSessionTimeout: 60000,
  });

  let session;
  try {
    await client.connect(endpoint);
    session = await client.createSession(); // anonymous
  } catch (err) {
    out({ op: "connect", error: String(err && err.message ? err.message : err) });
    try { await client.disconnect(); } catch (_) { /* ignore */ }
    process.exit(1);
  }

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

  async function run(op) {
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
        const nodeId = await node(op);
        const dv = await session.read({ nodeId, attributeId: AttributeIds.Value });
        return {
          nodeId: nodeId.toString(),
          statusCode: dv.statusCode.name,
          dataType: dv.value ? DataType[dv.value.dataType] : null,
          value: jsValue(dv.value),
        };
      }
      case "write": {
        const nodeId = await node(op);
        const dataType = dataTypeOf(op.dataType);
        const sc = await session.write({
          nodeId,
          attributeId: AttributeIds.Value,
          value: { value: { dataType, value: toVariantValue(dataType, op.value) } },
        });
        return { nodeId: nodeId.toString(), statusCode: sc.name };
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
          inputArguments: (op.inputs || []).map((a) => {
            const dataType = dataTypeOf(a.dataType);
            return { dataType, value: toVariantValue(dataType, a.value) };
          }),
        });
        return {
          objectId: objectId.toString(),
          methodId: methodId.toString(),
          statusCode: res.statusCode.name,
          inputArgumentResults: (res.inputArgumentResults || []).map((s) => s.name),
          outputs: (res.outputArguments || []).map((v) => ({ dataType: DataType[v.dataType], value: jsValue(v) })),
        };
      }
      case "subscribe": {
        const nodeId = await node(op);
        const seconds = op.seconds || 3;
        const sub = ClientSubscription.create(session, {
          requestedPublishingInterval: op.publishingInterval || 200,
          requestedLifetimeCount: 100,
          requestedMaxKeepAliveCount: 10,
          maxNotificationsPerPublish: 100,
          publishingEnabled: true,
          priority: 1,
        });
        await new Promise((resolve, reject) => {
          sub.once("started", resolve);
          sub.once("failed", reject);
        });
        const values = [];
        const statusCodes = [];
        const item = ClientMonitoredItem.create(
          sub,
          { nodeId, attributeId: AttributeIds.Value },
          { samplingInterval: op.samplingInterval || 100, discardOldest: true, queueSize: 10 },
          TimestampsToReturn.Both
        );
        item.on("changed", (dv) => {
          values.push(jsValue(dv.value));
          statusCodes.push(dv.statusCode.name);
        });
        let itemErr = null;
        item.on("err", (e) => { itemErr = String(e); });
        await new Promise((r) => setTimeout(r, seconds * 1000));
        const revised = sub.publishingInterval;
        await sub.terminate();
        const r = {
          nodeId: nodeId.toString(),
          seconds,
          revisedPublishingInterval: revised,
          notifications: values.length,
          values,
          statusCodes: [...new Set(statusCodes)],
        };
        if (itemErr) r.error = itemErr;
        return r;
      }
      default:
        throw new Error("unknown op " + JSON.stringify(op.op));
    }
  }

  let failed = false;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    try {
      out({ i, op: op.op, ...(await run(op)) });
    } catch (err) {
      failed = true;
      out({ i, op: op.op, error: String(err && err.message ? err.message : err) });
    }
  }
  try {
    await session.close();
    await client.disconnect();
  } catch (err) {
    out({ op: "disconnect", error: String(err && err.message ? err.message : err) });
  }
  process.exit(failed ? 3 : 0);
}

main().catch((err) => {
  out({ op: "fatal", error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
});
