// Read MCAP files the way Foxglove does and print everything in them as one JSON document.
//
//     node tests/js/decode_bag.mjs BAG_0.mcap [BAG_1.mcap ...] > out.json
//
// @mcap/core reads the files (indexed reader, CRCs checked, lz4/zstd chunks through
// @mcap/support), @foxglove/rosmsg parses every `ros2msg` schema and
// @foxglove/rosmsg2-serialization decodes every message. Output:
//   {files: [{profile, library, statistics: {messageCount, chunkCount}}],
//    channels: {topic: {schemaName, schemaEncoding, messageEncoding, metadata}},
//    messages: {topic: [{logTime, publishTime, sequence, size, consumed, value}]}}
// Typed arrays become lists, 64-bit integers numbers (strings past 2^53), and non-finite
// floats the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers).

import { open } from "node:fs/promises";

import { parse } from "@foxglove/rosmsg";
import { MessageReader } from "@foxglove/rosmsg2-serialization";
import { McapIndexedReader } from "@mcap/core";
import { FileHandleReadable } from "@mcap/nodejs";
import { loadDecompressHandlers } from "@mcap/support";

import { plain } from "./plain.mjs";

async function main(paths) {
  const decompressHandlers = await loadDecompressHandlers();
  const out = { files: [], channels: {}, messages: {} };
  const readers = new Map(); // schema id per file -> MessageReader
  for (const path of paths) {
    const handle = await open(path, "r");
    try {
      const reader = await McapIndexedReader.Initialize({
        readable: new FileHandleReadable(handle),
        decompressHandlers,
      });
      out.files.push({
        profile: reader.header.profile,
        library: reader.header.library,
        statistics: reader.statistics
          ? {
              messageCount: Number(reader.statistics.messageCount),
              chunkCount: reader.statistics.chunkCount,
            }
          : null,
      });
      readers.clear();
      for (const [id, schema] of reader.schemasById) {
        if (schema.encoding !== "ros2msg") {
          throw new Error(`schema ${schema.name} has encoding ${schema.encoding}, not ros2msg`);
        }
        const text = new TextDecoder().decode(schema.data);
        readers.set(id, new MessageReader(parse(text, { ros2: true })));
      }
      for (const channel of reader.channelsById.values()) {
        const schema = reader.schemasById.get(channel.schemaId);
        out.channels[channel.topic] = {
          schemaName: schema?.name ?? null,
          schemaEncoding: schema?.encoding ?? null,
          messageEncoding: channel.messageEncoding,
          metadata: Object.fromEntries(channel.metadata),
        };
        out.messages[channel.topic] ??= [];
      }
      for await (const message of reader.readMessages({ validateCrcs: true })) {
        const channel = reader.channelsById.get(message.channelId);
        const decoder = readers.get(channel.schemaId);
        const value = decoder.readMessage(message.data);
        out.messages[channel.topic].push({
          logTime: plain(message.logTime),
          publishTime: plain(message.publishTime),
          sequence: message.sequence,
          size: message.data.byteLength,
          consumed: decoder.lastReadByteLength(),
          value: plain(value),
        });
      }
    } finally {
      await handle.close();
    }
  }
  process.stdout.write(JSON.stringify(out));
}

if (process.argv.length < 3) {
  process.stderr.write("usage: node decode_bag.mjs FILE.mcap [FILE.mcap ...]\n");
  process.exit(2);
}
main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`decode_bag: ${err?.stack ?? err}\n`);
  process.exit(1);
});
