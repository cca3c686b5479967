#!/usr/bin/env node
// server.js — a downstream PLC built on node-opcua-server, an OPC UA server
// stack nobody at brana wrote, for Go tests to put brana in front of.
//
//   node server.js CONFIG_JSON      (CONFIG_JSON "-" reads it from stdin's first line)
//
// CONFIG_JSON: {"port": N, "user": U, "password": P, "pkiDir": DIR,
// "namespaceUri": URI (default "urn:brana:testbench:nodeplc")}. The port must
// be concrete: node-opcua writes it into its endpoint descriptions.
//
// Only Basic256Sha256 with SignAndEncrypt is offered, and only the one
// UserName identity is accepted (no anonymous), as on a hardened PLC. Client
// certificates are trusted on first sight so that brana's own certificate
// needs no provisioning; the server's self-signed certificate is made in
// pkiDir/own.
//
// Address space, in the namespace URI (string NodeIds):
//   Objects/Feeder                 object   s=Feeder
//   Objects/Feeder/Voltage         Double   s=Feeder.Voltage  read-only, changes every 100 ms
//   Objects/Feeder/Setpoint        Double   s=Feeder.Setpoint read/write
//   Objects/Feeder/Limits          Double[4] s=Feeder.Limits  read/write
//   Objects/Feeder/Reset()         method   s=Feeder.Reset    sets Setpoint to 0
//
// stdout, one JSON object a line (node-opcua's own log lines are not JSON):
//   {"event":"ready","endpoint":URL,"namespaceUri":URI,"namespaceIndex":N}
//   {"event":"write","channel":C,"handle":H,"nodeId":..,"attribute":"Value","indexRange":..,"dataType":..,"value":..}
//       one per WriteValue of every Write request that reaches the server,
//       before the session or access rights are checked
//   {"event":"call","channel":C,"handle":H,"objectId":..,"methodId":..,"inputs":[..]}
//   {"event":"result","channel":C,"handle":H,"service":"write"|"call","statusCodes":[..]}
//       the outcome of the request with that channel and handle, one code per item (the
//       service result for each item when the whole request failed)
//   {"event":"session","user":U}  a session was activated
// It exits when stdin closes, on SIGTERM and on SIGINT.
"use strict";

const path = require("path");
const fs = require("fs");
const { OPCUAServer } = require("node-opcua-server");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");
const {
  DataType,
  Variant,
  VariantArrayType,
  StatusCodes,
  MessageSecurityMode,
  SecurityPolicy,
  AttributeIds,
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
  const v = variant.value;
  if (Buffer.isBuffer(v)) return v.toString("base64");
  if (ArrayBuffer.isView(v)) return Array.from(v);
  if (variant.dataType === DataType.LocalizedText && v && typeof v === "object") return v.text === undefined ? null : v.text;
  if (v && typeof v === "object" && typeof v.toString === "function" && !Array.isArray(v) && !(v instanceof Date)) {
    return v.toString();
  }
  return v;
}

function attributeName(id) {
  for (const [k, v] of Object.entries(AttributeIds)) if (v === id) return k;
  return String(id);
}

function readConfig() {
  const arg = process.argv[2];
  if (!arg) {
    process.stderr.write("usage: node server.js CONFIG_JSON|-\n");
    process.exit(2);
  }
  if (arg !== "-") return JSON.parse(arg);
  // The config is the first line of stdin; the rest of stdin stays open so
  // that its end can stop the server.
  return new Promise((resolve, reject) => {
    let buf = "";
    const onData = (chunk) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      process.stdin.off("data", onData);
      try {
        resolve(JSON.parse(buf.slice(0, nl)));
      } catch (e) {
        reject(e);
      }
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData);
  });
}

async function main() {
  const cfg = await readConfig();
  if (!cfg.port || !cfg.user || !cfg.pkiDir) throw new Error("config needs port, user and pkiDir");
  const nsUri = cfg.namespaceUri || "urn:brana:testbench:nodeplc";
  const pki = path.resolve(cfg.pkiDir);
  fs.mkdirSync(pki, { recursive: true });

  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(pki, "server"),
    automaticallyAcceptUnknownCertificate: true,
  });
  const userCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(pki, "user"),
    automaticallyAcceptUnknownCertificate: false,
  });

  const server = new OPCUAServer({
    host: "127.0.0.1",
    hostname: "127.0.0.1",
    port: cfg.port,
    securityPolicies: [SecurityPolicy.Basic256Sha256],
    securityModes: [MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: false,
    serverCertificateManager,
    userCertificateManager,
    userManager: {
      isValidUser: (user, password) => user === cfg.user && password === cfg.password,
    },
    serverInfo: {
      applicationUri: "urn:brana:testbench:nodeplc:server",
      productUri: "urn:brana:testbench:nodeplc",
      applicationName: { text: "brana testbench node-opcua PLC" },
    },
    buildInfo: { productName: "brana-testbench-nodeplc" },
    isAuditing: false,
  });
  await server.initialize();

  const addressSpace = server.engine.addressSpace;
  const namespace = addressSpace.registerNamespace(nsUri);
  const nsIndex = namespace.index;

  const feeder = namespace.addObject({
    organizedBy: addressSpace.rootFolder.objects,
    browseName: "Feeder",
    nodeId: "s=Feeder",
  });
  let volts = 230;
  const voltage = namespace.addVariable({
    componentOf: feeder,
    browseName: "Voltage",
    nodeId: "s=Feeder.Voltage",
    dataType: "Double",
    accessLevel: "CurrentRead",
    userAccessLevel: "CurrentRead",
    minimumSamplingInterval: 100,
    value: new Variant({ dataType: DataType.Double, value: volts }),
  });
  const tick = setInterval(() => {
    // A sawtooth: every sample differs from the one before it.
    volts = volts >= 240 ? 220 : Math.round((volts + 0.1) * 10) / 10;
    voltage.setValueFromSource(new Variant({ dataType: DataType.Double, value: volts }));
  }, 100);
  const setpoint = namespace.addVariable({
    componentOf: feeder,
    browseName: "Setpoint",
    nodeId: "s=Feeder.Setpoint",
    dataType: "Double",
    accessLevel: "CurrentRead | CurrentWrite",
    userAccessLevel: "CurrentRead | CurrentWrite",
    value: new Variant({ dataType: DataType.Double, value: 0 }),
  });
  namespace.addVariable({
    componentOf: feeder,
    browseName: "Limits",
    nodeId: "s=Feeder.Limits",
    dataType: "Double",
    valueRank: 1,
    arrayDimensions: [4],
    accessLevel: "CurrentRead | CurrentWrite",
    userAccessLevel: "CurrentRead | CurrentWrite",
    value: new Variant({
      dataType: DataType.Double,
      arrayType: VariantArrayType.Array,
      value: new Float64Array([0, 100, 200, 300]),
    }),
  });
  const reset = namespace.addMethod(feeder, {
    browseName: "Reset",
    nodeId: "s=Feeder.Reset",
    inputArguments: [],
    outputArguments: [],
  });
  // bindMethod tells promise from callback style by the argument count.
  reset.bindMethod(async (_inputs, _context) => {
    setpoint.setValueFromSource(new Variant({ dataType: DataType.Double, value: 0 }));
    return { statusCode: StatusCodes.Good, outputArguments: [] };
  });

  // The request event comes before the session is checked, so a request that
  // a gateway let through is seen even when the server then refuses it.
  const pending = new Map();
  server.on("request", (request, channel) => {
    const name = request.schema && request.schema.name;
    const handle = request.requestHeader.requestHandle;
    const key = channel.channelId + "/" + handle;
    if (name === "WriteRequest") {
      pending.set(key, { service: "write", handle });
      for (const wv of request.nodesToWrite || []) {
        const v = wv.value && wv.value.value;
        out({
          event: "write",
          channel: channel.channelId,
          handle,
          nodeId: wv.nodeId.toString(),
          attribute: attributeName(wv.attributeId),
          indexRange: wv.indexRange && !wv.indexRange.isEmpty() ? wv.indexRange.toString() : "",
          dataType: v ? DataType[v.dataType] : null,
          value: jsValue(v),
        });
      }
    } else if (name === "CallRequest") {
      pending.set(key, { service: "call", handle });
      for (const m of request.methodsToCall || []) {
        out({
          event: "call",
          channel: channel.channelId,
          handle,
          objectId: m.objectId.toString(),
          methodId: m.methodId.toString(),
          inputs: (m.inputArguments || []).map((a) => ({ dataType: DataType[a.dataType], value: jsValue(a) })),
        });
      }
    }
  });
  server.on("response", (response, channel) => {
    const handle = response.responseHeader.requestHandle;
    const key = channel.channelId + "/" + handle;
    const p = pending.get(key);
    if (!p) return;
    pending.delete(key);
    let codes = (response.results || []).map((r) => (r.statusCode ? r.statusCode : r).name);
    if (codes.length === 0) codes = [response.responseHeader.serviceResult.name];
    out({ event: "result", channel: channel.channelId, handle, service: p.service, statusCodes: codes });
  });
  server.on("session_activated", (session) => {
    const tok = session.userIdentityToken;
    out({ event: "session", user: tok && tok.userName ? tok.userName : null });
  });

  await server.start();

  let stopping = false;
  async function stop(code) {
    if (stopping) return;
    stopping = true;
    clearInterval(tick);
    try {
      await server.shutdown(0);
    } catch (_) {
      /* exiting anyway */
    }
    process.exit(code);
  }
  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));
  process.stdin.on("end", () => stop(0));
  process.stdin.on("close", () => stop(0));
  process.stdin.resume();

  out({
    event: "ready",
    endpoint: server.getEndpointUrl(),
    namespaceUri: nsUri,
    namespaceIndex: nsIndex,
  });
}

main().catch((err) => {
  out({ event: "fatal", error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
});
