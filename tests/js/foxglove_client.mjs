// A Foxglove WebSocket client built on Foxglove's own protocol package, as the Foxglove app talks
// to a bridge; tests/test_foxglove_live.py drives it against a running graph.
//
//     node tests/js/foxglove_client.mjs '{"url": "ws://127.0.0.1:8765", "topics": {"/rollout/state": 3}}'
//
// Plan (one JSON argument): url; topics, each with the messages to take from it before the
// calls (each subscribed as it is advertised, again if it is advertised anew); calls, each {service, request, until?: {topic, field, equals}}
// made in order (the request encoded with @foxglove/rosmsg2-serialization from the advertised
// request schema; `until` waits for a message on a subscribed topic whose field equals the
// value); unknownChannel, a channel id to subscribe to that nobody advertised; holdMs, how long
// to stay subscribed after the calls; timeoutMs. For benchmarks: summary, keep only
// {timestamp, size, step} of each message (big arrays are not turned into JSON); idleMs, end
// (without an error) once no message came for that long; slowMs, stop reading the socket for
// that long after each message (a client on a slow link).
// Prints one JSON document: {protocol, serverInfo, channels, services, statuses,
// messages: {topic: [{timestamp, data (base64 of the CDR bytes), value}]}, calls: [{service,
// response | error, seen}]} and exits 0, or 1 with the reason on stderr.

import { parse } from "@foxglove/rosmsg";
import { MessageReader, MessageWriter } from "@foxglove/rosmsg2-serialization";
import wsProtocol from "@foxglove/ws-protocol";
import WebSocket from "ws";

import { plain } from "./plain.mjs";

const { FoxgloveClient } = wsProtocol;
// the Foxglove SDK's server speaks "foxglove.sdk.v1"; ws-protocol 0.8 offers only the older name
const SUBPROTOCOLS = ["foxglove.sdk.v1", FoxgloveClient.SUPPORTED_SUBPROTOCOL];

function run(plan) {
  const out = { protocol: null, serverInfo: null, channels: [], services: [], statuses: [], messages: {}, calls: [] };
  const ws = new WebSocket(plan.url, SUBPROTOCOLS);
  const client = new FoxgloveClient({ ws });
  const wanted = Object.keys(plan.topics ?? {});
  const channels = new Map(); // channel id -> {channel, reader}
  const bySubscription = new Map(); // subscription id -> {topic, reader}
  const services = new Map(); // name -> {service, writer, reader}
  const waiters = []; // {topic, test, resolve}
  const last = {}; // topic -> the newest value
  const pendingCalls = new Map(); // call id -> {resolve}
  const subs = new Map(); // topic -> the channel id subscribed to
  let triedUnknown = false;
  let nextCall = 1;
  let idle;

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const have = Object.fromEntries(Object.entries(out.messages).map(([t, m]) => [t, m.length]));
      const topics = [...channels.values()].map((c) => c.channel.topic);
      const waiting = waiters.map((w) => `${w.topic} (last: ${JSON.stringify(last[w.topic] ?? null).slice(0, 300)})`);
      reject(new Error(`timed out: channels ${topics}, services ${[...services.keys()]}, messages ${JSON.stringify(have)}, waiting for ${waiting}`));
    }, plan.timeoutMs ?? 30000);
    const finish = (error) => {
      clearTimeout(timer);
      clearTimeout(idle);
      client.close();
      if (error) reject(error);
      else resolve(out);
    };

    client.on("open", () => {
      out.protocol = ws.protocol;
    });
    client.on("error", (error) => finish(error));
    client.on("serverInfo", (info) => {
      out.serverInfo = info;
    });
    client.on("status", (status) => out.statuses.push(status));
    client.on("advertise", (advertised) => {
      for (const channel of advertised) {
        out.channels.push(channel);
        channels.set(channel.id, { channel, reader: new MessageReader(parse(channel.schema, { ros2: true })) });
      }
      // subscribe to each wanted topic as it appears, and again when it comes back under a new id
      for (const { channel, reader } of channels.values()) {
        if (wanted.includes(channel.topic) && !subs.has(channel.topic)) {
          out.messages[channel.topic] ??= [];
          const id = client.subscribe(channel.id);
          subs.set(channel.topic, channel.id);
          bySubscription.set(id, { topic: channel.topic, reader });
        }
      }
      if (plan.unknownChannel !== undefined && !triedUnknown) {
        triedUnknown = true;
        client.subscribe(plan.unknownChannel);
      }
      if (wanted.length === 0) callAll();
    });
    client.on("unadvertise", (ids) => {
      for (const id of ids) {
        const topic = channels.get(id)?.channel.topic;
        channels.delete(id);
        if (subs.get(topic) === id) subs.delete(topic);
      }
    });
    client.on("advertiseServices", (advertised) => {
      for (const service of advertised) {
        out.services.push({ name: service.name, type: service.type, request: service.request, response: service.response });
        services.set(service.name, {
          service,
          writer: new MessageWriter(parse(service.request.schema, { ros2: true })),
          reader: new MessageReader(parse(service.response.schema, { ros2: true })),
        });
      }
    });
    client.on("message", ({ subscriptionId, timestamp, data }) => {
      const { topic, reader } = bySubscription.get(subscriptionId);
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const decoded = reader.readMessage(bytes);
      const value = plan.summary ? { step: plain(decoded.step ?? null) } : plain(decoded);
      last[topic] = value;
      const kept = out.messages[topic];
      if (kept.length < plan.topics[topic]) {
        const stamp = timestamp.toString();
        kept.push(plan.summary ? { timestamp: stamp, size: bytes.byteLength, step: value.step }
          : { timestamp: stamp, data: Buffer.from(bytes).toString("base64"), value });
        if (wanted.every((t) => (out.messages[t]?.length ?? 0) >= plan.topics[t])) callAll();
      }
      if (plan.idleMs) {
        clearTimeout(idle);
        idle = setTimeout(() => finish(), plan.idleMs);
      }
      if (plan.slowMs) {
        ws._socket.pause();
        setTimeout(() => ws._socket.resume(), plan.slowMs);
      }
      for (const w of waiters.filter((w) => w.topic === topic && w.test(value))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(value);
      }
    });
    client.on("serviceCallResponse", ({ callId, data }) => {
      pendingCalls.get(callId)?.resolve({ data });
    });
    client.on("serviceCallFailure", ({ callId, message }) => {
      pendingCalls.get(callId)?.resolve({ error: message });
    });

    async function call(spec) {
      while (!services.has(spec.service)) await new Promise((r) => setTimeout(r, 50)); // the overall timeout ends a wait in vain
      const known = services.get(spec.service);
      const callId = nextCall++;
      const seen = spec.until
        ? new Promise((resolve) => waiters.push({ topic: spec.until.topic, test: (v) => v[spec.until.field] === spec.until.equals, resolve }))
        : Promise.resolve(null);
      const reply = await new Promise((resolve) => {
        pendingCalls.set(callId, { resolve });
        client.sendServiceCallRequest({ serviceId: known.service.id, callId, encoding: "cdr", data: known.writer.writeMessage(spec.request) });
      });
      const result = { service: spec.service };
      if (reply.error !== undefined) {
        result.error = reply.error;
      } else {
        const bytes = new Uint8Array(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength);
        result.response = plain(known.reader.readMessage(bytes));
        result.seen = await seen;
      }
      out.calls.push(result);
    }

    let calling = false;
    async function callAll() {
      if (calling) return;
      calling = true;
      try {
        for (const spec of plan.calls ?? []) await call(spec);
        setTimeout(() => finish(), plan.holdMs ?? 0);
      } catch (error) {
        finish(error);
      }
    }
  });
}

run(JSON.parse(process.argv[2]))
  .then((out) => {
    process.stdout.write(JSON.stringify(out));
  })
  .catch((error) => {
    process.stderr.write(`foxglove_client: ${error?.stack ?? error}\n`);
    process.exit(1);
  });
